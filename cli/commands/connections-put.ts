import type { Connection } from '../../lambdas/domain/connection.ts';
import {
  NamespaceConflictError,
  type NamespacedConnection,
  namespaceConflict,
} from '../../lambdas/domain/namespaces.ts';
import { connectionPrefix } from '../../lambdas/domain/object-keys.ts';
import { type CliCommand, EXIT_FAILURE, flag, onePositional } from '../command.ts';
import {
  checkRows,
  deploymentValidator,
  formatRowError,
  type RowError,
  readRowFile,
  redactConnection,
  toJsonText,
} from '../connection-rows.ts';
import { startEditErrors } from '../start-checks.ts';

/** `connectionName` is unique per app (docs/product.md#connections): against the table and within the file. */
function nameConflicts(incoming: Connection[], existing: Record<string, unknown>[]): RowError[] {
  const owner = new Map<string, string>();
  const key = (appId: unknown, name: unknown) => JSON.stringify([appId, name]);
  const incomingIds = new Set(incoming.map((c) => c.connectionId));
  for (const row of existing) {
    // A row being replaced by this put does not hold its old name any more.
    if (typeof row.connectionId === 'string' && !incomingIds.has(row.connectionId)) {
      owner.set(key(row.appId, row.connectionName), row.connectionId);
    }
  }
  const errors: RowError[] = [];
  const seenIds = new Set<string>();
  for (const c of incoming) {
    const label = `connection ${c.connectionId}`;
    if (seenIds.has(c.connectionId)) {
      errors.push({ label, field: 'connectionId', message: 'appears more than once in the file' });
      continue;
    }
    seenIds.add(c.connectionId);
    const k = key(c.appId, c.connectionName);
    const other = owner.get(k);
    if (other !== undefined) {
      errors.push({
        label,
        field: 'connectionName',
        message: `"${c.connectionName}" is already used by ${other} of app ${c.appId}; connectionName must be unique per app`,
      });
    } else {
      owner.set(k, c.connectionId);
    }
  }
  return errors;
}

/**
 * One namespace per connection (domain/namespaces.ts): against the table and within the file.
 * A first look that names every collision before anything is written; the repository's put
 * enforces the rule again, atomically, against concurrent puts.
 */
function namespaceConflicts(incoming: Connection[], existing: Record<string, unknown>[]): RowError[] {
  const incomingIds = new Set(incoming.map((c) => c.connectionId));
  const others: NamespacedConnection[] = existing.filter(
    (r): r is Record<string, unknown> & NamespacedConnection =>
      typeof r.connectionId === 'string' &&
      !incomingIds.has(r.connectionId) &&
      typeof r.bucketName === 'string' &&
      typeof r.connectionName === 'string',
  );
  const errors: RowError[] = [];
  for (const c of incoming) {
    const other = namespaceConflict(c, others);
    if (other) {
      const error = new NamespaceConflictError(
        c.connectionId,
        c.bucketName,
        connectionPrefix(c),
        other.connectionId,
      );
      errors.push({ label: `connection ${c.connectionId}`, field: error.field, message: error.reason });
    } else {
      others.push(c);
    }
  }
  return errors;
}

export const connectionsPut: CliCommand = {
  name: 'connections put',
  summary: 'Validate connection row(s) from a file and store them (whole-row replace)',
  usage: 'FILE [--activate]',
  description:
    'FILE as for `connections validate`. Every row is validated first, connectionName must be\n' +
    "unique per app, and in one bucket no connection's prefix [<folderPath>_]<connectionName>/ may\n" +
    "equal, contain or lie inside another's (whatever their apps); if any row has an error, nothing\n" +
    'is written and every error is printed.\n' +
    'updatedAt is set to now. Edits take effect from the next export window.\n' +
    'A NEW row (its connectionId not in the table yet) is stored PAUSED unless --activate: it would\n' +
    'fail every tick until the customer applied its policy. Onboarding: connections policy FILE (send\n' +
    'it to the customer), connections test FILE, then put FILE --activate (or put, then resume ID).\n' +
    'startFrom cannot change once a connection has exported (use `backfill`), and a connection that\n' +
    'has not exported yet cannot start (startFrom, else createdAt) before the staging retention.',
  options: {
    activate: {
      type: 'boolean',
      description:
        'store new rows ACTIVE (after `connections test FILE` passed, or knowingly without a test)',
    },
  },
  async run(args, ctx) {
    const file = await readRowFile(
      onePositional(args, 'FILE (a JSON file with one connection row or an array)'),
    );
    const checked = await checkRows(file.rows, await deploymentValidator(ctx));
    const fail = (errors: RowError[]) => {
      if (ctx.settings.json) ctx.print(toJsonText({ written: 0, errors }));
      else {
        for (const error of errors) ctx.warn(formatRowError(error));
        ctx.warn('nothing written');
      }
      return EXIT_FAILURE;
    };
    if (!checked.ok) return fail(checked.errors);
    const repository = await ctx.connectionRepository();
    const existing = await repository.listRaw();
    const conflicts = [
      ...nameConflicts(checked.connections, existing),
      ...namespaceConflicts(checked.connections, existing),
    ];
    if (conflicts.length > 0) return fail(conflicts);
    const storedIds = new Set(existing.map((r) => r.connectionId));
    const activate = flag(args, 'activate');
    const startErrors = await startEditErrors(checked.connections, existing, ctx);
    if (startErrors.length > 0) return fail(startErrors);
    const updatedAt = ctx.clock.now().toISOString();
    const stored: Connection[] = [];
    for (const connection of checked.connections) {
      const isNew = !storedIds.has(connection.connectionId);
      const status = isNew ? (activate ? 'ACTIVE' : 'PAUSED') : connection.status;
      const row = { ...connection, status, updatedAt };
      if (isNew && !activate && connection.status === 'ACTIVE') {
        ctx.warn(
          `connection ${row.connectionId} is new: stored PAUSED until tested. Run "connections test ${row.connectionId}" ` +
            `(or test the file before putting it), then "connections resume ${row.connectionId}"; or put with --activate`,
        );
      }
      try {
        await repository.put(row);
      } catch (error) {
        // Lost a race to a concurrent put of a colliding row: the rows before this one are stored.
        if (!(error instanceof NamespaceConflictError)) throw error;
        const label = `connection ${row.connectionId}`;
        ctx.warn(formatRowError({ label, field: error.field, message: error.reason }));
        ctx.warn(`${label}: not written; ${stored.length} row(s) before it were written`);
        return EXIT_FAILURE;
      }
      stored.push(row);
      if (!ctx.settings.json) {
        ctx.print(
          `put connection ${row.connectionId} (app ${row.appId}, ${row.connectionName}, ${row.frequency}, ${row.status})`,
        );
      }
    }
    if (ctx.settings.json)
      ctx.print(toJsonText({ written: stored.length, connections: stored.map(redactConnection) }));
    return 0;
  },
};
