/**
 * Ports: what the use cases need from the outside world. Adapters in
 * lambdas/adapters implement them with the AWS SDK (against AWS or the local
 * engines); the use cases never import an SDK.
 */
import type { Readable } from 'node:stream';
import type { Frequency } from '../definitions.ts';
import type { Connection } from '../domain/connection.ts';
import type { WindowGap } from '../domain/data-expiry.ts';
import type { ConnectionDiagnosis } from '../domain/diagnosis.ts';
import type { ExportJob } from '../domain/jobs.ts';
import type { ManifestSupersedes, SupersededObject, WrittenPart } from '../domain/manifest.ts';

// Domain facts the ports speak in, re-exported for the adapters and callers that import them from here.
export type { BatchExportJob, ConnectionExportJob, ExportJob, GroupExportJob } from '../domain/jobs.ts';
export { jobConnectionIds } from '../domain/jobs.ts';
export type { ConnectionDiagnosis, ManifestSupersedes, SupersededObject, WrittenPart };

/** Time is a parameter: every component takes its clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

// ---------------------------------------------------------------- staging

/** What the exporter reads of a window, in order (docs/staging-layout.md). */
export interface StagedObjectRef {
  /** Opaque ref key: one or more byte ranges of compacted slots (domain/staged-segment.ts). */
  key: string;
  /** Start of the ref's first slot: refs are ordered by it, then by key. */
  stageTime: Date;
  /** Stored (gzipped) size in bytes. */
  size?: number;
}

export interface StoredKey {
  key: string;
  size: number;
}

/** Slots of a window that are not compacted yet: the window cannot be read until they are. */
export class SlotsNotCompactedError extends Error {
  override readonly name = 'SlotsNotCompactedError';
  constructor(readonly slotStarts: Date[]) {
    super(
      `staging slot(s) ${slotStarts.map((s) => s.toISOString()).join(', ')} are not compacted yet; ` +
        'the compactor writes them a couple of minutes after they end',
    );
  }
}

export interface StagingStore {
  /**
   * Create an object only if its key does not exist (S3 `If-None-Match: *`).
   * Resolves 'exists' on PreconditionFailed/409 (written by an earlier attempt).
   */
  createObject(key: string, body: Uint8Array): Promise<'created' | 'exists'>;
  exists(key: string): Promise<boolean>;
  /** Every object under `prefix`, in key order. */
  listPrefix(prefix: string): Promise<StoredKey[]>;
  /** The bytes of an object, or of `range` of it; undefined when the object does not exist. */
  readBytes(key: string, range?: { offset: number; length: number }): Promise<Uint8Array | undefined>;
  /** Write (or overwrite) an object from chunks, multipart when large. */
  writeStream(key: string, body: AsyncIterable<Uint8Array>): Promise<void>;
  /**
   * The refs of `appId`'s events with `start <= T < end` (start floored to its slot), in
   * (stageTime, key) order; throws SlotsNotCompactedError when a slot of the window has no index.
   * Small chunks are grouped into one ref up to `groupBytes` stored bytes (default 1 MiB).
   */
  listWindow(appId: string, start: Date, end: Date, groupBytes?: number): Promise<StagedObjectRef[]>;
  /** The stored (gzipped) bytes of one ref, streamed. */
  openObject(key: string): Promise<Readable>;
}

/**
 * The stager's per-shard checkpoint. Kinesis delivers a shard in order, so one
 * row per shard says what is durably staged (`stagedThrough`) and fixes the
 * identity (sequence range, stage time, segment key) of the unit in flight.
 */
export interface ShardCheckpoint {
  shardId: string;
  /** Every record with a sequence number <= this is durably staged (or recorded as abandoned). */
  stagedThrough?: string;
  /** The unit in flight (stored as `pending`): written, or about to be, and not yet acknowledged. */
  pending?: StagingUnitInFlight;
  /** Sequence ranges the event source gave up on before they were staged (latest last, bounded). */
  abandoned?: AbandonedRange[];
  /** Optimistic-concurrency version; 0 means "no row yet". */
  version: number;
}

/**
 * One stager unit in flight: its records go into one segment object, whatever their apps. (Not
 * the export's pending window, ExportState.pendingWindowEnd: a different thing.)
 */
