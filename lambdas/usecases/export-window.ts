/**
 * Export one connection's window [watermark, windowEnd) exactly once: validate the row, refuse an
 * unsettled window end, take the lease and pin the window (and the row it is written with), stream
 * the staged objects into parts split by size, or by time when the invocation runs low, with a
 * cursor after each part but the last to continue in the next invocation, every write fenced by
 * the lease (lease-fence.ts), write the manifest last, then move the watermark with one
 * conditional write. Why each step, and what a backfill changes: docs/exactly-once.md.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Connection } from '../domain/connection.ts';
import { validateConnection } from '../domain/connection.ts';
import { expiredGap, type WindowGap } from '../domain/data-expiry.ts';
import { recordFrame } from '../domain/export-record.ts';
import {
  buildManifest,
  type ManifestSupersedes,
  type SupersededObject,
  serializeManifest,
  type WindowManifest,
} from '../domain/manifest.ts';
import { NamespaceConflictError } from '../domain/namespaces.ts';
import { dataObjectKey, manifestObjectKey } from '../domain/object-keys.ts';
import type { CompressedRecords } from '../domain/record-codec/gzip-members.ts';
import type { RecordWriterSpec } from '../domain/record-codec/record-writer.ts';
import { REF_GROUP_BYTES } from '../domain/staged-segment.ts';
import { slotStartOf } from '../domain/staging-layout.ts';
import { readAll } from '../domain/stream-bytes.ts';
import { assertWindowEndSettled, replayPending } from '../domain/windows.ts';
import type {
  Clock,
  CommittedWindowRecord,
  ConnectionDiagnosis,
  ConnectionRepository,
  DroppedWindow,
  ExportCursor,
  ExportNotifier,
  ExportSink,
  ExportState,
  ExportStateStore,
  JobQueue,
  SinkTarget,
  StagedObjectRef,
  StagingStore,
  WrittenPart,
} from '../ports/index.ts';
import { listSettledWindow } from './compact-slot.ts';
import { UseCaseError } from './errors.ts';
import { LeaseFence } from './lease-fence.ts';
import { defaultCompressor, type ObjectCompressor } from './record-worker-pool.ts';

export const DEFAULT_LEASE_MS = 5 * 60_000;
/** Parts are split when their uncompressed output passes this size (docs/product.md#output-keys, parts). */
export const DEFAULT_PART_SIZE_BYTES = 512 * 1024 * 1024;

/** A configuration problem of one connection: recorded on its state, not retried until the row changes. */
export class ConnectionProblemError extends UseCaseError {
  override readonly name = 'ConnectionProblemError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Encryptor = (plaintext: Readable) => Readable;

export interface ExportSettings {
  leaseMs: number;
  partSizeBytes: number;
  gzipLevel: number;
  stagingRetentionDays: number;
  /** No window end later than now minus this is exported (the safe horizon, docs/exactly-once.md §2). */
  settleDelayMs: number;
}

export interface ExportDeps {
  connections: ConnectionRepository;
  state: ExportStateStore;
  staging: StagingStore;
  sink: ExportSink;
  clock: Clock;
  settings: ExportSettings;
  /** Refuse a connection before any write (KMS allowlist, PGP key validity); throw ConnectionProblemError. */
  preflight?: (connection: Connection, now: Date) => Promise<{ encrypt?: Encryptor }>;
  /** Turn a write failure into words the customer can act on. */
  diagnose?: (error: unknown, connection: Connection) => ConnectionDiagnosis;
  /** Re-enqueue a window that continues in another invocation. */
  jobs?: JobQueue;
  notifier?: ExportNotifier;
  /**
   * Milliseconds left in this invocation: below `reserveMs`, the part being written closes at the
   * next staged-object boundary and the window continues in another invocation.
   */
  remainingTimeMs?: () => number;
  reserveMs?: number;
  /** A part also closes (at a staged-object boundary) once it has taken this long; default: no bound. */
  partTimeLimitMs?: number;
  /** How often (real milliseconds) a write in flight checks its lease's deadline (lease-fence.ts). */
  fencePollMs?: number;
  /** Identity of this attempt (a lease owner); random by default. */
  owner?: string;
}

export interface ExportJobInput {
  connectionId: string;
  windowEnd: Date;
}

export interface CommittedWindow {
  windowStart: Date;
  windowEnd: Date;
  sequence: number;
  parts: WrittenPart[];
  manifestKey: string;
  records: number;
  /** Ranges whose events may be missing (staged data expired before the export); absent: none. */
  gaps?: WindowGap[];
  /** What the window superseded: an earlier commit of its end, objects no manifest lists any more. */
  supersedes?: ManifestSupersedes | undefined;
}

export type ExportOutcome =
  | { status: 'committed'; windows: CommittedWindow[] }
  | { status: 'up-to-date' }
  | { status: 'missing' }
  | { status: 'inactive'; connectionStatus: string }
  | { status: 'refused'; diagnosis: ConnectionDiagnosis }
  | { status: 'lease-held' }
  | { status: 'lost-race'; windows: CommittedWindow[] }
  | { status: 'continued'; windows: CommittedWindow[]; cursor: ExportCursor };

export function sinkTargetOf(connection: Connection): SinkTarget {
  return {
    connectionId: connection.connectionId,
    bucketName: connection.bucketName,
    bucketRegion: connection.bucketRegion,
    bucketOwnerAccountId: connection.bucketOwnerAccountId,
    kmsKeyArn: connection.kmsKeyArn,
    assumeRoleArn: connection.assumeRoleArn,
    externalId: connection.externalId,
  };
}

/** The watermark a connection starts from: its backfill start, else its creation time. */
export function initialWatermark(connection: Connection, now: Date, stagingRetentionDays: number): Date {
  if (connection.startFrom) {
    const startFrom = new Date(connection.startFrom);
    const earliest = now.getTime() - stagingRetentionDays * 86_400_000;
    if (startFrom.getTime() < earliest) {
      throw new ConnectionProblemError(
        'BACKFILL_BEYOND_RETENTION',
        `startFrom ${connection.startFrom} is earlier than the staging retention allows ` +
          `(${stagingRetentionDays} days: ${new Date(earliest).toISOString()}); set startFrom at or after that instant`,
      );
    }
    return slotStartOf(startFrom);
  }
  // Windows read whole staging slots: a connection starts at the slot holding its creation time.
  return slotStartOf(new Date(connection.createdAt));
}

function genericDiagnosis(error: unknown): ConnectionDiagnosis {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'EXPORT_FAILED', message: `${name}: ${message}`, at: new Date().toISOString() };
}

