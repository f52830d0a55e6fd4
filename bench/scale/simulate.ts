/**
 * One slice of the platform-scale profile through the REAL use cases (stageBatch, compactSlot,
 * dispatchTick, executeExportJob → exportWindow) and the REAL adapters over the counting fakes
 * (fake-aws.ts): `shards` of the profile's 20 shards at the full per-shard rate and batch
 * structure, for `minutes` of stream time. Every invocation is measured (requests, billable
 * units, CPU); bench/scale/model.ts turns the measures into a day at full scale.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { DynamoStagingLedger } from '../../lambdas/adapters/dynamo-staging-ledger.ts';
import { S3ExportSink } from '../../lambdas/adapters/s3-export-sink.ts';
import { S3StagingStore } from '../../lambdas/adapters/s3-staging-store.ts';
import { SqsJobQueue } from '../../lambdas/adapters/sqs-job-queue.ts';
import { DEFAULT_SETTLE_DELAY_MINUTES, DEFAULT_STAGING_RETENTION_DAYS } from '../../lambdas/definitions.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { decodeSegmentHeader } from '../../lambdas/domain/staged-segment.ts';
import {
  compactionStartOf,
  SLOT_MS,
  segmentPrefix,
  slotsOfWindow,
} from '../../lambdas/domain/staging-layout.ts';
import { type ExportJob, jobConnectionIds } from '../../lambdas/ports/index.ts';
import { DEFAULT_GZIP_LEVEL } from '../../lambdas/runtime.ts';
import { compactSlot, readBudgetForMemory } from '../../lambdas/usecases/compact-slot.ts';
import { dispatchTick } from '../../lambdas/usecases/dispatch-tick.ts';
import { executeExportJob } from '../../lambdas/usecases/export-job.ts';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_PART_SIZE_BYTES,
  type ExportDeps,
} from '../../lambdas/usecases/export-window.ts';
import { inThreadCompressor } from '../../lambdas/usecases/record-worker-pool.ts';
import { type IncomingRecord, stageBatch } from '../../lambdas/usecases/stage-batch.ts';
import { ManualClock } from '../../local/clock.ts';
import { seededRandom } from '../../local/events.ts';
import { FakeDynamo, FakeS3, FakeSqs, type Measured, Meter } from './fake-aws.ts';
import { appId, eventPool, eventSourceBatching, MEMORY_MB, PROFILE, recordData, Zipf } from './profile.ts';

export const STAGING_BUCKET = 'staging';
export const CUSTOMER_BUCKET = 'customer';
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/jobs';
/** The compactor's read budget at its default memory (compact-slot.ts); scaled with the slice (see model.ts). */
export const COMPACT_READ_CHUNK_BYTES = readBudgetForMemory(MEMORY_MB.compactor);

export interface SliceOptions {
  apps: number;
  /** `zipf`: the profile; `one-per-batch`: every app has exactly one event in every batch. */
  scenario: 'zipf' | 'one-per-batch';
  /** Shards simulated (of PROFILE.shards), each at the full per-shard rate. */
  shards: number;
  /** Stream minutes simulated (whole 15-minute windows). */
  minutes: number;
  /**
   * One batch of each simulated shard every `batchEvery` batch intervals (1 = the full rate):
   * each batch keeps the profile's structure, a slot holds 1/batchEvery of its batches.
   */
  batchEvery: number;
  /** App ranks whose connection is exported (one 15-minute connection each). */
  exportRanks: number[];
  seed?: number;
  /** Records per batch instead of the event source's (tests: a tiny profile). */
  recordsPerBatch?: number;
}

export interface BatchMeasure extends Measured<unknown> {
  records: number;
  apps: number;
  segmentBytes: number;
}

export interface ExportMeasure extends Measured<unknown> {
  rank: number;
  connectionId: string;
  events: number;
  /** Bytes the customer received (data parts) and the gzip of their whole window's records. */
  customerBytes: number;
  wholeGzipBytes: number;
  uncompressedBytes: number;
  dataParts: number;
}

