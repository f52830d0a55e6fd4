/**
 * What a simulation run checks at the end, from the stored objects themselves (docs/simulation.md,
 * "What is checked"): every generated event staged exactly once, and for each connection the
 * demo's verification (local/verify.ts) of its files and manifests against the events it must
 * have exported — computed here independently of the exporter's code — plus its state, usage
 * counters and window history.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { type Connection, parseConnection } from '../../lambdas/domain/connection.ts';
import { SLOT_MS, slotStartOf } from '../../lambdas/domain/staging-layout.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import type { ExportState, StagingStore } from '../../lambdas/ports/index.ts';
import { droppedWindowObjects } from '../../lambdas/usecases/export-window.ts';
import { readStagedLines } from '../staged-segments.ts';
import { type ConnectionVerification, verifyConnection } from '../verify.ts';
import type { SimContext } from './context.ts';
import { type ConnectionOutcome, DAY } from './options.ts';
import type { GeneratedRecord } from './stager.ts';
import type { Tally } from './tally.ts';

/**
 * Every generated event is in exactly one staged object, with a stage time within the attempts
 * of the batch it was last put into the stream in (a replayed event's: the replay's) — except the
 * `lost` ones (records the stream no longer holds, runbook.ts), which are in none. Returns the
 * stage time of each event.
 */
export async function checkStaging(
  staging: StagingStore,
  generated: ReadonlyMap<string, GeneratedRecord>,
  lost: ReadonlySet<string>,
  tally: Tally,
): Promise<Map<string, number>> {
  const stageTimes = new Map<string, number>();
  const slots = new Set<number>();
  for (const { batch } of generated.values())
    if (batch.firstAttemptAt !== undefined && batch.stagedAt !== undefined)
      for (let t = slotStartOf(new Date(batch.firstAttemptAt)).getTime(); t <= batch.stagedAt; t += SLOT_MS)
        slots.add(t);
  const staged = await readStagedLines(
    staging,
    [...slots].sort((a, b) => a - b).map((t) => new Date(t)),
  );
  for (const { line, stageTime, segmentKey: key } of staged) {
    const t = stageTime.getTime();
    const uuid = (JSON.parse(line) as { event_uuid: string }).event_uuid;
    const source = generated.get(uuid);
    if (!source) tally.problem(`staged object ${key} holds an event never generated: ${uuid}`);
    else if (stageTimes.has(uuid)) tally.problem(`event ${uuid} is staged twice (${key})`);
    else if (lost.has(uuid)) tally.problem(`event ${uuid} is counted as lost but staged (${key})`);
    else if (
      source.batch.firstAttemptAt === undefined ||
      source.batch.stagedAt === undefined ||
      t < source.batch.firstAttemptAt ||
      t > source.batch.stagedAt
    ) {
      tally.problem(`event ${uuid} has stage time ${new Date(t).toISOString()} outside its batch's attempts`);
    }
    stageTimes.set(uuid, t);
  }
  for (const uuid of generated.keys())
    if (!stageTimes.has(uuid) && !lost.has(uuid)) tally.problem(`event ${uuid} was never staged`);
  return stageTimes;
}

/** What the end-of-run checks of a connection read. */
export interface ConnectionCheckInput {
  ctx: SimContext;
  /** Reads the customer bucket. */
  s3: S3Client;
  generated: ReadonlyMap<string, GeneratedRecord>;
  stageTimes: ReadonlyMap<string, number>;
  /** Simulated time at the end of the catch-up. */
  finalTime: Date;
  /** Prefixes operator drills moved a connection's files to, other than its prefix at the end. */
  prefixesLeft?: (connection: Connection) => string[];
}

/**
 * One connection, as its row reads at the end: caught up, nothing pinned; its files and manifests
 * (local/verify.ts) hold exactly the events of its app that match its selection with
 * `createdAt <= T < watermark`, projected as configured; usage and history agree with them.
 */
export async function checkConnection(
  input: ConnectionCheckInput,
  connectionId: string,
  createdAt: string,
): Promise<ConnectionOutcome> {
  const { ctx, finalTime } = input;
  const connection = parseConnection((await ctx.driver.runtime.connections.getRaw(connectionId))!);
  const state = await ctx.driver.runtime.state.get(connectionId);
  // A connection starts at the staging slot holding its creation time.
  const initial = slotStartOf(new Date(createdAt)).getTime();
  const watermark = state?.watermark.getTime() ?? initial;
  checkCaughtUp(ctx, connection, state, watermark, finalTime);

  const expected = expectedEvents(input, connection, initial, watermark);
  const verification = await verifyConnection(input.s3, connection, [...expected.keys()], {
    // No drill leaves a usable PGP key: a `.gpg` file is a problem.
    decrypt: async () => undefined,
    // Day folder by day folder: the S3 emulator fails to page through more than 1000 keys of one prefix.
    exportDays: { from: new Date(ctx.settings.start - DAY), to: new Date(finalTime.getTime() + DAY) },
    windows: { from: new Date(initial), to: new Date(watermark) },
    expectedEvent: (uuid) => expected.get(uuid),
    formerPrefixes: input.prefixesLeft?.(connection),
    pendingSuperseded: pendingSuperseded(connection, state),
  });
  for (const problem of verification.problems) ctx.tally.problem(`${connectionId}: ${problem}`);
  await checkBookkeeping(ctx, connectionId, state, verification);
  return {
    connectionId,
    frequency: connection.frequency,
    expected: expected.size,
    exported: verification.exported,
    duplicates: verification.duplicates,
    unexpected: verification.unexpected,
    missing: verification.missing,
    files: verification.files.length,
    manifests: verification.manifests.length,
    watermark: new Date(watermark).toISOString(),
  };
}