export interface StagingUnitInFlight {
  firstSequence: string;
  lastSequence: string;
  stageTimeMs: number;
  key: string;
}

/** Records of a unit that Kinesis will not deliver again and that were not staged. */
export interface AbandonedRange {
  firstSequence: string;
  lastSequence: string;
  at: string;
}

export interface StagingLedger {
  getCheckpoint(shardId: string): Promise<ShardCheckpoint>;
  /** Write `next` only if the stored version still equals `expectedVersion`; false when it moved. */
  putCheckpoint(next: Omit<ShardCheckpoint, 'version'>, expectedVersion: number): Promise<boolean>;
}

// ---------------------------------------------------------------- connections

/** One page of connection rows, and the token of the next page (absent on the last). */
export interface ConnectionPage {
  rows: Record<string, unknown>[];
  next?: string;
}

export interface ConnectionRepository {
  /** The raw row (validated by the caller, since a row may be invalid). */
  getRaw(connectionId: string): Promise<Record<string, unknown> | undefined>;
  /** Raw rows whose `frequency` attribute equals `frequency`, via the byFrequency GSI (not a scan). */
  listRawByFrequency(frequency: Frequency): Promise<Record<string, unknown>[]>;
  /**
   * One page of those rows, after the page whose `next` token is `after` (from the start when
   * undefined). Optional: without it a caller reads `listRawByFrequency` as one page.
   */
  listRawByFrequencyPage?(frequency: Frequency, after?: string): Promise<ConnectionPage>;
  /** Every raw row (operator CLI only; a scan). */
  listRaw(): Promise<Record<string, unknown>[]>;
  /**
   * Store a validated connection (whole-row replace), atomically with the claim of its prefix in
   * its bucket (domain/namespaces.ts); the prefixes the row held before are released.
   * @throws NamespaceConflictError when another connection's prefix equals, contains or lies in its prefix.
   */
  put(connection: Connection): Promise<void>;
  /** Delete the row and release its prefix claims. */
  delete(connectionId: string): Promise<void>;
  /**
   * Make sure the connection holds the claim of its prefix (rows written around `put`, e.g. with
   * `aws dynamodb put-item`, hold none yet): the exporter calls this before writing.
   * @throws NamespaceConflictError when another connection holds a colliding prefix.
   */
  claimNamespace(connection: Connection): Promise<void>;
}

// ---------------------------------------------------------------- export state

export interface ExportLease {
  owner: string;
  expiresAt: Date;
}

/** Where a window that spans invocations continues (see docs/exactly-once.md). */
export interface ExportCursor {
  /** Staged objects of the window already consumed, in listing order. */
  nextObjectIndex: number;
  /** Next data part number to write (1-based). */
  nextPartNumber: number;
  /** Parts already written and durable, part n at index n − 1 (each stored in a row of its own). */
  parts: WrittenPart[];
  /**
   * Identity of this writing of the window's parts (random, fixed when its first part is written):
   * the rows of its parts carry it, so rows of an earlier writing of the same window end are
   * never mistaken for its own. Absent on cursors saved before parts had rows of their own.
   */
  attempt?: string;
}

export interface ExportState {
  connectionId: string;
  /** End of the last committed window: every event with T < watermark is exported. */
  watermark: Date;
  /** Number of committed windows (the manifest sequence of the last one). */
  sequence: number;
  /** The window end pinned by the first attempt on the current watermark; retries reuse it. */
  pendingWindowEnd?: Date;
  /**
   * The connection row the pending window is being written with. An attempt takes the current row
   * instead when no part is written yet, and when parts are written but the destination or the
   * encryption changed (the window is then written again whole); otherwise (e.g. only the event
   * selection changed) the window is finished with these settings (docs/exactly-once.md §3).
   */
  pendingConnection?: Record<string, unknown>;
  /**
   * The watermark before the last backfill: while the watermark is below it, committed windows
   * are exported again to their own keys (docs/exactly-once.md §8). Absent when never backfilled.
   */
  replayThrough?: Date;
  /** Objects earlier attempts of the pending window wrote under settings since replaced. */
  pendingSupersedes?: SupersededObject[];
  /** A pending window a backfill dropped; the next attempt supersedes what it may have written. */
  droppedWindow?: DroppedWindow;
  /** What the last committed window that superseded anything superseded (also in its history row). */
  superseded?: { windowEnd: Date; supersedes: ManifestSupersedes };
  lease?: ExportLease;
  cursor?: ExportCursor;
  lastError?: ConnectionDiagnosis;
  lastCommittedAt?: Date;
  lastFileKey?: string;
  /** The latest window committed with a gap (events that may be missing), kept until a later one. */
  lastGap?: WindowGap & { windowEnd: string };
}