/** Another invocation took the connection's lease (or may have): this one stops without writing further. */
class LostLeaseError extends UseCaseError {
  override readonly name = 'LostLeaseError';
  constructor(reason = "another invocation took over the connection's lease") {
    super(`${reason}; this one stops`);
  }
}

/** The connection must hold its prefix in its bucket (domain/namespaces.ts) before it writes a key there. */
export async function claimNamespace(
  connection: Connection,
  deps: Pick<ExportDeps, 'connections'>,
): Promise<void> {
  try {
    await deps.connections.claimNamespace(connection);
  } catch (error) {
    if (error instanceof NamespaceConflictError)
      throw new ConnectionProblemError('NAMESPACE_CONFLICT', error.message);
    throw error;
  }
}

async function refuse(
  connectionId: string,
  problem: ConnectionProblemError,
  now: Date,
  deps: ExportDeps,
): Promise<ExportOutcome> {
  const diagnosis = { code: problem.code, message: problem.message, at: now.toISOString() };
  await deps.state.recordError(connectionId, diagnosis);
  return { status: 'refused', diagnosis };
}

/** Settings whose change moves or re-encrypts a window's files: a window is never split across two. */
const DESTINATION_FIELDS = [
  'bucketName',
  'bucketRegion',
  'bucketOwnerAccountId',
  'folderPath',
  'connectionName',
  'assumeRoleArn',
  'externalId',
  'kmsKeyArn',
  'pgpPublicKey',
] as const satisfies readonly (keyof Connection)[];

/** Fields that never change what or where a window writes. */
const IGNORED_FIELDS = new Set(['status', 'updatedAt']);

function sameSettings(a: Connection, b: Connection): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => !IGNORED_FIELDS.has(k)));
  const field = (c: Connection, k: string) => (c as unknown as Record<string, unknown>)[k];
  return [...keys].every((k) => stableJson(field(a, k)) === stableJson(field(b, k)));
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

function mergeObjects(...lists: SupersededObject[][]): SupersededObject[] {
  const seen = new Map<string, SupersededObject>();
  for (const o of lists.flat()) seen.set(`${o.bucketName}\u0000${o.key}`, o);
  return [...seen.values()];
}

/**
 * The settings the pending window is written with (docs/exactly-once.md §3): the current row when
 * no part is written yet (a fixed bucket, role, key... takes effect at once), or when parts are
 * written but the destination or the encryption changed — then the window is written again whole
 * under the current row, and what the earlier attempts wrote is kept as superseded. Otherwise
 * (e.g. only the event selection changed) the window is finished with the settings it was
 * pinned with. Undefined when the lease was lost meanwhile.
 */
