/**
 * A schedule tick: find the connections of a frequency (GSI query, page by page), fix the window
 * end from the tick's *scheduled* time, and enqueue the export jobs as it goes: one group job per
 * app for the ACTIVE connections that are on time (they read the app's staged data once,
 * together), one single job per connection that is catching up. States are read in parallel
 * (bounded); a tick that runs low on time saves where it stopped and a retry continues there.
 * Measures export lag and the age of unexported data (every connection of the frequency: active,
 * paused, invalid or never exported) for the lag and data-at-risk alarms.
 */
import { DEFAULT_STAGING_RETENTION_DAYS, type Frequency } from '../definitions.ts';
import { mapBounded } from '../domain/bounded.ts';
import { type Connection, validateConnection } from '../domain/connection.ts';
import { dataAtRiskAgeMs, unexportedDataAgeMs } from '../domain/data-expiry.ts';
import {
  assertWindowEndSettled,
  exportLagMs,
  periodMs,
  replayPending,
  windowEndForTick,
} from '../domain/windows.ts';
import type {
  Clock,
  ConnectionPage,
  ConnectionRepository,
  ExportJob,
  ExportState,
  ExportStateStore,
  JobQueue,
  TickProgressStore,
} from '../ports/index.ts';

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
  /** Where a tick cut short continues; without it a tick always runs to its end. */
  progress?: TickProgressStore;
}

export interface DispatchOptions {
  /** For the age at which unexported data is at risk (default 14). */
  stagingRetentionDays?: number;
  /** State reads in flight at once (default 32). */
  readConcurrency?: number;
  /** Milliseconds left in this invocation; the tick stops between pages when below `reserveMs`. */
  remainingTimeMs?: () => number;
  /** Default 30 s: time to enqueue what is due and save the progress. */
  reserveMs?: number;
  /** Grouped connections held before they are enqueued (default 2,000; see JobBatcher). */
  maxHeldConnections?: number;
}

export const DEFAULT_READ_CONCURRENCY = 32;
export const DEFAULT_DISPATCH_RESERVE_MS = 30_000;

export interface LaggingConnection {
  connectionId: string;
  lagSeconds: number;
}

/** A connection whose oldest unexported staged data is close to (or past) its expiry. */
export interface AtRiskConnection {
  connectionId: string;
  /** The row's status, or INVALID, or NEW (never exported). */
  status: string;
  unexportedAgeSeconds: number;
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
  /** Age of the oldest unexported staged data over every connection of the frequency, seconds. */
  maxUnexportedAgeSeconds: number;
  /** Connections whose unexported data is older than the data-at-risk age. */
  atRisk: AtRiskConnection[];
  /** Pages of connection rows read by this invocation. */
  pages: number;
  /** `continued`: the time budget ran out; the progress is saved and a retry of the tick continues. */
  status: 'complete' | 'continued';
}

interface TickContext {
  input: TickInput;
  deps: DispatchDeps;
  windowEnd: Date;
  now: Date;
  settleDelayMs: number;
  atRiskAgeMs: number;
}

/** What one connection row contributes to the tick. */
interface RowOutcome {
  invalidId?: string;
  inactive?: boolean;
  due?: DueConnection;
  lag?: LaggingConnection & { late: boolean };
  /** Age of the connection's unexported data; `atRisk` when past the data-at-risk age. */
  age?: { seconds: number; atRisk?: AtRiskConnection };
}