/**
 * A pending window a backfill dropped (nothing recorded by its cursor): its last part and its
 * manifest are written before the commit records them, so an attempt that stopped in between may
 * have left them. The next attempt checks them and supersedes those that exist.
 */
export interface DroppedWindow {
  windowEnd: Date;
  /** The row the window was pinned with. */
  connection: Record<string, unknown>;
  /** The part an attempt would have written next. */
  nextPartNumber: number;
}

export interface CommitWindow {
  /** Must equal the stored watermark for the commit to succeed. */
  expectedWatermark: Date;
  windowEnd: Date;
  /** The window's manifest sequence: old + 1, or the earlier commit's when a backfill exports it again. */
  sequence: number;
  /** The state's sequence after the commit: the highest manifest sequence of the connection. */
  stateSequence: number;
  /** Bucket the window was written to (kept in its history row). */
  bucketName: string;
  /** What the window supersedes (kept in its history row and on the state). */
  supersedes?: ManifestSupersedes | undefined;
  leaseOwner: string;
  committedAt: Date;
  parts: WrittenPart[];
  manifestKey: string;
  /**
   * How many of `parts` (the first ones) saveCursor stored already: the commit adds only the
   * others. 0 or absent: none.
   */
  recordedParts?: number;
  /** The cursor's `attempt`, whose part rows the window's history links. */
  partsAttempt?: string | undefined;
  /**
   * What earlier commits of the same window end counted (a backfill's re-export counts again):
   * the history row keeps the sum, from which monthly usage is derived.
   */
  earlierUsage?: UsageCounts | undefined;
  /** Ranges of the window whose events may be missing (recorded in history and as lastGap). */
  gaps?: WindowGap[];
}

export interface ExportStateStore {
  get(connectionId: string): Promise<ExportState | undefined>;
  /**
   * The states of many connections (consistent reads, up to 100 a call — DynamoDB BatchGetItem);
   * absent ids have no state yet. Optional: without it callers read one by one.
   */
  getMany?(connectionIds: string[]): Promise<Map<string, ExportState>>;
  /** Create the state row with `watermark` when absent; return the stored state either way. */
  initialize(connectionId: string, watermark: Date): Promise<ExportState>;
  /**
   * Take the lease when it is free, expired (`expiresAt <= now`) or already ours, and pin
   * `pendingWindowEnd` to `windowEnd` (and `pendingConnection` to `connectionSnapshot`) unless a
   * window is pinned already. Returns the state after the write, or undefined when another owner
   * holds an unexpired lease.
   */
  acquireLease(
    connectionId: string,
    owner: string,
    now: Date,
    leaseMs: number,
    windowEnd: Date,
    connectionSnapshot?: Record<string, unknown>,
  ): Promise<ExportState | undefined>;
  /** Extend our lease; false when it is no longer ours. */
  renewLease(connectionId: string, owner: string, now: Date, leaseMs: number): Promise<boolean>;
  /**
   * Record progress of a window that spans parts: the cursor (constant size) and, in the same
   * transaction, a row for each of `cursor.parts` from index `recorded` on (those written since
   * the last save). False when the lease is no longer ours (nothing written).
   */
  saveCursor(
    connectionId: string,
    owner: string,
    windowEnd: Date,
    cursor: ExportCursor,
    recorded: number,
  ): Promise<boolean>;
  /**
   * Replace the pending window's settings (while we hold the lease): pendingConnection :=
   * `connectionSnapshot`, pendingSupersedes := `supersedes`, cursor and droppedWindow cleared (the
   * window is written again from its start). Returns the state after the write; undefined when the lease is not ours.
   */
  repinWindow(
    connectionId: string,
    owner: string,
    connectionSnapshot: Record<string, unknown>,
    supersedes: SupersededObject[],
  ): Promise<ExportState | undefined>;
  /**
   * Atomically: watermark := windowEnd, sequence := commit.stateSequence, clear pending window (and
   * its connection snapshot, superseded objects), cursor, lease and lastError; add (or replace) the
   * window's history row (which monthly usage is derived from) and the rows of parts saveCursor did
   * not store. Only when the watermark still equals expectedWatermark and the lease is ours;
   * false otherwise (nothing written).
   */
  commitWindow(connectionId: string, commit: CommitWindow): Promise<boolean>;
  /** The history row of the committed window ending at `windowEnd`, if any. */
  getCommittedWindow(connectionId: string, windowEnd: Date): Promise<CommittedWindowRecord | undefined>;
  /**
   * The end of the earliest committed window ending after `after`. Only a backfill leaves such
   * windows (it moves the watermark back): the exporter writes them again to their own keys.
   */
  nextCommittedWindowEnd(connectionId: string, after: Date): Promise<Date | undefined>;
  releaseLease(connectionId: string, owner: string): Promise<void>;
  recordError(connectionId: string, diagnosis: ConnectionDiagnosis): Promise<void>;
  /**
   * A connection test passed at `testedAt`: clear `lastError` when it was recorded at or before
   * then (a later error, e.g. from an export running meanwhile, stays). Creates no state row.
   */
  recordPassedTest(connectionId: string, testedAt: Date): Promise<void>;
  /**
   * Move a connection's watermark for a backfill: only when no unexpired lease is held (now) and
   * no pending window has a part recorded; clears the cursor and an unwritten pending window,
   * keeping it as `droppedWindow` when given (then only if the pending window is still that one).
   * False when refused.
   */
  resetWatermark(
    connectionId: string,
    watermark: Date,
    now: Date,
    replayThrough?: Date,
    dropped?: DroppedWindow,
  ): Promise<boolean>;
}

