/**
 * A schedule tick: find the ACTIVE connections of a frequency (GSI query),
 * fix the window end from the tick's *scheduled* time, and enqueue the export
 * jobs: one group job per app for the connections that are on time (they read
 * the app's staged data once, together), one single job per connection that is
 * catching up. Measures export lag for the lag alarms.
 */
import type { Frequency } from '../definitions.ts';
import { validateConnection } from '../domain/connection.ts';
import { assertWindowEndSettled, exportLagMs, periodMs, windowEndForTick } from '../domain/windows.ts';
import type { Clock, ConnectionRepository, ExportJob, ExportStateStore, JobQueue } from '../ports/index.ts';

export interface TickInput {
  frequency: Frequency;
  /** The schedule's scheduled time (not the invocation's clock). */
  scheduledTime: Date;
}

export interface DispatchDeps {
  connections: ConnectionRepository;
  state: ExportStateStore;
  jobs: JobQueue;
  clock: Clock;
}

export interface LaggingConnection {
  connectionId: string;
  lagSeconds: number;
}

export interface TickResult {
  windowEnd: Date;
  /** The messages enqueued: group jobs and single jobs. */
  jobs: ExportJob[];
  /** Connections those jobs export. */
  connections: number;
  /** Ids (or row positions) of rows that failed validation; their errors are recorded on their state. */
  invalidConnections: string[];
  inactiveConnections: number;
  /** Largest lag over the frequency's active connections, in seconds (0 when all are on time). */
  maxLagSeconds: number;
  /** Connections more than one period (plus settle delay) behind. */
  lagging: LaggingConnection[];
}

export async function dispatchTick(
  input: TickInput,
  deps: DispatchDeps,
  settleDelayMs: number,
): Promise<TickResult> {
  const windowEnd = windowEndForTick(input.frequency, input.scheduledTime);
  const now = deps.clock.now();
  // A tick from the future (a wrong --at, a skewed caller) would move watermarks past unstaged events.
  assertWindowEndSettled(windowEnd, now, settleDelayMs, "the tick's window end");
  const rows = await deps.connections.listRawByFrequency(input.frequency);
  const result: TickResult = {
    windowEnd,
    jobs: [],
    connections: 0,
    invalidConnections: [],
    inactiveConnections: 0,
    maxLagSeconds: 0,
    lagging: [],
  };

  const due: DueConnection[] = [];
  for (const [position, raw] of rows.entries()) {
    const validation = validateConnection(raw);
    if (!validation.ok) {
      const id = typeof raw.connectionId === 'string' ? raw.connectionId : `row#${position}`;
      result.invalidConnections.push(id);
      if (typeof raw.connectionId === 'string') {
        await deps.state.recordError(raw.connectionId, {
          code: 'INVALID_CONNECTION',
          message: `the connection row is invalid and is not exported until fixed: ${validation.errors
            .map((e) => `${e.field}: ${e.message}`)
            .join('; ')}`,
          at: now.toISOString(),
          windowEnd: windowEnd.toISOString(),
        });
      }
      continue;
    }
    const connection = validation.connection;
    if (connection.status !== 'ACTIVE') {
      result.inactiveConnections += 1;
      continue;
    }
    const state = await deps.state.get(connection.connectionId);
    if (state) {
      const lagMs = exportLagMs(input.frequency, state.watermark, now);
      const lagSeconds = Math.round(lagMs / 1000);
      result.maxLagSeconds = Math.max(result.maxLagSeconds, lagSeconds);
      if (lagMs > periodMs(input.frequency) + settleDelayMs) {
        result.lagging.push({ connectionId: connection.connectionId, lagSeconds });
      }
      if (state.watermark.getTime() >= windowEnd.getTime() && !state.pendingWindowEnd) continue;
    }
    // Where its export starts: a new connection (no state yet) at its backfill start or creation.
    const windowStart = state?.watermark ?? new Date(connection.startFrom ?? connection.createdAt);
    const pinnedElsewhere =
      state?.pendingWindowEnd !== undefined && state.pendingWindowEnd.getTime() !== windowEnd.getTime();
    due.push({
      connectionId: connection.connectionId,
      appId: connection.appId,
      windowEnd: windowEnd.toISOString(),
      grouped: !pinnedElsewhere && windowStart.getTime() >= windowEnd.getTime() - periodMs(input.frequency),
    });
  }

  result.jobs = groupExportJobs(due);
  result.connections = due.length;
  if (result.jobs.length > 0) await deps.jobs.enqueue(result.jobs);
  return result;
}

/**
 * Most connections in one group job. The members run concurrently in one exporter invocation
 * and share its memory (each holds its own gzip blocks and multipart-upload buffers, tens of
 * MB), its cores and its time budget: that bounds a group, long before the SQS message size
 * does (10 ids are about 400 bytes of 256 KiB).
 */
export const MAX_GROUP_CONNECTIONS = 10;

export interface DueConnection {
  connectionId: string;
  appId: string;
  windowEnd: string;
  /**
   * False for a connection catching up (a window longer than one period, or an older pinned
   * window): in a group it would hold the others back by the shared reader's look-ahead for
   * its whole catch-up, so it runs alone.
   */
  grouped: boolean;
}

/**
 * The jobs for due connections: one group job per (app, window end) of the grouped ones,
 * split evenly into groups of at most `maxGroup`; a single job for every other connection and
 * for a group of one (the message shape of a single connection's job).
 */
export function groupExportJobs(due: DueConnection[], maxGroup = MAX_GROUP_CONNECTIONS): ExportJob[] {
  const order: (DueConnection | DueConnection[])[] = [];
  const groups = new Map<string, DueConnection[]>();
  for (const d of due) {
    if (!d.grouped) {
      order.push(d);
      continue;
    }
    const key = JSON.stringify([d.appId, d.windowEnd]);
    const group = groups.get(key);
    if (group) group.push(d);
    else {
      const fresh = [d];
      groups.set(key, fresh);
      order.push(fresh);
    }
  }
  const jobs: ExportJob[] = [];
  for (const item of order) {
    const members = Array.isArray(item) ? item : [item];
    const parts = Math.ceil(members.length / maxGroup);
    for (let p = 0; p < parts; p += 1) {
      const ids = members
        .slice(Math.floor((p * members.length) / parts), Math.floor(((p + 1) * members.length) / parts))
        .map((m) => m.connectionId);
      const windowEnd = members[0]!.windowEnd;
      jobs.push(
        ids.length === 1
          ? { connectionId: ids[0]!, windowEnd, reason: 'schedule' }
          : { connectionIds: ids, windowEnd, reason: 'schedule' },
      );
    }
  }
  return jobs;
}