export async function dispatchTick(
  input: TickInput,
  deps: DispatchDeps,
  settleDelayMs: number,
  options: DispatchOptions = {},
): Promise<TickResult> {
  const windowEnd = windowEndForTick(input.frequency, input.scheduledTime);
  const retentionMs = (options.stagingRetentionDays ?? DEFAULT_STAGING_RETENTION_DAYS) * 86_400_000;
  const now = deps.clock.now();
  // A tick from the future (a wrong --at, a skewed caller) would move watermarks past unstaged events.
  assertWindowEndSettled(windowEnd, now, settleDelayMs, "the tick's window end");
  const ctx: TickContext = {
    input,
    deps,
    windowEnd,
    now,
    settleDelayMs,
    atRiskAgeMs: dataAtRiskAgeMs(input.frequency, retentionMs, settleDelayMs),
  };
  const result: TickResult = {
    windowEnd,
    jobs: [],
    connections: 0,
    invalidConnections: [],
    inactiveConnections: 0,
    maxLagSeconds: 0,
    lagging: [],
    maxUnexportedAgeSeconds: 0,
    atRisk: [],
    pages: 0,
    status: 'complete',
  };
  const batcher = new JobBatcher(MAX_GROUP_CONNECTIONS, options.maxHeldConnections);
  const enqueue = async (jobs: ExportJob[]) => {
    if (jobs.length === 0) return;
    await deps.jobs.enqueue(jobs);
    result.jobs.push(...jobs);
  };
  const resumedFrom = await deps.progress?.get(input.frequency, windowEnd);
  let after = resumedFrom;
  let position = 0;
  do {
    const remaining = options.remainingTimeMs?.();
    const reserve = options.reserveMs ?? DEFAULT_DISPATCH_RESERVE_MS;
    // Stop between pages, after progress, only when a retry can continue where this one stopped.
    if (deps.progress && after && result.pages > 0 && remaining !== undefined && remaining < reserve) {
      await enqueue(batcher.flush());
      await deps.progress.save(input.frequency, windowEnd, after, deps.clock.now());
      result.status = 'continued';
      return result;
    }
    const page = await readPage(deps.connections, input.frequency, after);
    const concurrency = options.readConcurrency ?? DEFAULT_READ_CONCURRENCY;
    const outcomes = await inspectPage(page.rows, position, ctx, concurrency);
    position += page.rows.length;
    for (const outcome of outcomes) fold(result, outcome);
    await enqueue(batcher.add(outcomes.flatMap((o) => (o.due ? [o.due] : []))));
    result.pages += 1;
    after = page.next;
  } while (after);
  await enqueue(batcher.flush());
  if (resumedFrom !== undefined) await deps.progress?.clear(input.frequency, windowEnd);
  return result;
}

async function readPage(
  connections: ConnectionRepository,
  frequency: Frequency,
  after: string | undefined,
): Promise<ConnectionPage> {
  if (connections.listRawByFrequencyPage) return connections.listRawByFrequencyPage(frequency, after);
  return { rows: await connections.listRawByFrequency(frequency) };
}

function fold(result: TickResult, outcome: RowOutcome): void {
  if (outcome.invalidId !== undefined) result.invalidConnections.push(outcome.invalidId);
  if (outcome.inactive) result.inactiveConnections += 1;
  if (outcome.due) result.connections += 1;
  if (outcome.lag) {
    result.maxLagSeconds = Math.max(result.maxLagSeconds, outcome.lag.lagSeconds);
    if (outcome.lag.late)
      result.lagging.push({ connectionId: outcome.lag.connectionId, lagSeconds: outcome.lag.lagSeconds });
  }
  if (outcome.age) {
    result.maxUnexportedAgeSeconds = Math.max(result.maxUnexportedAgeSeconds, outcome.age.seconds);
    if (outcome.age.atRisk) result.atRisk.push(outcome.age.atRisk);
  }
}

/** Where a connection without a committed window starts: its backfill start, else its creation. */
function startOf(row: Record<string, unknown>): Date | undefined {
  const at = new Date(String(row.startFrom ?? row.createdAt ?? ''));
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** The age of a connection's unexported data, and whether it is past the data-at-risk age. */
function ageOf(
  connectionId: string,
  status: string,
  state: ExportState | undefined,
  row: Record<string, unknown>,
  ctx: TickContext,
): Pick<RowOutcome, 'age'> {
  const exportedUntil = state?.watermark ?? startOf(row);
  if (!exportedUntil) return {};
  const ageMs = unexportedDataAgeMs(exportedUntil, ctx.now);
  const seconds = Math.round(ageMs / 1000);
  if (ageMs <= ctx.atRiskAgeMs) return { age: { seconds } };
  // NEW: never exported (no state yet), so its data is unexported since it started.
  const label = state || status === 'INVALID' ? status : `${status}/NEW`;
  return { age: { seconds, atRisk: { connectionId, status: label, unexportedAgeSeconds: seconds } } };
}

/** Validate a page of rows, read the states they need (batched, in parallel), and judge each row. */
async function inspectPage(
  rows: Record<string, unknown>[],
  position: number,
  ctx: TickContext,
  concurrency: number,
): Promise<RowOutcome[]> {
  const validations = rows.map((raw) => validateConnection(raw));
  // A DISABLED connection promises no export; a row without an id has no state.
  const stateIds = validations.flatMap((v, i) => {
    if (v.ok) return v.connection.status === 'DISABLED' ? [] : [v.connection.connectionId];
    const id = rows[i]?.connectionId;
    return typeof id === 'string' ? [id] : [];
  });
  const states = await readStates(ctx.deps.state, stateIds, concurrency);
  return mapBounded(rows, concurrency, async (raw, i) => {
    const validation = validations[i] as ReturnType<typeof validateConnection>;
    if (validation.ok) return connectionOutcome(validation.connection, raw, states, ctx);
    return invalidOutcome(raw, validation.errors, position + i, states, ctx);
  });
}

async function readStates(
  store: ExportStateStore,
  ids: string[],
  concurrency: number,
): Promise<Map<string, ExportState>> {
  const states = new Map<string, ExportState>();
  if (store.getMany) {
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += 100) chunks.push(ids.slice(i, i + 100));
    const maps = await mapBounded(chunks, concurrency, (chunk) =>
      (store.getMany as NonNullable<typeof store.getMany>).call(store, chunk),
    );
    for (const map of maps) for (const [id, state] of map) states.set(id, state);
    return states;
  }
  const read = await mapBounded(ids, concurrency, (id) => store.get(id));
  ids.forEach((id, i) => {
    const state = read[i];
    if (state) states.set(id, state);
  });
  return states;
}