async function pendingWindowSettings(
  current: Connection,
  state: ExportState,
  windowEnd: Date,
  owner: string,
  deps: ExportDeps,
): Promise<{ connection: Connection; state: ExportState } | undefined> {
  if (state.droppedWindow) return supersedeDroppedWindow(current, state, owner, deps);
  if (!state.pendingConnection) return { connection: current, state };
  const validation = validateConnection(state.pendingConnection);
  if (!validation.ok) return { connection: current, state };
  // Status (pause/disable) always comes from the current row: it was checked before the lease.
  const pinned = { ...validation.connection, status: current.status };
  if (sameSettings(pinned, current)) return { connection: pinned, state };
  const written = await writtenKeys(pinned, state, windowEnd, deps);
  const moved = DESTINATION_FIELDS.some((f) => stableJson(pinned[f]) !== stableJson(current[f]));
  if (written.length > 0 && !moved) return { connection: pinned, state };
  const manifestKey = manifestObjectKey(pinned, windowEnd);
  // Moved: the window's objects stay behind — its parts and manifest, or the manifest alone (an
  // empty window) when an attempt stopped between writing it and the commit.
  let abandoned: SupersededObject[] = [];
  if (written.length > 0)
    abandoned = [...written, manifestKey].map((key) => ({ bucketName: pinned.bucketName, key }));
  else if (moved) abandoned = await existingObjects(pinned, [manifestKey], deps);
  return repinCurrent(current, state, abandoned, owner, deps);
}

/** The pending window is written again whole under the current row; `abandoned` joins what it supersedes. */
async function repinCurrent(
  current: Connection,
  state: ExportState,
  abandoned: SupersededObject[],
  owner: string,
  deps: ExportDeps,
): Promise<{ connection: Connection; state: ExportState } | undefined> {
  const repinned = await deps.state.repinWindow(
    current.connectionId,
    owner,
    current as unknown as Record<string, unknown>,
    mergeObjects(state.pendingSupersedes ?? [], abandoned),
  );
  return repinned ? { connection: current, state: repinned } : undefined;
}

/** Those of `keys` that exist in the bucket of `connection`, as superseded objects. */
async function existingObjects(
  connection: Connection,
  keys: string[],
  deps: ExportDeps,
): Promise<SupersededObject[]> {
  const objects: SupersededObject[] = [];
  for (const key of keys)
    if (await deps.sink.exists?.(sinkTargetOf(connection), key))
      objects.push({ bucketName: connection.bucketName, key });
  return objects;
}

/**
 * The first attempt after a backfill that dropped a pending window: the part that window's next
 * attempt would have written and its manifest (written before the commit records them) are
 * superseded by the window pinned now when they exist, so nothing is left unreported.
 */
async function supersedeDroppedWindow(
  current: Connection,
  state: ExportState,
  owner: string,
  deps: ExportDeps,
): Promise<{ connection: Connection; state: ExportState } | undefined> {
  const dropped = droppedWindowObjects(state.droppedWindow!);
  const left = dropped ? await existingObjects(dropped.connection, dropped.keys, deps) : [];
  return repinCurrent(current, state, left, owner, deps);
}

/**
 * What a pending window a backfill dropped may have left unrecorded: the part its next attempt
 * would have written and its manifest, under the row it was pinned to (none when that row is not
 * valid: nothing could have been written under it).
 */
export function droppedWindowObjects(
  dropped: DroppedWindow,
): { connection: Connection; keys: string[] } | undefined {
  const validation = validateConnection(dropped.connection);
  if (!validation.ok) return undefined;
  const { connection } = validation;
  return {
    connection,
    keys: [
      dataObjectKey(connection, dropped.windowEnd, dropped.nextPartNumber),
      manifestObjectKey(connection, dropped.windowEnd),
    ],
  };
}

/**
 * The keys earlier attempts of the pending window wrote: the parts of its cursor, and the part
 * after them when it exists — the part that ends a window is recorded by the commit, not by a
 * cursor save, and an attempt may have stopped between its upload and the commit.
 */
async function writtenKeys(
  pinned: Connection,
  state: ExportState,
  windowEnd: Date,
  deps: ExportDeps,
): Promise<string[]> {
  const recorded = (state.cursor?.parts ?? []).map((p) => p.key);
  const next = dataObjectKey(pinned, windowEnd, state.cursor?.nextPartNumber ?? 1);
  const unrecorded = (await deps.sink.exists?.(sinkTargetOf(pinned), next)) ?? false;
  return unrecorded ? [...recorded, next] : recorded;
}

/**
 * What a window's commit supersedes: the earlier commit of the same end (a backfill's re-export)
 * and every object written for it before that this commit did not overwrite.
 */