/** A committed window as its history row keeps it. */
export interface CommittedWindowRecord {
  windowStart: Date;
  windowEnd: Date;
  sequence: number;
  parts: WrittenPart[];
  manifestKey: string;
  /** Absent on rows written before buckets were recorded. */
  bucketName?: string;
  supersedes?: ManifestSupersedes;
  /** What the window's commits of this end counted, summed (usage is derived from it). */
  usage?: UsageCounts;
}

/** Events, files and bytes one or more commits exported. */
export interface UsageCounts {
  events: number;
  files: number;
  bytes: number;
}

/** A committed window as the operator's history lists it (the history row, parts read back in full). */
export interface WindowHistoryEntry {
  connectionId: string;
  windowStart: Date;
  windowEnd: Date;
  sequence: number;
  parts: WrittenPart[];
  manifestKey: string;
  records: number;
  bytes: number;
  committedAt: Date;
  /** Number of parts; `parts` lists them all unless `partsInManifestOnly` (then the manifest does). */
  partCount?: number;
  partsInManifestOnly?: boolean;
  /** Ranges of the window whose events may be missing (absent: none). */
  gaps?: WindowGap[];
  /** Absent on rows written before buckets were recorded. */
  bucketName?: string;
  /** What the window superseded (docs/exactly-once.md §3, §8). */
  supersedes?: ManifestSupersedes;
  /** What the commits of this window end counted, summed (set by getCommittedWindow and listHistory). */
  usage?: UsageCounts;
}

/** What one connection exported in one month (the platform bills by volume: docs/operations.md). */
export interface MonthlyUsage {
  connectionId: string;
  /** `YYYY-MM` (UTC month of the window ends). */
  month: string;
  events: number;
  files: number;
  bytes: number;
}

/**
 * A state row as the operator lists it. `watermark` is absent when only an error was recorded
 * (e.g. the connection row was invalid before its first export).
 */
export type StoredExportState = Omit<ExportState, 'watermark'> & { watermark?: Date };

/** Where a committed window lies and when it was (last) committed. */
export interface CommittedWindowSpan {
  windowStart: Date;
  windowEnd: Date;
  committedAt: Date;
}

