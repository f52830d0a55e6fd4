/**
 * Backfill: re-export a PAUSED connection from an earlier instant (docs/exactly-once.md §8).
 * The watermark moves back to `from` with one conditional write that refuses while an
 * exporter holds the lease or a pending window has a part written, so a backfill never
 * splits or races a window (a pending window with nothing recorded is dropped: a window that
 * kept failing never blocks a backfill; what an attempt of it may have written unrecorded is
 * checked and superseded by the next export). On resume, the exporter writes every committed
 * window after `from` again to its own keys, with its own sequence (the bucket holds each
 * event once), then goes on as usual. A `from` inside a committed window moves to that
 * window's start. A backfill only ever moves the watermark back: a later `from` would skip
 * events.
 *
 * After an operator fixes a field the exporter accepts whatever its value (folder path, name, app,
 * db names, selection), `committedSince` (the instant of the wrong edit) starts the backfill at the
 * earliest window committed since then: every window written under the wrong row is written again
 * under the fixed one, also a window that ended before the edit but was committed after it.
 */
import { validateConnection } from '../domain/connection.ts';
import { slotStartOf } from '../domain/staging-layout.ts';
import type {
  Clock,
  CommittedWindowSpan,
  ConnectionRepository,
  DroppedWindow,
  ExportState,
  ExportStateQueries,
  ExportStateStore,
} from '../ports/index.ts';
import { UseCaseError } from './errors.ts';
import { initialWatermark } from './export-window.ts';

/**
 * Where a backfill starts: `from`, or the start of the earliest window committed at or after
 * `committedSince` (with nothing committed since, at the watermark: nothing is written again).
 */
export type BackfillInput = { connectionId: string } & (
  | { from: Date; committedSince?: undefined }
  | { committedSince: Date; from?: undefined }
);

export interface BackfillDeps {
  connections: ConnectionRepository;
  state: ExportStateStore & Pick<ExportStateQueries, 'earliestWindowCommittedSince'>;
  clock: Clock;
  stagingRetentionDays: number;
}

export interface BackfillResult {
  connectionId: string;
  /** The watermark before the backfill (the connection's start when it never exported). */
  previousWatermark: Date;
  /** `from`, or the start of the committed window `from` falls in. */
  watermark: Date;
  /** With `committedSince`: the earliest window committed since (undefined: none was). */
  firstCommittedSince?: CommittedWindowSpan | undefined;
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
export class BackfillRefusedError extends UseCaseError {
  override readonly name = 'BackfillRefusedError';
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
  const { connectionId } = input;
  const now = deps.clock.now();
  const raw = await deps.connections.getRaw(connectionId);
  if (!raw) throw new BackfillRefusedError('NOT_FOUND', `connection ${connectionId} not found`);
  const validation = validateConnection(raw);
  if (!validation.ok) {
    throw new BackfillRefusedError(
      'INVALID_CONNECTION',
      `connection ${connectionId} is invalid (${validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}); fix the row first`,
    );
  }
  const connection = validation.connection;
  if (connection.status !== 'PAUSED') {
    throw new BackfillRefusedError(
      'NOT_PAUSED',
      `connection ${connectionId} is ${connection.status}; pause it first (connections pause ${connectionId}), ` +
        'then run the backfill and resume it',
    );
  }
  const asked = input.from ?? input.committedSince;
  if (asked.getTime() > now.getTime()) {
    const option = input.from ? '--from' : '--committed-since';
    throw new BackfillRefusedError('IN_THE_FUTURE', `${option} ${asked.toISOString()} is in the future`);
  }
  const state = await deps.state.get(connectionId);
  const watermarkNow = () => state?.watermark ?? initialWatermark(connection, now, deps.stagingRetentionDays);
  const firstCommittedSince = input.committedSince
    ? await deps.state.earliestWindowCommittedSince(connectionId, input.committedSince)
    : undefined;
  const from = input.from ?? firstCommittedSince?.windowStart ?? watermarkNow();
  const start = await startOfBackfill(connectionId, from, now, deps);
  const previousWatermark = watermarkNow();
  if (start.getTime() > previousWatermark.getTime()) {
    throw new BackfillRefusedError(
      'NOT_EARLIER',
      `--from ${from.toISOString()} is after the watermark ${previousWatermark.toISOString()}: the events in between ` +
        'would never be exported. A backfill re-exports from an earlier instant',
    );
  }
  // Committed windows up to here are exported again to their own keys (a backfill during another keeps the later end).
  const replayThrough =
    state?.replayThrough && state.replayThrough.getTime() > previousWatermark.getTime()
      ? state.replayThrough
      : state?.watermark;
  if (!(await deps.state.resetWatermark(connectionId, start, now, replayThrough, droppedWindowOf(state)))) {
    throw new BackfillRefusedError(
      'WINDOW_IN_PROGRESS',
      `connection ${connectionId} has a window in progress (an exporter holds the lease, or a pending window has ` +
        'parts written and is not committed yet); resume the connection until that window is committed ' +
        '("status" shows it), pause it again and retry',
    );
  }
  return {
    connectionId,
    previousWatermark,
    watermark: start,
    ...(input.committedSince ? { firstCommittedSince } : {}),
  };
}

/**
 * The pending window the backfill drops, when it has no part recorded (one with parts recorded
 * refuses the backfill): its next attempt would have written its first part and its manifest.
 */
function droppedWindowOf(state: ExportState | undefined): DroppedWindow | undefined {
  if (!state?.pendingWindowEnd || !state.pendingConnection || (state.cursor?.parts.length ?? 0) > 0)
    return undefined;
  return {
    windowEnd: state.pendingWindowEnd,
    connection: state.pendingConnection,
    nextPartNumber: state.cursor?.nextPartNumber ?? 1,
  };
}

/**
 * Where a backfill from `from` starts: `from`, or the start of the committed window it falls in
 * (exporting part of a committed window again would overwrite its files with part of its events).
 * Refused when that start is beyond the staging retention.
 */
async function startOfBackfill(
  connectionId: string,
  from: Date,
  now: Date,
  deps: BackfillDeps,
): Promise<Date> {
  const earliest = earliestBackfillStart(now, deps.stagingRetentionDays);
  const end = await deps.state.nextCommittedWindowEnd(connectionId, from);
  const window = end ? await deps.state.getCommittedWindow(connectionId, end) : undefined;
  // Windows read whole staging slots: a backfill starts at a slot boundary.
  const start =
    window && window.windowStart.getTime() < from.getTime() ? window.windowStart : slotStartOf(from);
  if (start.getTime() >= earliest.getTime()) return start;
  const retention = `the staging retention allows (${deps.stagingRetentionDays} days); the earliest allowed instant is ${earliest.toISOString()}`;
  throw new BackfillRefusedError(
    'BEYOND_RETENTION',
    start.getTime() < from.getTime() && end
      ? `--from ${from.toISOString()} falls in the committed window [${start.toISOString()}, ${end.toISOString()}), ` +
          `which cannot be exported again whole: it starts earlier than ${retention}; use --from ${end.toISOString()}`
      : `--from ${from.toISOString()} is earlier than ${retention}`,
  );
}