export function windowSupersedes(
  target: { bucketName: string },
  written: { parts: WrittenPart[]; manifestKey: string },
  earlier: CommittedWindowRecord | undefined,
  pending: SupersededObject[] | undefined,
): ManifestSupersedes | undefined {
  const earlierObjects = earlier
    ? [...earlier.parts.map((p) => p.key), earlier.manifestKey].map((key) => ({
        bucketName: earlier.bucketName ?? target.bucketName,
        key,
      }))
    : [];
  const now = new Set([...written.parts.map((p) => p.key), written.manifestKey]);
  const objects = mergeObjects(pending ?? [], earlier?.supersedes?.objects ?? [], earlierObjects).filter(
    (o) => o.bucketName !== target.bucketName || !now.has(o.key),
  );
  if (!earlier && objects.length === 0) return undefined;
  return {
    ...(earlier ? { sequence: earlier.sequence, windowStart: earlier.windowStart.toISOString() } : {}),
    objects,
  };
}

export async function exportWindow(job: ExportJobInput, deps: ExportDeps): Promise<ExportOutcome> {
  const now = deps.clock.now();
  assertWindowEndSettled(job.windowEnd, now, deps.settings.settleDelayMs);
  const start = await startingState(job, now, deps);
  if ('status' in start) return start;
  const { connection } = start;
  let state = start.state;

  const owner = deps.owner ?? randomUUID();
  const committed: CommittedWindow[] = [];
  const hadError = state.lastError !== undefined;
  const lostOrHeld = (): ExportOutcome =>
    committed.length ? { status: 'lost-race', windows: committed } : { status: 'lease-held' };
  // One job may commit several windows: an older pending window first, then up to the job's end
  // (and the windows a backfill re-exports, even past that end: the frequency may have changed).
  while (
    state.watermark.getTime() < job.windowEnd.getTime() ||
    state.pendingWindowEnd ||
    replayPending(state)
  ) {
    if (committed.length > 0 && outOfTime(deps)) {
      // Many windows (a backfill's re-exports) in one job: the next invocation goes on.
      await enqueueContinuation(connection.connectionId, job.windowEnd, deps);
      break;
    }
    // After a backfill, the committed windows after the watermark are exported again to their own keys.
    const replayEnd =
      state.pendingWindowEnd || !isReplaying(state, state.watermark)
        ? undefined
        : await deps.state.nextCommittedWindowEnd(connection.connectionId, state.watermark);
    if (!replayEnd && !state.pendingWindowEnd && state.watermark.getTime() >= job.windowEnd.getTime()) break;
    const leasedAt = deps.clock.now();
    const leased = await deps.state.acquireLease(
      connection.connectionId,
      owner,
      leasedAt,
      deps.settings.leaseMs,
      replayEnd ?? job.windowEnd,
      connection as unknown as Record<string, unknown>,
    );
    if (!leased) return lostOrHeld();
    state = leased;
    if (!state.pendingWindowEnd) {
      // A rival committed meanwhile: choose again.
      if (state.watermark.getTime() < job.windowEnd.getTime() || replayPending(state)) continue;
      // A rival committed this window (or a later one) between our read and our lease: exporting
      // [watermark, job end) now would re-commit it empty, or move the watermark back.
      await deps.state.releaseLease(connection.connectionId, owner);
      break;
    }
    const step = await exportLeasedWindow(connection, state, { owner, leasedAt, now }, deps);
    if (step.status === 'lease-held') return lostOrHeld();
    if (step.status === 'lost') return { status: 'lost-race', windows: committed };
    if (step.status === 'refused') return step.outcome;
    if (step.status === 'continued') return { status: 'continued', windows: committed, cursor: step.cursor };
    committed.push(step.window);
    await notifyCommitted(connection.connectionId, step.window, hadError && committed.length === 1, deps);
    // The commit says what the state is now: no read needed (the next lease reads it anyway).
    state = stateAfterCommit(state, step.window);
  }
  return committed.length ? { status: 'committed', windows: committed } : { status: 'up-to-date' };
}

/** The connection and its state (initialized on its first export), or why there is nothing to do. */
async function startingState(
  job: ExportJobInput,
  now: Date,
  deps: ExportDeps,
): Promise<ExportOutcome | { connection: Connection; state: ExportState }> {
  const raw = await deps.connections.getRaw(job.connectionId);
  if (!raw) return { status: 'missing' };

  const validation = validateConnection(raw);
  if (!validation.ok) {
    const diagnosis: ConnectionDiagnosis = {
      code: 'INVALID_CONNECTION',
      message: `the connection row is invalid and is not exported until fixed: ${validation.errors
        .map((e) => `${e.field}: ${e.message}`)
        .join('; ')}`,
      at: now.toISOString(),
      windowEnd: job.windowEnd.toISOString(),
    };
    await deps.state.recordError(job.connectionId, diagnosis);
    return { status: 'refused', diagnosis };
  }
  const connection = validation.connection;
  if (connection.status !== 'ACTIVE') return { status: 'inactive', connectionStatus: connection.status };
  try {
    const state =
      (await deps.state.get(connection.connectionId)) ??
      (await deps.state.initialize(
        connection.connectionId,
        initialWatermark(connection, now, deps.settings.stagingRetentionDays),
      ));
    return { connection, state };
  } catch (error) {
    if (!(error instanceof ConnectionProblemError)) throw error;
    return refuse(connection.connectionId, error, now, deps);
  }
}