async function invalidOutcome(
  raw: Record<string, unknown>,
  errors: { field: string; message: string }[],
  position: number,
  states: Map<string, ExportState>,
  ctx: TickContext,
): Promise<RowOutcome> {
  const connectionId = typeof raw.connectionId === 'string' ? raw.connectionId : undefined;
  if (!connectionId) return { invalidId: `row#${position}` };
  await ctx.deps.state.recordError(connectionId, {
    code: 'INVALID_CONNECTION',
    message: `the connection row is invalid and is not exported until fixed: ${errors
      .map((e) => `${e.field}: ${e.message}`)
      .join('; ')}`,
    at: ctx.now.toISOString(),
    windowEnd: ctx.windowEnd.toISOString(),
  });
  return { invalidId: connectionId, ...ageOf(connectionId, 'INVALID', states.get(connectionId), raw, ctx) };
}

function connectionOutcome(
  connection: Connection,
  raw: Record<string, unknown>,
  states: Map<string, ExportState>,
  ctx: TickContext,
): RowOutcome {
  if (connection.status === 'DISABLED') return { inactive: true };
  const state = states.get(connection.connectionId);
  const age = ageOf(connection.connectionId, connection.status, state, raw, ctx);
  if (connection.status !== 'ACTIVE') return { inactive: true, ...age };
  return { ...activeOutcome(connection, state, ctx), ...age };
}

function activeOutcome(connection: Connection, state: ExportState | undefined, ctx: TickContext): RowOutcome {
  const { input, windowEnd, now } = ctx;
  const outcome: RowOutcome = {};
  if (state) {
    const lagMs = exportLagMs(input.frequency, state.watermark, now);
    outcome.lag = {
      connectionId: connection.connectionId,
      lagSeconds: Math.round(lagMs / 1000),
      late: lagMs > periodMs(input.frequency) + ctx.settleDelayMs,
    };
    // Caught up, unless a backfill's re-export of committed windows is not done.
    if (state.watermark.getTime() >= windowEnd.getTime() && !state.pendingWindowEnd && !replayPending(state))
      return outcome;
  }
  // Where its export starts: a new connection (no state yet) at its backfill start or creation.
  const windowStart = state?.watermark ?? new Date(connection.startFrom ?? connection.createdAt);
  const pendingElsewhere =
    state?.pendingWindowEnd !== undefined && state.pendingWindowEnd.getTime() !== windowEnd.getTime();
  outcome.due = {
    connectionId: connection.connectionId,
    appId: connection.appId,
    windowEnd: windowEnd.toISOString(),
    grouped: !pendingElsewhere && windowStart.getTime() >= windowEnd.getTime() - periodMs(input.frequency),
  };
  return outcome;
}

/**
 * Turns due connections into jobs as pages come: single jobs at once; the grouped connections of
 * one (app, window end) are held until they fill two groups, then one full group goes out, so
 * the rest still splits evenly at the end (12 connections: 6 + 6, as in one pass). When more than
 * `maxHeld` connections are held, all of them go out: memory stays bounded and messages keep
 * flowing (an app whose connections straddle that point gets two groups instead of one).
 */
