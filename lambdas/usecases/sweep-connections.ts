/**
 * The hourly connection sweep: validate every row of the Connections table (a scan, not the
 * byFrequency index — a row with a misspelt or missing `frequency` is in no index query, so the
 * dispatcher never sees it), with the same verdict as the exporter (domain/connection.ts
 * validateConnectionAt: schema, PGP key as of now, KMS allowlist) and the one-namespace rule
 * (domain/namespaces.ts). Each refused row gets its diagnosis on its export state; the count
 * becomes the `InvalidConnections` metric of the sweep.
 */
import {
  type Connection,
  type ConnectionChecks,
  type FieldError,
  validateConnectionAt,
} from '../domain/connection.ts';
import { NamespaceConflictError } from '../domain/namespaces.ts';
import type { Clock, ConnectionDiagnosis, ConnectionRepository, ExportStateStore } from '../ports/index.ts';

export interface SweepDeps {
  connections: Pick<ConnectionRepository, 'listRaw' | 'claimNamespace'>;
  state: Pick<ExportStateStore, 'recordError'>;
  checks: ConnectionChecks;
  clock: Clock;
}

export interface InvalidRow {
  /** The row's connectionId, or `row#<n>` (position in the scan) when it has none. */
  connectionId: string;
  code: 'INVALID_CONNECTION' | 'NAMESPACE_CONFLICT';
  errors: FieldError[];
}

export interface SweepResult {
  rows: number;
  invalid: InvalidRow[];
}

export async function sweepConnections(deps: SweepDeps): Promise<SweepResult> {
  const now = deps.clock.now();
  const rows = await deps.connections.listRaw();
  const invalid: InvalidRow[] = [];
  const valid: Connection[] = [];
  for (const [position, raw] of rows.entries()) {
    const result = await validateConnectionAt(raw, deps.checks, now);
    if (result.ok) valid.push(result.connection);
    else {
      const id = typeof raw.connectionId === 'string' ? raw.connectionId : `row#${position}`;
      invalid.push({ connectionId: id, code: 'INVALID_CONNECTION', errors: result.errors });
    }
  }
  invalid.push(...(await namespaceConflicts(valid, deps.connections)));
  for (const row of invalid) {
    if (row.connectionId.startsWith('row#')) continue; // no state to record it on: logged and counted
    await deps.state.recordError(row.connectionId, diagnosisOf(row, now));
  }
  return { rows: rows.length, invalid };
}

/**
 * The same namespace check as the exporter's (the repository's claim of the prefix): a row
 * written around `connections put` whose prefix another connection holds is reported now,
 * not at its first export.
 */
async function namespaceConflicts(
  connections: Connection[],
  repository: Pick<ConnectionRepository, 'claimNamespace'>,
): Promise<InvalidRow[]> {
  const conflicts: InvalidRow[] = [];
  for (const connection of connections) {
    try {
      await repository.claimNamespace(connection);
    } catch (error) {
      if (!(error instanceof NamespaceConflictError)) throw error;
      conflicts.push({
        connectionId: connection.connectionId,
        code: 'NAMESPACE_CONFLICT',
        errors: [{ field: error.field, message: error.reason }],
      });
    }
  }
  return conflicts;
}

function diagnosisOf(row: InvalidRow, now: Date): ConnectionDiagnosis {
  const details = row.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return {
    code: row.code,
    message:
      row.code === 'NAMESPACE_CONFLICT'
        ? `the connection's prefix collides with another connection's and is not exported: ${details}`
        : `the connection row is invalid and is not exported until fixed: ${details}`,
    at: now.toISOString(),
  };
}