type LeasedOutcome =
  | PendingWindowOutcome
  | { status: 'lease-held' }
  | { status: 'lost' }
  | { status: 'refused'; outcome: ExportOutcome };

/** Export the pending window of `state`, whose lease `lease.owner` took at `lease.leasedAt`. */
async function exportLeasedWindow(
  connection: Connection,
  leasedState: ExportState,
  lease: { owner: string; leasedAt: Date; now: Date },
  deps: ExportDeps,
): Promise<LeasedOutcome> {
  const { owner } = lease;
  const windowEnd = leasedState.pendingWindowEnd!;
  const settings = await pendingWindowSettings(connection, leasedState, windowEnd, owner, deps);
  if (!settings) return { status: 'lease-held' };
  const state = settings.state;
  const windowConnection = settings.connection;
  let encrypt: Encryptor | undefined;
  try {
    encrypt = (await deps.preflight?.(windowConnection, deps.clock.now()))?.encrypt;
    await claimNamespace(windowConnection, deps);
  } catch (error) {
    if (!(error instanceof ConnectionProblemError)) throw error;
    await deps.state.releaseLease(connection.connectionId, owner);
    return { status: 'refused', outcome: await refuse(connection.connectionId, error, lease.now, deps) };
  }
  try {
    const earlier = isReplaying(state, windowEnd)
      ? await deps.state.getCommittedWindow(connection.connectionId, windowEnd)
      : undefined;
    const pending = { connection: windowConnection, state, windowEnd, encrypt, earlier };
    return await exportPendingWindow(pending, { owner, leasedAt: lease.leasedAt }, deps);
  } catch (error) {
    if (error instanceof LostLeaseError) return { status: 'lost' };
    const diagnosis = {
      ...(deps.diagnose ?? genericDiagnosis)(error, windowConnection),
      windowEnd: windowEnd.toISOString(),
    };
    await deps.state.recordError(connection.connectionId, diagnosis).catch(() => undefined);
    await deps.state.releaseLease(connection.connectionId, owner).catch(() => undefined);
    await deps.notifier
      ?.exportFailed({ connectionId: connection.connectionId, windowEnd, diagnosis })
      .catch(() => undefined);
    throw error;
  }
}

/** The window is committed: a notification that cannot be published must not turn it into a failure. */
async function notifyCommitted(
  connectionId: string,
  window: CommittedWindow,
  recovered: boolean,
  deps: ExportDeps,
): Promise<void> {
  await deps.notifier
    ?.windowCommitted({
      connectionId,
      windowStart: window.windowStart,
      windowEnd: window.windowEnd,
      sequence: window.sequence,
      records: window.records,
      bytes: window.parts.reduce((n, p) => n + p.bytes, 0),
      files: window.parts.length,
      recovered,
    })
    .catch(() => undefined);
}

/**
 * The state after committing `window` from `state`, as the commit wrote it (what the loop reads:
 * watermark, sequence, no pending window; the backfill's replay bound is unchanged).
 */
export function stateAfterCommit(state: ExportState, window: CommittedWindow): ExportState {
  return {
    connectionId: state.connectionId,
    watermark: window.windowEnd,
    sequence: Math.max(window.sequence, state.sequence),
    ...(state.replayThrough ? { replayThrough: state.replayThrough } : {}),
    lastFileKey: window.parts.at(-1)?.key ?? window.manifestKey,
  };
}

async function enqueueContinuation(connectionId: string, windowEnd: Date, deps: ExportDeps): Promise<void> {
  await deps.jobs?.enqueue([{ connectionId, windowEnd: windowEnd.toISOString(), reason: 'continuation' }]);
}

/** Whether `at` is within what a backfill re-exports (only then is the history consulted). */
function isReplaying(state: ExportState, at: Date): boolean {
  return state.replayThrough !== undefined && at.getTime() <= state.replayThrough.getTime();
}

/** Less than the reserve is left of the invocation's time budget (exports and batch jobs). */
export function outOfTime(deps: Pick<ExportDeps, 'remainingTimeMs' | 'reserveMs'>): boolean {
  const remaining = deps.remainingTimeMs?.();
  return remaining !== undefined && remaining < (deps.reserveMs ?? 0);
}

