/**
 * An in-memory Connections table, for unit tests of CLI logic only. Rows are
 * stored as raw records (like DynamoDB items), so tests can plant invalid rows.
 */
import type { Frequency } from '../../lambdas/definitions.ts';
import type { Connection } from '../../lambdas/domain/connection.ts';
import {
  NamespaceConflictError,
  type NamespacedConnection,
  namespaceConflict,
} from '../../lambdas/domain/namespaces.ts';
import { connectionPrefix } from '../../lambdas/domain/object-keys.ts';
import type { ConnectionRepository } from '../../lambdas/ports/index.ts';

export class InMemoryConnectionRepository implements ConnectionRepository {
  readonly rows = new Map<string, Record<string, unknown>>();
  /** Calls made, in order, e.g. `listRawByFrequency:DAILY`. */
  readonly calls: string[] = [];

  constructor(initial: Record<string, unknown>[] = []) {
    for (const row of initial) this.rows.set(String(row.connectionId), structuredClone(row));
  }

  async getRaw(connectionId: string): Promise<Record<string, unknown> | undefined> {
    this.calls.push(`getRaw:${connectionId}`);
    const row = this.rows.get(connectionId);
    return row && structuredClone(row);
  }

  async listRawByFrequency(frequency: Frequency): Promise<Record<string, unknown>[]> {
    this.calls.push(`listRawByFrequency:${frequency}`);
    return [...this.rows.values()].filter((r) => r.frequency === frequency).map((r) => structuredClone(r));
  }

  async listRaw(): Promise<Record<string, unknown>[]> {
    this.calls.push('listRaw');
    return [...this.rows.values()].map((r) => structuredClone(r));
  }

  async put(connection: Connection): Promise<void> {
    this.calls.push(`put:${connection.connectionId}`);
    this.refuseCollision(connection);
    // Like the document client with removeUndefinedValues: undefined attributes are not stored.
    this.rows.set(connection.connectionId, JSON.parse(JSON.stringify(connection)));
  }

  async claimNamespace(connection: Connection): Promise<void> {
    this.calls.push(`claimNamespace:${connection.connectionId}`);
    this.refuseCollision(connection);
  }

  /** The rule the DynamoDB claims enforce (domain/namespaces.ts), checked against every stored row. */
  private refuseCollision(connection: Connection): void {
    const stored = [...this.rows.values()].filter(
      (r): r is Record<string, unknown> & NamespacedConnection =>
        typeof r.connectionId === 'string' &&
        typeof r.bucketName === 'string' &&
        typeof r.connectionName === 'string',
    );
    const other = namespaceConflict(connection, stored);
    if (other) {
      throw new NamespaceConflictError(
        connection.connectionId,
        connection.bucketName,
        connectionPrefix(connection),
        other.connectionId,
      );
    }
  }

  async delete(connectionId: string): Promise<void> {
    this.calls.push(`delete:${connectionId}`);
    this.rows.delete(connectionId);
  }
}
