/**
 * Backfill: re-export a PAUSED connection from an earlier instant (SPEC §2 `startFrom`,
 * docs/exactly-once.md §3). The watermark moves back to `from` with one conditional
 * write that refuses while an exporter holds the lease or a window is pinned, so a
 * backfill never splits or races a window. On resume, the next tick exports
 * [from, E) as one window (split into parts by size); its manifest's windowStart
 * shows the re-exported range. A backfill only ever moves the watermark back: a
 * later `from` would skip events.
 */
import { validateConnection } from '../domain/connection.ts';
import { slotStartOf } from '../domain/staging-layout.ts';
import type { Clock, ConnectionRepository, ExportStateStore } from '../ports/index.ts';
import { initialWatermark } from './export-window.ts';

export interface BackfillInput {
  connectionId: string;
  from: Date;
}

export interface BackfillDeps {
  connections: ConnectionRepository;
  state: ExportStateStore;
  clock: Clock;
  stagingRetentionDays: number;
}

export interface BackfillResult {
  connectionId: string;
  /** The watermark before the backfill (the connection's start when it never exported). */
  previousWatermark: Date;
  watermark: Date;
}

export type BackfillRefusal =
  | 'NOT_FOUND'
  | 'INVALID_CONNECTION'
  | 'NOT_PAUSED'
  | 'BEYOND_RETENTION'
  | 'IN_THE_FUTURE'
  | 'NOT_EARLIER'
  | 'WINDOW_IN_PROGRESS';

/** A backfill that was not done; the message says why and what to do. */
export class BackfillRefused extends Error {
  override readonly name = 'BackfillRefused';
  constructor(
    readonly code: BackfillRefusal,
    message: string,
  ) {
    super(message);
  }
}

const DAY_MS = 86_400_000;

/** The earliest instant a backfill may start from: older staged objects may already be expired. */
export function earliestBackfillStart(now: Date, stagingRetentionDays: number): Date {
  return new Date(now.getTime() - stagingRetentionDays * DAY_MS);
}

export async function backfill(input: BackfillInput, deps: BackfillDeps): Promise<BackfillResult> {
  const { connectionId, from } = input;
  const now = deps.clock.now();
  const raw = await deps.connections.getRaw(connectionId);
  if (!raw) throw new BackfillRefused('NOT_FOUND', `connection ${connectionId} not found`);
  const validation = validateConnection(raw);
  if (!validation.ok) {
    throw new BackfillRefused(
      'INVALID_CONNECTION',
      `connection ${connectionId} is invalid (${validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}); fix the row first`,
    );
  }
  const connection = validation.connection;
  if (connection.status !== 'PAUSED') {
    throw new BackfillRefused(
      'NOT_PAUSED',
      `connection ${connectionId} is ${connection.status}; pause it first (connections pause ${connectionId}), ` +
        'then run the backfill and resume it',
    );
  }
  const earliest = earliestBackfillStart(now, deps.stagingRetentionDays);
  if (from.getTime() < earliest.getTime()) {
    throw new BackfillRefused(
      'BEYOND_RETENTION',
      `--from ${from.toISOString()} is earlier than the staging retention allows (${deps.stagingRetentionDays} days); ` +
        `the earliest allowed instant is ${earliest.toISOString()}`,
    );
  }
  if (from.getTime() > now.getTime()) {
    throw new BackfillRefused('IN_THE_FUTURE', `--from ${from.toISOString()} is in the future`);
  }

  const state = await deps.state.get(connectionId);
  const previousWatermark = state?.watermark ?? initialWatermark(connection, now, deps.stagingRetentionDays);
  if (from.getTime() > previousWatermark.getTime()) {
    throw new BackfillRefused(
      'NOT_EARLIER',
      `--from ${from.toISOString()} is after the watermark ${previousWatermark.toISOString()}: the events in between ` +
        'would never be exported. A backfill re-exports from an earlier instant',
    );
  }
  // Windows read whole staging slots: the backfill starts at the slot holding `from`.
  const watermark = slotStartOf(from);
  if (!(await deps.state.resetWatermark(connectionId, watermark, now))) {
    throw new BackfillRefused(
      'WINDOW_IN_PROGRESS',
      `connection ${connectionId} has a window in progress (an exporter holds the lease, or a started window is ` +
        'not committed yet); resume the connection until that window is committed, pause it again and retry',
    );
  }
  return { connectionId, previousWatermark, watermark };
}