/**
 * When a part closes early, at the next staged-object boundary: the invocation's time runs low
 * (below the reserve), or the part has taken `partTimeLimitMs`. So every window ends within the
 * invocation's budget whatever its number of staged objects: the cursor is saved and the next
 * invocation goes on.
 */
function partCloser(deps: ExportDeps): () => boolean {
  const started = deps.clock.now().getTime();
  const limit = deps.partTimeLimitMs;
  return () => outOfTime(deps) || (limit !== undefined && deps.clock.now().getTime() - started >= limit);
}

type PendingWindowOutcome =
  | { status: 'committed'; window: CommittedWindow }
  | { status: 'continued'; cursor: ExportCursor };

/** A pending window and what it is written with. */
interface PendingWindow {
  connection: Connection;
  state: ExportState;
  windowEnd: Date;
  encrypt: Encryptor | undefined;
  /** The earlier commit of the same end (a backfill's re-export), if any. */
  earlier: CommittedWindowRecord | undefined;
}

/** Where a pending window's writing is: its staged objects, cursor and parts stored so far. */
interface WindowProgress {
  objects: StagedObjectRef[];
  cursor: ExportCursor;
  /** How many of cursor.parts have rows of their own (saved with the cursor). */
  recorded: number;
  source: WindowRecords;
  fence: LeaseFence;
}

async function exportPendingWindow(
  pending: PendingWindow,
  lease: { owner: string; leasedAt: Date },
  deps: ExportDeps,
): Promise<PendingWindowOutcome> {
  const { connection, state, windowEnd } = pending;
  // A ref never holds more stored bytes than a part's size, so parts stay near their size.
  const objects = await listSettledWindow(
    deps.staging,
    deps.clock,
    connection.appId,
    state.watermark,
    windowEnd,
    refGroupBytes(deps.settings.partSizeBytes),
  );
  // A cursor saved before parts had rows of their own gets an attempt: its parts are stored anew.
  const saved = state.cursor;
  const cursor: ExportCursor = {
    nextObjectIndex: saved?.nextObjectIndex ?? 0,
    nextPartNumber: saved?.nextPartNumber ?? 1,
    parts: [...(saved?.parts ?? [])],
    attempt: saved?.attempt ?? randomUUID(),
  };
  const fence = new LeaseFence(
    connection.connectionId,
    lease.owner,
    { state: deps.state, clock: deps.clock, leaseMs: deps.settings.leaseMs, pollMs: deps.fencePollMs },
    lease.leasedAt,
    (why) => new LostLeaseError(why),
  );
  const source = new WindowRecords(
    objects,
    cursor.nextObjectIndex,
    windowRecordWriter(connection, windowEnd),
    deps,
  );
  const progress: WindowProgress = {
    objects,
    cursor,
    recorded: saved?.attempt ? cursor.parts.length : 0,
    source,
    fence,
  };
  try {
    if ((await writeRemainingParts(pending, progress, lease.owner, deps)) === 'continued') {
      await enqueueContinuation(connection.connectionId, windowEnd, deps);
      await deps.state.releaseLease(connection.connectionId, lease.owner);
      return { status: 'continued', cursor };
    }
    return { status: 'committed', window: await commitPendingWindow(pending, progress, lease.owner, deps) };
  } finally {
    source.close();
  }
}

/**
 * Write the window's parts from the cursor on, saving the cursor after each part but the last
 * (the commit records that one). 'continued' when the invocation's time runs low after progress.
 */
async function writeRemainingParts(
  pending: PendingWindow,
  progress: WindowProgress,
  owner: string,
  deps: ExportDeps,
): Promise<'done' | 'continued'> {
  const { connection, windowEnd, encrypt } = pending;
  const { objects, cursor, source, fence } = progress;
  const target = sinkTargetOf(connection);
  let partsThisInvocation = 0;
  while (cursor.nextObjectIndex < objects.length) {
    // Stop between parts when the budget runs low, but only after progress, so a window always advances.
    if (partsThisInvocation > 0 && outOfTime(deps)) return 'continued';
    const part = await writeWindowPart(
      connection,
      target,
      windowEnd,
      objects,
      cursor,
      source,
      encrypt,
      fence.keep,
      deps,
      { closeEarly: partCloser(deps), write: fence.write },
    );
    if (!part) break;
    cursor.parts.push(part.written);
    cursor.nextObjectIndex = part.nextObjectIndex;
    cursor.nextPartNumber += 1;
    partsThisInvocation += 1;
    // The part that ends the window is recorded by the commit: a crash before it rewrites that part.
    if (cursor.nextObjectIndex >= objects.length) break;
    const saved = await deps.state.saveCursor(
      connection.connectionId,
      owner,
      windowEnd,
      cursor,
      progress.recorded,
    );
    if (!saved) throw new LostLeaseError('the lease was taken over by another exporter');
    progress.recorded = cursor.parts.length;
  }
  return 'done';
}