export interface SliceResult {
  options: SliceOptions;
  recordsPerBatch: number;
  secondsPerBatch: number;
  batchLimitedBy: string;
  recordDataBytes: number;
  batches: BatchMeasure[];
  compactions: (Measured<unknown> & { slot: Date; dataBytes: number; segments: number })[];
  dispatches: (Measured<unknown> & { connections: number })[];
  exports: ExportMeasure[];
  /** Per exported app and slot, the lengths of its sections in segment order (for full-scale chunking). */
  sections: Map<number, number[][]>;
  largestItem: Map<string, number>;
  /** Stored bytes of segments and of compacted slot data written in the slice. */
  segmentBytes: number;
  slotDataBytes: number;
  slotIndexBytes: number;
}

const T0 = new Date('2026-11-02T10:00:00.000Z');

/** A valid connection id (`conn_` + a ULID) per app rank. */
export function connectionIdOf(rank: number): string {
  return `conn_01JD7Z6T5Q9Y3M2K8V${String(rank).padStart(8, '0')}`;
}

function sequenceNumber(shard: number, n: number): string {
  // Real sequence numbers are 56 decimal digits, increasing within a shard.
  return `4959${String(shard).padStart(4, '0')}${String(n).padStart(48, '0')}`;
}

/** Full-scale batches per slot over simulated ones: what slot-level counts are multiplied by. */
export function sliceScale(options: Pick<SliceOptions, 'shards' | 'batchEvery'>): number {
  return (PROFILE.shards / options.shards) * options.batchEvery;
}

export async function simulateSlice(options: SliceOptions): Promise<SliceResult> {
  const meter = new Meter();
  const s3 = new FakeS3(meter);
  const dynamo = new FakeDynamo(meter);
  const sqs = new FakeSqs(meter);
  const clock = new ManualClock(T0);
  const doc = dynamo.documentClient();
  const ledger = new DynamoStagingLedger(doc, 'StagingLedger', { clock });
  const stagingClient = s3.client();
  const stagerStore = new S3StagingStore(stagingClient, STAGING_BUCKET);
  const compactorStore = new S3StagingStore(stagingClient, STAGING_BUCKET);
  const connections = new DynamoConnectionRepository(doc, 'Connections', 'ExportState');
  const state = new DynamoExportStateStore(doc, 'ExportState');
  const jobs = new SqsJobQueue(sqs.client(), QUEUE_URL);
  const customerClient = s3.client();
  const sink = new S3ExportSink(() => customerClient);

  const pool = eventPool(2048);
  const random = seededRandom(options.seed ?? 11);
  const zipf = options.scenario === 'zipf' ? new Zipf(options.apps) : undefined;
  const recordDataBytes = recordData(appId(1), pool[0]!).byteLength;
  const batching = eventSourceBatching(PROFILE.shardMaxRecordsPerSecond, recordDataBytes);
  const recordsPerBatch = options.recordsPerBatch ?? batching.recordsPerBatch;
  const secondsPerBatch = recordsPerBatch / PROFILE.shardMaxRecordsPerSecond;
  const end = T0.getTime() + options.minutes * 60_000;
  const slots = slotsOfWindow(T0, new Date(end));

  const result: SliceResult = {
    options,
    recordsPerBatch,
    secondsPerBatch,
    batchLimitedBy: options.recordsPerBatch ? 'given' : batching.limitedBy,
    recordDataBytes,
    batches: [],
    compactions: [],
    dispatches: [],
    exports: [],
    sections: new Map(),
    largestItem: dynamo.largestItem,
    segmentBytes: 0,
    slotDataBytes: 0,
    slotIndexBytes: 0,
  };

  const pendingCompactions = [...slots];
  const compactDue = async (now: number) => {
    while (pendingCompactions.length > 0 && compactionStartOf(pendingCompactions[0]!).getTime() <= now) {
      const slot = pendingCompactions.shift()!;
      clock.set(compactionStartOf(slot));
      const readChunkBytes = Math.round(COMPACT_READ_CHUNK_BYTES / sliceScale(options));
      const measured = await meter.measure(() =>
        compactSlot(slot, { store: compactorStore, clock, readChunkBytes }),
      );
      const outcome = measured.value;
      if (outcome.status !== 'compacted')
        throw new Error(`slot ${slot.toISOString()} not compacted: ${outcome.status}`);
      result.compactions.push({ ...measured, slot, dataBytes: outcome.bytes, segments: outcome.segments });
    }
  };

  // Staging: batches of every simulated shard in delivery order; compactions as their time comes.
  const nextSequence = new Array<number>(options.shards).fill(0);
  const intervalMs = secondsPerBatch * 1000 * options.batchEvery;
  for (let b = 0; T0.getTime() + (b + 1) * intervalMs < end; b++) {
    const deliveredAt = T0.getTime() + (b + 1) * intervalMs;
    await compactDue(deliveredAt);
    for (let shard = 0; shard < options.shards; shard++) {
      const records: IncomingRecord[] = [];
      const apps = new Set<number>();
      for (let i = 0; i < recordsPerBatch; i++) {
        const rank = zipf ? zipf.rank(random()) : (i % options.apps) + 1;
        apps.add(rank);
        const event = pool[Math.floor(random() * pool.length)]!;
        nextSequence[shard]! += 1;
        records.push({
          sequenceNumber: sequenceNumber(shard, nextSequence[shard]!),
          data: recordData(appId(rank), event),
        });
      }
      clock.set(new Date(deliveredAt + shard));
      const measured = await meter.measure(() =>
        stageBatch(
          { shardId: `shardId-${String(shard).padStart(12, '0')}`, records },
          { ledger, store: stagerStore, clock },
        ),
      );
      const key = measured.value.objectsCreated[0];
      const segmentBytes = key ? s3.get(STAGING_BUCKET, key)!.byteLength : 0;
      result.segmentBytes += segmentBytes;
      result.batches.push({ ...measured, records: records.length, apps: apps.size, segmentBytes });
    }
  }
  await compactDue(end + SLOT_MS);
  for (const slot of slots) {
    for (const [key, object] of s3.buckets.get(STAGING_BUCKET) ?? [])
      if (key.startsWith('slots/') && key.includes(String(slot.getTime()))) {
        if (key.endsWith('.data')) result.slotDataBytes += object.body.byteLength;
        if (key.endsWith('.index')) result.slotIndexBytes += object.body.byteLength;
      }
  }

  collectSections(s3, slots, options.exportRanks, result.sections);
  await exportWindows(
    options,
    { meter, s3, sqs, clock, connections, state, jobs, sink, stagingClient },
    slots,
    result,
  );
  return result;
}

