/**
 * The compactor's read budget trades memory for GETs: a slot's data and index do not depend on
 * it, and its GETs are about segments x (1 + app groups).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FakeDynamo, FakeS3, Meter } from '../../bench/scale/fake-aws.ts';
import { appId, eventPool, recordData } from '../../bench/scale/profile.ts';
import { DynamoStagingLedger } from '../../lambdas/adapters/dynamo-staging-ledger.ts';
import { S3StagingStore } from '../../lambdas/adapters/s3-staging-store.ts';
import {
  compactionStartOf,
  SLOT_MS,
  slotDataKey,
  slotIndexKey,
  slotStartOf,
} from '../../lambdas/domain/staging-layout.ts';
import { compactSlot, listSettledWindow, readBudgetForMemory } from '../../lambdas/usecases/compact-slot.ts';
import { stageBatch } from '../../lambdas/usecases/stage-batch.ts';
import { ManualClock } from '../../local/clock.ts';

const T0 = new Date('2026-11-02T10:00:00.000Z');
const MiB = 1024 * 1024;
const SEGMENTS = 4;
const APPS = 6;

const POOL = eventPool(300);

/** Valid events padded with random hex (gzips poorly), so every segment is larger than the compactor's head read. */
function record(app: string, n: number) {
  const event = JSON.parse(POOL[n]!.toString('utf8')) as { user_attributes: Record<string, unknown> };
  event.user_attributes.note = randomBytes(600).toString('hex');
  return recordData(app, Buffer.from(JSON.stringify(event), 'utf8'));
}

async function stagedSlot() {
  const meter = new Meter();
  const s3 = new FakeS3(meter);
  const clock = new ManualClock(T0);
  const store = new S3StagingStore(s3.client(), 'staging');
  const ledger = new DynamoStagingLedger(new FakeDynamo(meter).documentClient(), 'StagingLedger', { clock });
  let sequence = 1;
  for (let segment = 0; segment < SEGMENTS; segment++) {
    const records = [];
    for (let i = 0; i < 300; i++) {
      records.push({
        sequenceNumber: String(sequence++).padStart(56, '0'),
        data: record(appId(1 + (i % APPS)), i),
      });
    }
    await stageBatch({ shardId: `shardId-00000000000${segment}`, records }, { ledger, store, clock });
  }
  clock.set(compactionStartOf(slotStartOf(T0)));
  return { meter, s3, store, clock };
}

async function compactWith(readChunkBytes: number) {
  const { meter, s3, store, clock } = await stagedSlot();
  const { value, categories } = await meter.measure(() =>
    compactSlot(slotStartOf(T0), { store, clock, readChunkBytes }),
  );
  return {
    value,
    segmentGets: categories.get('staging:segments/*.seg')?.get ?? 0,
    data: s3.get('staging', slotDataKey(slotStartOf(T0))),
    index: s3.get('staging', slotIndexKey(slotStartOf(T0))),
  };
}

describe('compactor read budget', () => {
  it('writes the same slot whatever the budget; a budget per app reads each segment once per app group', async () => {
    const small = await compactWith(1);
    const large = await compactWith(512 * MiB);
    expect(small.value).toMatchObject({ status: 'compacted', events: SEGMENTS * 300, quarantined: 0 });
    expect(large.value.status).toBe('compacted');
    expect(small.data?.byteLength).toBeGreaterThan(SEGMENTS * 128 * 1024);
    // The app data is random; the two runs staged different bytes, so compare the layout instead.
    const layout = (index: Uint8Array | undefined) =>
      Buffer.from(index ?? new Uint8Array())
        .toString('utf8')
        .split('\n')
        .slice(1)
        .map((line) => line.split('\t')[0]);
    expect(layout(small.index)).toEqual(layout(large.index));
    // One head read per segment, then one ranged read per segment and app group (less what the
    // head already holds: the first apps of each segment).
    expect(large.segmentGets).toBe(SEGMENTS * 2);
    expect(small.segmentGets).toBeGreaterThanOrEqual(SEGMENTS * (1 + APPS / 2));
  });

  it('concurrent exports that find the same slot missing compact it once (batch members run at once)', async () => {
    const { meter, store, clock } = await stagedSlot();
    const start = slotStartOf(T0);
    const end = new Date(start.getTime() + SLOT_MS);
    const { value, categories } = await meter.measure(() =>
      Promise.all(
        Array.from({ length: 4 }, (_, i) => listSettledWindow(store, clock, appId(1 + i), start, end)),
      ),
    );
    expect(value.map((refs) => refs.length > 0)).toEqual([true, true, true, true]);
    // One data object and one index written; the waiting callers only HEAD the index.
    expect(categories.get('staging:slots/*.data')?.put).toBe(1);
    expect(categories.get('staging:slots/*.index')?.put).toBe(1);
  });

  it('sizes the budget from the function memory: 40%, never under 64 MiB', () => {
    expect(readBudgetForMemory(2048)).toBe(819 * MiB);
    expect(readBudgetForMemory(128)).toBe(64 * MiB);
    expect(readBudgetForMemory(undefined)).toBe(64 * MiB);
    expect(readBudgetForMemory(Number.NaN)).toBe(64 * MiB);
  });
});
