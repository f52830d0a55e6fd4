/**
 * The platform-scale bench (bench/scale.ts) must not rot: its counting fakes count what the real
 * adapters send, and its model of a day reproduces, at scale 1, the requests the real code made.
 */

import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { FakeDynamo, FakeS3, FakeSqs, Meter } from '../../bench/scale/fake-aws.ts';
import { chunkEntries, cpuPerEvent, firehoseCost, modelDay, windowRanges } from '../../bench/scale/model.ts';
import {
  appId,
  eventPool,
  eventSourceBatching,
  recordData,
  strata,
  Zipf,
} from '../../bench/scale/profile.ts';
import { simulateSlice } from '../../bench/scale/simulate.ts';
import { DynamoStagingLedger } from '../../lambdas/adapters/dynamo-staging-ledger.ts';
import { S3StagingStore } from '../../lambdas/adapters/s3-staging-store.ts';
import { decodeSegmentHeader, SLOT_CHUNK_BYTES } from '../../lambdas/domain/staged-segment.ts';
import { compactionStartOf, SLOT_MS, slotStartOf } from '../../lambdas/domain/staging-layout.ts';
import { compactSlot } from '../../lambdas/usecases/compact-slot.ts';
import { stageBatch } from '../../lambdas/usecases/stage-batch.ts';
import { ManualClock } from '../../local/clock.ts';

const T0 = new Date('2026-11-02T10:00:00.000Z');

function batchOf(apps: string[], first: number) {
  const pool = eventPool(apps.length);
  return apps.map((app, i) => ({
    sequenceNumber: String(first + i).padStart(56, '0'),
    data: recordData(app, pool[i]!),
  }));
}

describe('bench:scale counting fakes under the real adapters', () => {
  it('counts one stageBatch of 3 apps as 1 segment PUT, 1 ledger read and 2 ledger writes', async () => {
    const meter = new Meter();
    const s3 = new FakeS3(meter);
    const dynamo = new FakeDynamo(meter);
    const clock = new ManualClock(T0);
    const deps = {
      ledger: new DynamoStagingLedger(dynamo.documentClient(), 'StagingLedger', { clock }),
      store: new S3StagingStore(s3.client(), 'staging'),
      clock,
    };
    const records = batchOf([appId(1), appId(2), appId(3), appId(1)], 1);
    const { value, usage } = await meter.measure(() =>
      stageBatch({ shardId: 'shardId-000000000000', records }, deps),
    );

    expect(value.objectsCreated).toHaveLength(1);
    expect(usage.s3Put).toBe(1);
    expect(usage.s3Get).toBe(0);
    expect(usage.dynamoRequests).toBe(3);
    // Items under 1 KB: 1 write unit each; a strongly consistent read of a missing item: 1 read unit.
    expect(usage.dynamoWriteUnits).toBe(2);
    expect(usage.dynamoReadUnits).toBe(1);
    // Sequential requests: one latency round each.
    expect(usage.rounds).toBe(4);
    const segment = s3.get('staging', value.objectsCreated[0]!)!;
    const sections = decodeSegmentHeader(value.objectsCreated[0]!, segment);
    expect(sections.map((s) => [s.section, s.count])).toEqual([
      [appId(1), 2],
      [appId(2), 1],
      [appId(3), 1],
    ]);
    expect(dynamo.tables.get('StagingLedger')!.size).toBe(1);
  });

  it('counts a compaction of two small segments: HEAD, LIST, a GET per segment, data and index PUTs', async () => {
    const meter = new Meter();
    const s3 = new FakeS3(meter);
    const dynamo = new FakeDynamo(meter);
    const clock = new ManualClock(T0);
    const store = new S3StagingStore(s3.client(), 'staging');
    const ledger = new DynamoStagingLedger(dynamo.documentClient(), 'StagingLedger', { clock });
    await stageBatch(
      { shardId: 'shardId-000000000000', records: batchOf([appId(1), appId(2)], 1) },
      { ledger, store, clock },
    );
    clock.set(new Date(T0.getTime() + 5_000));
    await stageBatch(
      { shardId: 'shardId-000000000001', records: batchOf([appId(2)], 1) },
      { ledger, store, clock },
    );

    clock.set(compactionStartOf(slotStartOf(T0)));
    const { value, usage, categories } = await meter.measure(() =>
      compactSlot(slotStartOf(T0), { store, clock }),
    );
    expect(value.status).toBe('compacted');
    expect(categories.get('staging:slots/*.index')).toMatchObject({ get: 1, put: 1 });
    expect(categories.get('staging:segments/*.seg')).toMatchObject({ get: 2, put: 0 });
    expect(categories.get('staging:slots/*.data')).toMatchObject({ put: 1 });
    expect(usage.s3List).toBe(1);
    expect(usage.s3Put).toBe(3);
    expect(usage.s3Get).toBe(3);
  });

  it('bills DynamoDB by item size (x2 in a transaction) and SQS per 64 KB chunk', async () => {
    const meter = new Meter();
    const dynamo = new FakeDynamo(meter);
    const doc = dynamo.documentClient();
    const big = { pk: 'shard#a', blob: 'x'.repeat(1500) };
    const { usage } = await meter.measure(async () => {
      await doc.send(new PutCommand({ TableName: 'StagingLedger', Item: big }));
      await doc.send(new GetCommand({ TableName: 'StagingLedger', Key: { pk: 'shard#a' } }));
      await doc.send(
        new TransactWriteCommand({
          TransactItems: [{ Put: { TableName: 'StagingLedger', Item: { pk: 'shard#b', v: 1 } } }],
        }),
      );
    });
    // 1.5 KB: 2 WRU; eventually consistent read of 1.5 KB: 0.5 RRU; a transactional 1 KB put: 2 WRU.
    expect(usage.dynamoWriteUnits).toBe(4);
    expect(usage.dynamoReadUnits).toBe(0.5);
    expect(dynamo.largestItem.get('StagingLedger')).toBeGreaterThan(1500);

    const sqs = new FakeSqs(meter);
    const { usage: sent } = await meter.measure(() =>
      sqs.client().send(
        new SendMessageBatchCommand({
          QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/q',
          Entries: [
            { Id: '0', MessageBody: 'a'.repeat(40_000) },
            { Id: '1', MessageBody: 'b'.repeat(40_000) },
          ],
        }),
      ),
    );
    expect(sent.sqsRequests).toBe(2);
    expect(sqs.messages).toHaveLength(2);
  });
});

