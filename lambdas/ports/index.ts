/**
 * Ports: what the use cases need from the outside world. Adapters in
 * lambdas/adapters implement them with the AWS SDK (against AWS or the local
 * engines); the use cases never import an SDK.
 */
import type { Readable } from 'node:stream';
import type { Frequency } from '../definitions.ts';
import type { Connection } from '../domain/connection.ts';
import type { ManifestSupersedes, SupersededObject } from '../domain/manifest.ts';

export type { ManifestSupersedes, SupersededObject };

/** Time is a parameter: every component takes its clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

// ---------------------------------------------------------------- staging

export interface StagedObjectRef {
  key: string;
  stageTime: Date;
  /** Stored (gzipped) size in bytes, when the listing tells it. */
  size?: number;
}

export interface StagingStore {
  /**
   * Create a staged object only if its key does not exist (S3 `If-None-Match: *`).
   * Resolves 'exists' on PreconditionFailed/409 (already staged by an earlier attempt).
   */
  createObject(key: string, gzippedBody: Uint8Array): Promise<'created' | 'exists'>;
  exists(key: string): Promise<boolean>;
  /**
   * Staged events objects of `appId` with `start <= T < end`, ordered by (T, key)
   * (domain/staging-layout.ts compareStagedObjects): the exporter reads them in this order.
   */
  listWindow(appId: string, start: Date, end: Date): Promise<StagedObjectRef[]>;
  /** The stored (gzipped) bytes of one staged object, streamed. */
  openObject(key: string): Promise<Readable>;
}

/**
 * The stager's per-shard checkpoint. Kinesis delivers a shard in order, so one
 * row per shard says what is durably staged (`stagedThrough`) and fixes the
 * identity (sequence range, stage time per app) of the batch in flight.
 */
export interface ShardCheckpoint {
  shardId: string;
  /** Every record with a sequence number <= this is durably staged. */
  stagedThrough?: string;
  pending?: PendingStagingUnit;
  /** Optimistic-concurrency version; 0 means "no row yet". */
  version: number;
}

export interface PendingStagingUnit {
  firstSequence: string;
  lastSequence: string;
  /** Per app (and `"$quarantine"`): the stage time (epoch ms) fixed for its object, and the key. */
  objects: Record<string, { stageTimeMs: number; key: string }>;
}

export interface StagingLedger {
  getCheckpoint(shardId: string): Promise<ShardCheckpoint>;
  /** Write `next` only if the stored version still equals `expectedVersion`; false when it moved. */
  putCheckpoint(next: Omit<ShardCheckpoint, 'version'>, expectedVersion: number): Promise<boolean>;
}

// ---------------------------------------------------------------- connections

export interface ConnectionRepository {
  /** The raw row (validated by the caller, since a row may be invalid). */
  getRaw(connectionId: string): Promise<Record<string, unknown> | undefined>;
  /** Raw rows whose `frequency` attribute equals `frequency`, via the byFrequency GSI (not a scan). */
  listRawByFrequency(frequency: Frequency): Promise<Record<string, unknown>[]>;
  /** Every raw row (operator CLI only; a scan). */
  listRaw(): Promise<Record<string, unknown>[]>;
  /** Store a validated connection (whole-row replace). */
  put(connection: Connection): Promise<void>;
  delete(connectionId: string): Promise<void>;
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
  /** Parts already written and durable. */
  parts: WrittenPart[];
}

export interface WrittenPart {
  key: string;
  records: number;
  bytes: number;
  sha256: string;
}

export interface ConnectionDiagnosis {
  /** Stable code, e.g. BUCKET_POLICY_MISSING, INVALID_CONNECTION, KMS_KEY_NOT_ALLOWLISTED. */
  code: string;
  /** What is wrong and how to fix it, in words a customer can act on. No secrets, no event data. */
  message: string;
  at: string;
  windowEnd?: string;
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
   * The connection row the pinned window is being written with. An attempt takes the current row
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
  /** Objects earlier attempts of the pinned window wrote under settings since replaced. */
  pendingSupersedes?: SupersededObject[];
  /** What the last committed window that superseded anything superseded (also in its history row). */
  superseded?: { windowEnd: Date; supersedes: ManifestSupersedes };
  lease?: ExportLease;
  cursor?: ExportCursor;
  lastError?: ConnectionDiagnosis;
  lastCommittedAt?: Date;
  lastFileKey?: string;
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
  /** `YYYY-MM` of the window end, for usage metering. */
  usageMonth: string;
}

export interface ExportStateStore {
  get(connectionId: string): Promise<ExportState | undefined>;
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
  /** Record progress of a multi-invocation window; false when the lease is no longer ours. */
  saveCursor(connectionId: string, owner: string, cursor: ExportCursor): Promise<boolean>;
  /**
   * Replace the pinned window's settings (while we hold the lease): pendingConnection :=
   * `connectionSnapshot`, pendingSupersedes := `supersedes`, cursor cleared (the window is written
   * again from its start). Returns the state after the write; undefined when the lease is not ours.
   */
  repinWindow(
    connectionId: string,
    owner: string,
    connectionSnapshot: Record<string, unknown>,
    supersedes: SupersededObject[],
  ): Promise<ExportState | undefined>;
  /**
   * Atomically: watermark := windowEnd, sequence := commit.stateSequence, clear pending window (and
   * its connection snapshot, superseded objects), cursor, lease and lastError; add (or replace) the window's history row and
   * usage counters. Only when the watermark still equals expectedWatermark and the lease is ours;
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
   * Move a connection's watermark for a backfill: only when no unexpired lease is held (now) and
   * no pinned window has a part written; clears the cursor and an unwritten pinned window. False
   * when refused.
   */
  resetWatermark(connectionId: string, watermark: Date, now: Date, replayThrough?: Date): Promise<boolean>;
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
   */
  putObject(target: SinkTarget, key: string, body: Readable, contentType: string): Promise<StoredObject>;
}

// ---------------------------------------------------------------- jobs

interface ExportJobBase {
  /** ISO instant: the window end the tick stands for. */
  windowEnd: string;
  /** `retry`: a member of a group job that failed, handed back to the queue alone. */
  reason: 'schedule' | 'continuation' | 'backfill' | 'manual' | 'retry';
}

/** One connection's job: continuations, retries, backfills, manual runs, a group of one. */
export interface ConnectionExportJob extends ExportJobBase {
  connectionId: string;
  connectionIds?: undefined;
}

/**
 * A group job: connections of one app due at one window end, exported together by one
 * invocation that reads the app's staged data once (usecases/export-job.ts). A group message
 * has no `connectionId`, so an exporter that predates groups refuses it (and SQS retries it)
 * instead of exporting only one member.
 */
export interface GroupExportJob extends ExportJobBase {
  connectionIds: string[];
  connectionId?: undefined;
}

export type ExportJob = ConnectionExportJob | GroupExportJob;

/** The connections a job exports, in order. */
export function jobConnectionIds(job: ExportJob): string[] {
  return job.connectionIds ?? [job.connectionId];
}

export interface JobQueue {
  enqueue(jobs: ExportJob[]): Promise<void>;
}