/**
 * What the connection's next export will report as superseded, when the run ended before it: the
 * state's `pendingSupersedes` and the objects of a window a backfill dropped (its next part and its
 * manifest, as the export reports them: `droppedWindowObjects`).
 */
function pendingSuperseded(connection: Connection, state: ExportState | undefined): string[] {
  const keys = (state?.pendingSupersedes ?? [])
    .filter((o) => o.bucketName === connection.bucketName)
    .map((o) => o.key);
  const dropped = state?.droppedWindow && droppedWindowObjects(state.droppedWindow);
  if (dropped && dropped.connection.bucketName === connection.bucketName) keys.push(...dropped.keys);
  return keys;
}

/** The watermark is at the latest boundary of the connection's frequency, and no window is pinned. */
function checkCaughtUp(
  ctx: SimContext,
  connection: Connection,
  state: ExportState | undefined,
  watermark: number,
  finalTime: Date,
): void {
  const id = connection.connectionId;
  const due = boundaryAtOrBefore(
    connection.frequency,
    new Date(finalTime.getTime() - ctx.settleMs),
  ).getTime();
  if (watermark < due) {
    ctx.tally.problem(
      `${id} is not caught up: watermark ${new Date(watermark).toISOString()} < ${new Date(due).toISOString()}`,
    );
  }
  if (state?.pendingWindowEnd || state?.cursor)
    ctx.tally.problem(`${id} still has a pending window after catch-up`);
}

/** The events the connection must have exported, by uuid, as its records must hold them. */
function expectedEvents(
  input: ConnectionCheckInput,
  connection: Connection,
  initial: number,
  watermark: number,
): Map<string, Record<string, unknown>> {
  const expected = new Map<string, Record<string, unknown>>();
  for (const [uuid, source] of input.generated) {
    const t = input.stageTimes.get(uuid);
    if (source.app !== connection.appId || t === undefined || t < initial || t >= watermark) continue;
    const event = expectedRecordEvent(connection, source.event);
    if (event) expected.set(uuid, event);
  }
  return expected;
}

/**
 * The state's sequence, the window history and the usage counters agree with the bucket (exact
 * under retries): the history's commits hold what the bucket holds, and usage counts every
 * commit — a backfill's re-export of a window counts again, any other window once.
 */
async function checkBookkeeping(
  ctx: SimContext,
  id: string,
  state: ExportState | undefined,
  verification: ConnectionVerification,
): Promise<void> {
  const { exported, files, manifests } = verification;
  if ((state?.sequence ?? 0) !== manifests.length) {
    ctx.tally.problem(`${id}: state sequence ${state?.sequence} but ${manifests.length} manifests`);
  }
  const history = await ctx.driver.runtime.state.listHistory(id);
  if (history.length !== manifests.length) {
    ctx.tally.problem(`${id}: ${history.length} window history rows for ${manifests.length} manifests`);
  }
  const committed = { events: 0, files: 0 };
  const metered = { events: 0, files: 0 };
  for (const w of history) {
    const own = { events: w.records, files: w.partCount ?? w.parts.length };
    const counted = w.usage ?? own;
    committed.events += own.events;
    committed.files += own.files;
    metered.events += counted.events;
    metered.files += counted.files;
    const reexport = w.supersedes?.sequence !== undefined;
    if (reexport ? counted.events < own.events : counted.events !== own.events || counted.files !== own.files)
      ctx.tally.problem(
        `${id}: the window ending ${w.windowEnd.toISOString()} counts ${counted.events} events for ${own.events} committed`,
      );
  }
  if (committed.events !== exported || committed.files !== files.length) {
    ctx.tally.problem(
      `${id}: the history's commits hold ${committed.events} events in ${committed.files} files, the bucket ${exported} in ${files.length}`,
    );
  }
  const usage = await ctx.driver.runtime.state.listUsage(id);
  const usageEvents = usage.reduce((n, u) => n + u.events, 0);
  const usageFiles = usage.reduce((n, u) => n + u.files, 0);
  if (usageEvents !== metered.events || usageFiles !== metered.files) {
    ctx.tally.problem(
      `${id}: usage says ${usageEvents} events in ${usageFiles} files, its commits (re-exports included) ${metered.events} in ${metered.files}`,
    );
  }
}

/** The selection and projection a connection must apply, written independently of the exporter's code. */
export function expectedRecordEvent(
  connection: Connection,
  event: Record<string, unknown>,
): Record<string, unknown> | undefined {
  if (connection.events.mode === 'SELECTED') {
    const names = connection.events.names;
    if (!names.includes(String(event.event_name)) && !names.includes(String(event.event_code))) {
      return undefined;
    }
  }
  const project = (value: unknown, keep: 'ALL' | readonly string[], id: string): unknown => {
    if (keep === 'ALL' || value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).filter(([k]) => k === id || keep.includes(k)),
    );
  };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (key === 'user_attributes') out[key] = project(value, connection.userAttributes, 'moengage_user_id');
    else if (key === 'device_attributes')
      out[key] = project(value, connection.deviceAttributes, 'moengage_device_id');
    else out[key] = value;
  }
  return out;
}