describe('bench:scale model', () => {
  it('cuts chunks as the compactor does and counts GETs as the real planWindowRefs and run reader', () => {
    const C = SLOT_CHUNK_BYTES;
    expect(chunkEntries([0.75 * C, 0.5 * C], 1).map((e) => e.length)).toEqual([0.75 * C, 0.5 * C]);
    expect(chunkEntries([C / 8], 4).map((e) => e.length)).toEqual([C / 2]);
    // Three small slots: one ref of three ranges, one GET each.
    expect(windowRanges([[1000], [1000], [1000]], 1)).toBe(3);
    // A big slot: 5 chunks of one contiguous run, one GET; two big slots: one GET each.
    expect(chunkEntries([C / 2], 10)).toHaveLength(5);
    expect(windowRanges([[C / 2], [], []], 10)).toBe(1);
    expect(windowRanges([[C / 2], [C / 2]], 10)).toBe(2);
  });

  it('fits the exporter CPU per event apart from its fixed CPU when sizes spread', () => {
    // 50 ms fixed + 10 µs per event.
    const spread = [10, 1_000, 100_000].map((events) => ({ events, cpuMicros: 50_000 + 10 * events }));
    expect(cpuPerEvent(spread)).toBeCloseTo(10, 6);
    // One size only: the fixed part cannot be told apart, the largest export's ratio is taken.
    expect(cpuPerEvent([{ events: 100, cpuMicros: 51_000 }])).toBe(510);
  });

  it('derives the event source batch from the definitions (6 MB payload before 10,000 records)', () => {
    const batching = eventSourceBatching(1000, 632);
    expect(batching.limitedBy).toBe('payload');
    expect(batching.recordsPerBatch).toBeGreaterThan(3000);
    expect(batching.recordsPerBatch).toBeLessThan(5000);
  });

  it('samples every Zipf rank once across strata', () => {
    const zipf = new Zipf(20_000);
    const all = strata(zipf);
    expect(all.reduce((n, s) => n + s.apps, 0)).toBe(20_000);
    for (const s of all) expect(s.sampleRank).toBeGreaterThanOrEqual(s.from);
    expect(zipf.shareOf(1, 20_000)).toBeCloseTo(1, 9);
  });

  it('models a tiny slice: the range model matches the counted GETs and customers get whole-window gzip', async () => {
    const slice = await simulateSlice({
      apps: 3,
      scenario: 'zipf',
      shards: 1,
      minutes: 15,
      batchEvery: 3000,
      recordsPerBatch: 30,
      exportRanks: [1, 2, 3],
    });
    expect(slice.batches).toHaveLength(9);
    expect(slice.compactions).toHaveLength((15 * 60_000) / SLOT_MS);
    expect(slice.exports.map((e) => e.rank).sort()).toEqual([1, 2, 3]);
    const row = modelDay(slice);
    for (const check of row.exportChecks) expect(check.rangesModeled).toBe(check.rangesCounted);
    expect(row.s3PutsPerBatch).toBe(1);
    expect(row.perGb).toBeGreaterThan(0);
    expect(row.worstRatio).toBeLessThan(1.2);
    // What the customers got holds every staged event (three apps, all exported).
    const exported = slice.exports.reduce((n, e) => n + e.events, 0);
    expect(exported).toBe(slice.batches.reduce((n, b) => n + b.records, 0));
  });

  it('prices Firehose objects per app and buffer', () => {
    const one = firehoseCost(1);
    const many = firehoseCost(20_000);
    expect(many.objectsPerDay).toBeGreaterThan(one.objectsPerDay);
    expect(many.perGb).toBeGreaterThan(one.perGb);
    expect(many.overPartitionQuota).toBe(true);
  });
});