export class JobBatcher {
  private readonly held = new Map<string, DueConnection[]>();
  private heldCount = 0;

  constructor(
    private readonly maxGroup = MAX_GROUP_CONNECTIONS,
    private readonly maxHeld = DEFAULT_MAX_HELD_CONNECTIONS,
  ) {}

  add(due: DueConnection[]): ExportJob[] {
    const ready: DueConnection[] = [];
    const full: DueConnection[][] = [];
    for (const d of due) {
      if (!d.grouped) {
        ready.push(d);
        continue;
      }
      const key = JSON.stringify([d.appId, d.windowEnd]);
      const members = this.held.get(key) ?? [];
      members.push(d);
      this.held.set(key, members);
      this.heldCount += 1;
      if (members.length >= 2 * this.maxGroup) {
        full.push(members.splice(0, this.maxGroup));
        this.heldCount -= this.maxGroup;
      }
    }
    const jobs = [
      ...groupExportJobs(ready, this.maxGroup),
      ...full.flatMap((g) => groupExportJobs(g, this.maxGroup)),
    ];
    return this.heldCount > this.maxHeld ? [...jobs, ...this.flush()] : jobs;
  }

  /** Every held connection, in groups split evenly. */
  flush(): ExportJob[] {
    const rest = [...this.held.values()].flat();
    this.held.clear();
    this.heldCount = 0;
    return groupExportJobs(rest, this.maxGroup);
  }
}

/** Grouped connections held at most before they are enqueued (a few hundred KB of memory). */
export const DEFAULT_MAX_HELD_CONNECTIONS = 2_000;

/**
 * Most connections in one group job. The members run concurrently in one exporter invocation
 * and share its memory (each holds its own gzip blocks and multipart-upload buffers, tens of
 * MB), its cores and its time budget: that bounds a group, long before the SQS message size
 * does (10 ids are about 400 bytes of 256 KiB).
 */
export const MAX_GROUP_CONNECTIONS = 10;

/**
 * Most connections in one batch job (groups of several apps). The exporter runs a batch's groups
 * a few at a time (BATCH_LANES in export-job.ts), so this bounds the time of a batch, not its
 * memory; 100 ids are about 4 KB of a 256 KiB message.
 */
export const MAX_BATCH_CONNECTIONS = 100;

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
 * The jobs for due connections: the grouped ones form one group per (app, window end), split
 * evenly into groups of at most `maxGroup`, and consecutive groups of one window end are packed
 * into batch jobs of at most `maxBatch` connections (a batch of one group keeps the group or
 * single shape); every other connection (catching up) gets a single job.
 */
export function groupExportJobs(
  due: DueConnection[],
  maxGroup = MAX_GROUP_CONNECTIONS,
  maxBatch = MAX_BATCH_CONNECTIONS,
): ExportJob[] {
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
  let batch: string[][] = [];
  let batched = 0;
  const flushBatch = () => {
    if (batch.length > 0) jobs.push(batchJob(batch, batchWindowEnd));
    batch = [];
    batched = 0;
  };
  let batchWindowEnd = '';
  for (const item of order) {
    if (!Array.isArray(item)) {
      jobs.push({ connectionId: item.connectionId, windowEnd: item.windowEnd, reason: 'schedule' });
      continue;
    }
    const parts = Math.ceil(item.length / maxGroup);
    for (let p = 0; p < parts; p += 1) {
      const ids = item
        .slice(Math.floor((p * item.length) / parts), Math.floor(((p + 1) * item.length) / parts))
        .map((m) => m.connectionId);
      const windowEnd = item[0]!.windowEnd;
      // Up-to-date groups of one window end share batch messages (one invocation runs many apps).
      if (batched + ids.length > maxBatch || (batch.length > 0 && windowEnd !== batchWindowEnd)) flushBatch();
      batchWindowEnd = windowEnd;
      batch.push(ids);
      batched += ids.length;
    }
  }
  flushBatch();
  return jobs;
}

/** The message for some groups of one window end: the old single or group shape when it is one group. */
function batchJob(groups: string[][], windowEnd: string): ExportJob {
  if (groups.length > 1) return { groups, windowEnd, reason: 'schedule' };
  const ids = groups[0]!;
  return ids.length === 1
    ? { connectionId: ids[0]!, windowEnd, reason: 'schedule' }
    : { connectionIds: ids, windowEnd, reason: 'schedule' };
}