/** Write the manifest (under the lease fence), then move the watermark with one conditional write. */
async function commitPendingWindow(
  pending: PendingWindow,
  progress: WindowProgress,
  owner: string,
  deps: ExportDeps,
): Promise<CommittedWindow> {
  const { connection, state, windowEnd, earlier } = pending;
  const { cursor } = progress;
  const windowStart = state.watermark;
  const target = sinkTargetOf(connection);
  // Staged data older than the retention may be gone: never claim it (manifest, history, state).
  const gap = expiredGap(
    windowStart,
    windowEnd,
    deps.clock.now(),
    deps.settings.stagingRetentionDays * 86_400_000,
  );
  const gaps = gap ? [gap] : [];
  // A backfill's re-export of a committed window keeps its sequence (no gap, no repeat).
  const sequence = earlier?.sequence ?? state.sequence + 1;
  const supersedes = windowSupersedes(
    target,
    { parts: cursor.parts, manifestKey: manifestObjectKey(connection, windowEnd) },
    earlier,
    state.pendingSupersedes,
  );
  // The fence keeps an exporter whose lease ran out from overwriting the manifest of the one that took over.
  const { manifestKey, manifest } = await writeWindowManifest(
    connection,
    target,
    { sequence, windowStart, windowEnd, parts: cursor.parts, gaps, supersedes },
    deps.sink,
    progress.fence.write,
  );

  const ok = await deps.state.commitWindow(connection.connectionId, {
    expectedWatermark: windowStart,
    windowEnd,
    sequence,
    stateSequence: Math.max(sequence, state.sequence),
    bucketName: target.bucketName,
    supersedes,
    leaseOwner: owner,
    committedAt: deps.clock.now(),
    parts: cursor.parts,
    manifestKey,
    recordedParts: progress.recorded,
    partsAttempt: cursor.attempt,
    earlierUsage: earlier?.usage,
    ...(gaps.length ? { gaps } : {}),
  });
  if (!ok) throw new LostLeaseError('the commit found the lease or the watermark changed');
  return {
    windowStart,
    windowEnd,
    sequence,
    parts: cursor.parts,
    manifestKey,
    records: manifest.totalRecords,
    ...(gaps.length ? { gaps } : {}),
    supersedes,
  };
}

/** How many stored bytes of small chunks one ref may group: never more than a part's size. */
export function refGroupBytes(partSizeBytes: number): number {
  return Math.min(REF_GROUP_BYTES, partSizeBytes);
}

/** What writing a window's parts and manifest needs (the exporter's deps, or a rerun's). */
export interface WindowWriterDeps {
  staging: StagingStore;
  sink: ExportSink;
  settings: Pick<ExportSettings, 'partSizeBytes' | 'gzipLevel'>;
  /** Where staged objects are turned into compressed records (default: the process's worker threads). */
  compressor?: ObjectCompressor;
}

/** What every record of a window is written with: the connection's selection and the record frame. */
export function windowRecordWriter(connection: Connection, windowEnd: Date): RecordWriterSpec {
  return {
    selection: {
      events: connection.events,
      userAttributes: connection.userAttributes,
      deviceAttributes: connection.deviceAttributes,
    },
    frame: recordFrame(connection, windowEnd),
  };
}

/** Staged objects read and compressed ahead of the one being written, besides the workers' own. */
const LOOKAHEAD_OBJECTS = 2;

/**
 * The compressed records of a window's staged objects, taken in order. A few objects after the one
 * taken are already being read and compressed (by the worker threads), so reading S3, compressing
 * and uploading overlap; memory is bounded by that look-ahead (a few staged objects), not by the
 * window. Close it when done: results computed ahead and not taken are dropped.
 */
export class WindowRecords {
  private readonly ahead = new Map<number, Promise<CompressedRecords>>();
  private next: number;
  private readonly compress: ObjectCompressor;
  private readonly lookahead: number;

  constructor(
    private readonly objects: StagedObjectRef[],
    from: number,
    private readonly writer: RecordWriterSpec,
    private readonly deps: WindowWriterDeps,
  ) {
    this.next = from;
    const chosen = deps.compressor ? { compress: deps.compressor, lanes: 1 } : defaultCompressor();
    this.compress = chosen.compress;
    this.lookahead = LOOKAHEAD_OBJECTS + chosen.lanes;
  }