/** The operator's reads of the export state beyond what the exporter needs (CLI, lag checks). */
export interface ExportStateQueries {
  /** The state row of every connection (a scan: not the hot path). */
  listStates(): Promise<StoredExportState[]>;
  /** Committed windows of a connection, oldest first (`newestFirst` reverses), up to `limit`. */
  listHistory(
    connectionId: string,
    options?: { limit?: number; newestFirst?: boolean },
  ): Promise<WindowHistoryEntry[]>;
  /**
   * The committed window with the earliest end among those committed at or after `since` (a
   * re-export counts as a commit), or undefined when none was: what a backfill after a fix must
   * write again (`backfill --committed-since`).
   */
  earliestWindowCommittedSince(connectionId: string, since: Date): Promise<CommittedWindowSpan | undefined>;
  /** Usage of one connection in one month (`YYYY-MM`); zeros when nothing was exported. */
  getUsage(connectionId: string, month: string): Promise<MonthlyUsage>;
  /** Every month with usage of one connection, oldest first. */
  listUsage(connectionId: string): Promise<MonthlyUsage[]>;
}

// ---------------------------------------------------------------- customer buckets

/** Everything needed to write into one connection's bucket. */
export interface SinkTarget {
  connectionId: string;
  bucketName: string;
  bucketRegion: string;
  bucketOwnerAccountId?: string | undefined;
  kmsKeyArn?: string | undefined;
  assumeRoleArn?: string | undefined;
  externalId?: string | undefined;
}

export interface StoredObject {
  key: string;
  bytes: number;
  /** Hex SHA-256 of the bytes as stored. */
  sha256: string;
}

export interface ExportSink {
  /**
   * Stream `body` to `key` in the target bucket with `bucket-owner-full-control`,
   * `ExpectedBucketOwner` when known and SSE-KMS when a key is set (multipart for large bodies).
   * When `options.signal` aborts, the upload is abandoned (its multipart upload aborted) and the
   * call rejects: the exporter fences its writes by its lease this way (docs/exactly-once.md §4).
   */
  putObject(
    target: SinkTarget,
    key: string,
    body: Readable,
    contentType: string,
    options?: PutOptions,
  ): Promise<StoredObject>;
  /**
   * Whether `key` exists in the target bucket (HEAD). False also when the bucket refuses or does
   * not exist: nothing can have been written there. Optional: without it, nothing is assumed written.
   */
  exists?(target: SinkTarget, key: string): Promise<boolean>;
}

export interface PutOptions {
  signal?: AbortSignal | undefined;
}

/** The KMS key as our exporter identity sees it (an adapter calls KMS DescribeKey). */
export interface KmsKeyDescription {
  keyState: string;
  enabled: boolean;
  keyManager?: string | undefined;
}

/** Describes a connection's KMS key with the identity that writes its objects ("test connection"). */
export interface KmsKeyInspector {
  describeKey(target: SinkTarget, kmsKeyArn: string): Promise<KmsKeyDescription>;
}

/** PGP operations (lambdas/adapters/pgp.ts fits): the use cases do not import openpgp. */
export interface PayloadEncryption<K> {
  loadEncryptionKey(armored: string, now: Date): Promise<K>;
  encryptStream(key: K, plaintext: Readable): Readable;
}

// ---------------------------------------------------------------- notifications

/** Tells operators (and through them customers) what happened to a window. */
export interface ExportNotifier {
  windowCommitted(event: {
    connectionId: string;
    windowStart: Date;
    windowEnd: Date;
    sequence: number;
    records: number;
    bytes: number;
    files: number;
    recovered: boolean;
  }): Promise<void>;
  exportFailed(event: {
    connectionId: string;
    windowEnd: Date;
    diagnosis: ConnectionDiagnosis;
  }): Promise<void>;
}

// ---------------------------------------------------------------- jobs

export interface JobQueue {
  enqueue(jobs: ExportJob[]): Promise<void>;
}

/**
 * Where a schedule tick cut short by its time budget continues: the page token after the last
 * page whose jobs were all enqueued. A retried tick (same frequency and window end) resumes there.
 */
export interface TickProgressStore {
  get(frequency: Frequency, windowEnd: Date): Promise<string | undefined>;
  save(frequency: Frequency, windowEnd: Date, after: string, now: Date): Promise<void>;
  clear(frequency: Frequency, windowEnd: Date): Promise<void>;
}