/** The section lengths of each exported app, per slot, in segment (key) order. */
function collectSections(s3: FakeS3, slots: Date[], ranks: number[], into: Map<number, number[][]>): void {
  const bucket = s3.buckets.get(STAGING_BUCKET)!;
  const wanted = new Map(ranks.map((rank) => [appId(rank), rank]));
  for (const rank of ranks)
    into.set(
      rank,
      slots.map(() => []),
    );
  for (const [s, slot] of slots.entries()) {
    const keys = [...bucket.keys()].filter((k) => k.startsWith(segmentPrefix(slot))).sort();
    for (const key of keys)
      for (const section of decodeSegmentHeader(key, bucket.get(key)!.body)) {
        const rank = wanted.get(section.section);
        if (rank !== undefined) into.get(rank)![s]!.push(section.length);
      }
  }
}

interface ExportContext {
  meter: Meter;
  s3: FakeS3;
  sqs: FakeSqs;
  clock: ManualClock;
  connections: DynamoConnectionRepository;
  state: DynamoExportStateStore;
  jobs: SqsJobQueue;
  sink: S3ExportSink;
  stagingClient: ReturnType<FakeS3['client']>;
}

async function exportWindows(options: SliceOptions, ctx: ExportContext, slots: Date[], result: SliceResult) {
  const byConnection = new Map<string, number>();
  // Connection rows are the operator's: putting them is not part of the measured work.
  await ctx.meter.measure(async () => {
    for (const rank of options.exportRanks) {
      const connection = parseConnection({
        connectionId: connectionIdOf(rank),
        appId: appId(rank),
        appName: `App ${rank}`,
        dbName: `App ${rank} DB`,
        connectionName: `export-${rank}`,
        bucketName: CUSTOMER_BUCKET,
        bucketRegion: 'us-east-1',
        events: { mode: 'ALL' },
        frequency: 'FIFTEEN_MINUTES',
        createdAt: T0.toISOString(),
      });
      await ctx.connections.put(connection);
      byConnection.set(connection.connectionId, rank);
    }
  });
  const windowMs = PROFILE.windowMinutes * 60_000;
  const lastSlotEnd = slots.at(-1)!.getTime() + SLOT_MS;
  for (let windowEnd = T0.getTime() + windowMs; windowEnd <= lastSlotEnd; windowEnd += windowMs) {
    const tick = new Date(windowEnd + DEFAULT_SETTLE_DELAY_MINUTES * 60_000);
    ctx.clock.set(tick);
    const before = ctx.sqs.messages.length;
    const dispatched = await ctx.meter.measure(() =>
      dispatchTick(
        { frequency: 'FIFTEEN_MINUTES', scheduledTime: tick },
        { connections: ctx.connections, state: ctx.state, jobs: ctx.jobs, clock: ctx.clock },
        DEFAULT_SETTLE_DELAY_MINUTES * 60_000,
      ),
    );
    result.dispatches.push({ ...dispatched, connections: dispatched.value.connections });
    // A batch message's members are measured one by one (model.ts composes batches from them).
    const memberJobs = ctx.sqs.messages.slice(before).flatMap((message) => {
      const job = JSON.parse(message) as ExportJob;
      return jobConnectionIds(job).map(
        (connectionId): ExportJob => ({ connectionId, windowEnd: job.windowEnd, reason: job.reason }),
      );
    });
    for (const job of memberJobs) {
      // A cold exporter container per member: its slot-index reads are counted with it (model.ts
      // takes them out and adds them back per container).
      const deps: ExportDeps & { compressor: ReturnType<typeof inThreadCompressor> } = {
        connections: ctx.connections,
        state: ctx.state,
        staging: new S3StagingStore(ctx.stagingClient, STAGING_BUCKET),
        sink: ctx.sink,
        clock: ctx.clock,
        jobs: ctx.jobs,
        settings: {
          leaseMs: DEFAULT_LEASE_MS,
          partSizeBytes: DEFAULT_PART_SIZE_BYTES,
          gzipLevel: DEFAULT_GZIP_LEVEL,
          stagingRetentionDays: DEFAULT_STAGING_RETENTION_DAYS,
          settleDelayMs: DEFAULT_SETTLE_DELAY_MINUTES * 60_000,
        },
        compressor: inThreadCompressor(),
      };
      const measured = await ctx.meter.measure(() => executeExportJob(job, deps));
      for (const member of measured.value.members) {
        if (member.error) throw member.error;
        const outcome = member.outcome;
        if (outcome?.status !== 'committed')
          throw new Error(`export of ${member.connectionId}: ${outcome?.status}`);
        result.exports.push({
          ...measured,
          rank: byConnection.get(member.connectionId)!,
          connectionId: member.connectionId,
          ...customerBytes(
            ctx.s3,
            outcome.windows.flatMap((w) => w.parts.map((p) => p.key)),
          ),
        });
      }
    }
  }
}

/** What the customer received for a window, against the gzip of its whole window (acceptance 3). */
function customerBytes(s3: FakeS3, keys: string[]) {
  const parts = keys.map((key) => s3.get(CUSTOMER_BUCKET, key)!);
  const stored = parts.reduce((n, p) => n + p.byteLength, 0);
  const plain = Buffer.concat(parts.map((p) => gunzipSync(p)));
  let events = 0;
  for (let i = plain.indexOf(10); i >= 0; i = plain.indexOf(10, i + 1)) events += 1;
  return {
    events,
    customerBytes: stored,
    wholeGzipBytes: plain.byteLength ? gzipSync(plain, { level: DEFAULT_GZIP_LEVEL }).byteLength : 0,
    uncompressedBytes: plain.byteLength,
    dataParts: parts.length,
  };
}