  /** The records of objects[index]; indexes are taken in increasing order. */
  take(index: number): Promise<CompressedRecords> {
    if (!this.ahead.has(index) && index >= this.next) this.next = index;
    while (this.next < this.objects.length && this.next <= index + this.lookahead) {
      const result = this.load(this.objects[this.next]!.key);
      // A failure is seen by whoever takes this object; until then it must not be "unhandled".
      result.catch(() => undefined);
      this.ahead.set(this.next, result);
      this.next += 1;
    }
    const result = this.ahead.get(index);
    if (!result) throw new Error(`staged object #${index} of the window was already taken`);
    this.ahead.delete(index);
    return result;
  }

  close(): void {
    this.ahead.clear();
  }

  private async load(key: string): Promise<CompressedRecords> {
    const body = await readAll(await this.deps.staging.openObject(key));
    return this.compress({ stagedKey: key, body, writer: this.writer, level: this.deps.settings.gzipLevel });
  }
}

/**
 * Write a window's manifest (docs/product.md#manifest), last, beside its parts. Shared by the exporter and by a
 * rerun of a committed window, which rewrites it with the same sequence and window start.
 */
export async function writeWindowManifest(
  connection: Connection,
  target: SinkTarget,
  window: {
    sequence: number;
    windowStart: Date;
    windowEnd: Date;
    parts: WrittenPart[];
    gaps?: WindowGap[] | undefined;
    supersedes?: ManifestSupersedes | undefined;
  },
  sink: ExportSink,
  write: FencedWrite = unfenced,
): Promise<{ manifestKey: string; manifest: WindowManifest }> {
  const manifest = buildManifest({ connectionId: connection.connectionId, ...window });
  const manifestKey = manifestObjectKey(connection, window.windowEnd);
  const body = serializeManifest(manifest);
  await write((signal) =>
    sink.putObject(target, manifestKey, Readable.from([body]), 'application/json', { signal }),
  );
  return { manifestKey, manifest };
}

/** Runs one write in a customer's bucket, with the signal that abandons it (the lease fence). */
export type FencedWrite = <T>(write: (signal: AbortSignal | undefined) => Promise<T>) => Promise<T>;

const unfenced: FencedWrite = (write) => write(undefined);

/** How the exporter bounds a part besides its size, and fences its upload. */
export interface PartControls {
  /** True when the part must close at the next staged-object boundary (time runs low). */
  closeEarly?: () => boolean;
  write?: FencedWrite;
}

/**
 * Write the next data part: staged objects from the cursor until the part's uncompressed size
 * passes the part size or `controls.closeEarly` says so, only at object boundaries and once the
 * part holds a record. By size alone the layout is the same on every attempt; a part closed early
 * ends wherever its attempt's time ran low, which is safe because the cursor records where every
 * part but the last ended, and a rewrite of the part after the cursor replaces it whole.
 * Returns undefined when no remaining object holds a selected record.
 */
export async function writeWindowPart(
  connection: Connection,
  target: SinkTarget,
  windowEnd: Date,
  objects: StagedObjectRef[],
  cursor: Pick<ExportCursor, 'nextObjectIndex' | 'nextPartNumber'>,
  source: WindowRecords,
  encrypt: Encryptor | undefined,
  keepLease: () => Promise<void>,
  deps: WindowWriterDeps,
  controls: PartControls = {},
): Promise<{ written: WrittenPart; nextObjectIndex: number } | undefined> {
  let index = cursor.nextObjectIndex;
  let bytes = 0;
  let records = 0;
  const partSize = deps.settings.partSizeBytes;

  // Each object's records are whole gzip members; concatenated in object order they make the part
  // (RFC 1952 §2.2: a gzip file is a series of members).
  async function* partMembers(): AsyncGenerator<Buffer> {
    const closeEarly = controls.closeEarly ?? (() => false);
    while (index < objects.length && !(records > 0 && (bytes >= partSize || closeEarly()))) {
      await keepLease();
      const object = await source.take(index);
      index += 1;
      bytes += object.bytes;
      records += object.records;
      if (object.gzip.length > 0)
        yield Buffer.from(object.gzip.buffer, object.gzip.byteOffset, object.gzip.length);
    }
  }

  // Only start an upload once the part is known to hold a record.
  const members = partMembers();
  const first = await members.next();
  if (first.done) {
    return undefined;
  }
  async function* withFirst(): AsyncGenerator<Buffer> {
    yield first.value as Buffer;
    yield* members;
  }
  const gzipped = Readable.from(withFirst(), { objectMode: false });
  const body = encrypt ? encrypt(gzipped) : gzipped;
  const key = dataObjectKey(connection, windowEnd, cursor.nextPartNumber);
  const contentType = encrypt ? 'application/pgp-encrypted' : 'application/gzip';
  const write = controls.write ?? unfenced;
  const stored = await write((signal) => deps.sink.putObject(target, key, body, contentType, { signal }));
  return {
    written: { key, records, bytes: stored.bytes, sha256: stored.sha256 },
    nextObjectIndex: index,
  };
}
