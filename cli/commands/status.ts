import { FREQUENCIES, type Frequency } from '../../lambdas/definitions.ts';
import { exportLagMs } from '../../lambdas/domain/windows.ts';
import type { SupersededObject } from '../../lambdas/ports/index.ts';
import { type CliCommand, noPositionals } from '../command.ts';
import { humanDuration, table } from '../operations.ts';

/** One connection's export status, as `status --json` prints it. */
export interface ConnectionStatus {
  connectionId: string;
  appId?: string;
  connectionName?: string;
  frequency?: string;
  /** The row's status; `MISSING` when only a state row is left (the connection was deleted). */
  status: string;
  /** End of the last committed window; absent when only an error was ever recorded. */
  watermark?: string;
  lagSeconds?: number;
  sequence: number;
  pendingWindowEnd?: string;
  lease?: { owner: string; expiresAt: string; expired: boolean };
  /** Parts already written of the pending window (a window continuing across invocations). */
  cursorParts?: number;
  lastCommittedAt?: string;
  lastFileKey?: string;
  lastError?: { code: string; message: string; at: string; windowEnd?: string };
  /** The latest window committed with a gap: [from, to) of it may miss events (e.g. expired before export). */
  lastGap?: { from: string; to: string; reason: string; windowEnd: string };
  /** Objects earlier attempts of the pending window wrote under settings since changed. */
  pendingSupersedes?: SupersededObject[];
  /** The last committed window that superseded objects, and those objects (delete them). */
  superseded?: { windowEnd: string; objects: SupersededObject[] };
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export const status: CliCommand = {
  name: 'status',
  summary:
    'Export status of every connection: watermark, lag, pending window and lease, last file, last error',
  usage: '[--json]',
  description:
    'One line per connection (rows of the Connections table and state rows of the ExportState table,\n' +
    'including connections whose state holds only an error, e.g. a row that was invalid from the\n' +
    'start). LAG is how far the watermark is behind the latest boundary of its frequency now.',
  async run(args, ctx) {
    noPositionals(args);
    const [connections, queries] = await Promise.all([ctx.connectionRepository(), ctx.exportStateQueries()]);
    const [rows, states] = await Promise.all([connections.listRaw(), queries.listStates()]);
    const now = ctx.clock.now();
    const byId = new Map<string, ConnectionStatus>();
    for (const row of rows) {
      const id = text(row.connectionId);
      if (!id) continue;
      byId.set(id, {
        connectionId: id,
        ...(text(row.appId) ? { appId: text(row.appId) } : {}),
        ...(text(row.connectionName) ? { connectionName: text(row.connectionName) } : {}),
        ...(text(row.frequency) ? { frequency: text(row.frequency) } : {}),
        status: text(row.status) ?? 'ACTIVE',
        sequence: 0,
      });
    }
    for (const state of states) {
      const entry: ConnectionStatus = byId.get(state.connectionId) ?? {
        connectionId: state.connectionId,
        status: 'MISSING',
        sequence: 0,
      };
      entry.sequence = state.sequence;
      if (state.watermark) {
        entry.watermark = state.watermark.toISOString();
        if ((FREQUENCIES as readonly string[]).includes(entry.frequency ?? ''))
          entry.lagSeconds = Math.round(
            exportLagMs(entry.frequency as Frequency, state.watermark, now) / 1000,
          );
      }
      if (state.pendingWindowEnd) entry.pendingWindowEnd = state.pendingWindowEnd.toISOString();
      if (state.lease)
        entry.lease = {
          owner: state.lease.owner,
          expiresAt: state.lease.expiresAt.toISOString(),
          expired: state.lease.expiresAt.getTime() <= now.getTime(),
        };
      if (state.cursor) entry.cursorParts = state.cursor.parts.length;
      if (state.lastCommittedAt) entry.lastCommittedAt = state.lastCommittedAt.toISOString();
      if (state.lastFileKey) entry.lastFileKey = state.lastFileKey;
      if (state.lastError) entry.lastError = { ...state.lastError };
      if (state.lastGap) entry.lastGap = { ...state.lastGap };
      if (state.pendingSupersedes) entry.pendingSupersedes = state.pendingSupersedes;
      if (state.superseded)
        entry.superseded = {
          windowEnd: state.superseded.windowEnd.toISOString(),
          objects: state.superseded.supersedes.objects,
        };
      byId.set(state.connectionId, entry);
    }
    const entries = [...byId.values()].sort(
      (a, b) =>
        (a.appId ?? '').localeCompare(b.appId ?? '') ||
        (a.connectionName ?? '').localeCompare(b.connectionName ?? '') ||
        a.connectionId.localeCompare(b.connectionId),
    );

    if (ctx.settings.json) {
      ctx.print(JSON.stringify(entries, null, 2));
      return 0;
    }
    if (entries.length === 0) {
      ctx.warn('no connections');
      return 0;
    }
    const header = [
      'CONNECTION ID',
      'NAME',
      'FREQUENCY',
      'STATUS',
      'WATERMARK',
      'LAG',
      'SEQ',
      'PENDING',
      'LAST FILE',
      'LAST ERROR',
      'LAST GAP',
    ];
    const lines = entries.map((e) => [
      e.connectionId,
      e.connectionName ?? '-',
      e.frequency ?? '-',
      e.status,
      e.watermark ?? '-',
      e.lagSeconds === undefined ? '-' : humanDuration(e.lagSeconds * 1000),
      String(e.sequence),
      pendingText(e),
      e.lastFileKey ?? '-',
      e.lastError ? `${e.lastError.code}: ${e.lastError.message}` : '-',
      e.lastGap ? `${e.lastGap.reason} ${e.lastGap.from} → ${e.lastGap.to}` : '-',
    ]);
    ctx.print(table([header, ...lines]));
    for (const e of entries) for (const line of supersededLines(e)) ctx.warn(line);
    return 0;
  },
};

/** Objects no manifest lists any more (their events are in a later commit of the window): delete them. */
function supersededLines(e: ConnectionStatus): string[] {
  const where = (o: SupersededObject) => `s3://${o.bucketName}/${o.key}`;
  const lines: string[] = [];
  if (e.superseded?.objects.length)
    lines.push(
      `connection ${e.connectionId}: the window ending ${e.superseded.windowEnd} superseded ` +
        `${e.superseded.objects.length} object(s) that may still exist; delete them: ${e.superseded.objects.map(where).join(', ')}`,
    );
  if (e.pendingSupersedes?.length)
    lines.push(
      `connection ${e.connectionId}: the pending window is being written again under changed settings; ` +
        `it supersedes ${e.pendingSupersedes.map(where).join(', ')}`,
    );
  return lines;
}

function pendingText(e: ConnectionStatus): string {
  if (!e.pendingWindowEnd && !e.lease) return '-';
  const parts = [e.pendingWindowEnd ? `window end ${e.pendingWindowEnd}` : 'no window pinned'];
  if (e.cursorParts) parts.push(`${e.cursorParts} part(s) written`);
  if (e.lease)
    parts.push(`lease ${e.lease.owner} ${e.lease.expired ? 'expired' : 'until'} ${e.lease.expiresAt}`);
  return parts.join(', ');
}
