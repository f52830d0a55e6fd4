import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import type { CommitWindow, WrittenPart } from '../../lambdas/ports/index.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
let store: DynamoExportStateStore;
let dynamo: ReturnType<typeof createDynamoDocumentClient>;

beforeAll(() => {
  const e = engines();
  dynamo = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  store = new DynamoExportStateStore(dynamo, e.tables.exportState);
});

let counter = 0;
const newConnectionId = () => `conn_test${String(++counter).padStart(8, '0')}`;

const W0 = new Date('2025-03-31T23:00:00.000Z');
const E1 = new Date('2025-04-01T00:00:00.000Z');
const E2 = new Date('2025-04-01T00:15:00.000Z');
const NOW = new Date('2025-04-01T00:05:00.000Z');
const LEASE_MS = 60_000;

const parts: WrittenPart[] = [
  {
    key: 'c/export_day=01-04-2025/event_exports_1743465600.json.gz',
    records: 10,
    bytes: 1000,
    sha256: 'a'.repeat(64),
  },
  {
    key: 'c/export_day=01-04-2025/event_exports_1743465600_2.json.gz',
    records: 5,
    bytes: 500,
    sha256: 'b'.repeat(64),
  },
];

function commitOf(overrides: Partial<CommitWindow> = {}): CommitWindow {
  return {
    expectedWatermark: W0,
    windowEnd: E1,
    sequence: 1,
    stateSequence: overrides.sequence ?? 1,
    bucketName: 'customer-bucket',
    leaseOwner: 'owner-a',
    committedAt: NOW,
    parts,
    manifestKey: 'c/export_day=01-04-2025/event_exports_1743465600.manifest.json',
    ...overrides,
  };
}

async function rawRow(connectionId: string, sk: string) {
  const { Item } = await dynamo.send(
    new GetCommand({ TableName: engines().tables.exportState, Key: { pk: `conn#${connectionId}`, sk } }),
  );
  return Item;
}

/** A connection initialized at W0 whose lease is held by `owner` with the window E1 pinned. */
async function leasedConnection(owner = 'owner-a'): Promise<string> {
  const id = newConnectionId();
  await store.initialize(id, W0);
  const leased = await store.acquireLease(id, owner, NOW, LEASE_MS, E1);
  expect(leased?.lease?.owner).toBe(owner);
  return id;
}

describe('DynamoExportStateStore', () => {
  it('initialize creates the state row once and returns the stored state thereafter', async () => {
    const id = newConnectionId();
    expect(await store.get(id)).toBeUndefined();
    const first = await store.initialize(id, W0);
    expect(first).toMatchObject({ connectionId: id, watermark: W0, sequence: 0 });
    const second = await store.initialize(id, new Date('2030-01-01T00:00:00Z'));
    expect(second.watermark).toEqual(W0);
    const row = await rawRow(id, 'STATE');
    expect(row?.['watermark']).toBe('2025-03-31T23:00:00.000Z');
    // The table's TTL attribute is never set on a state row.
    expect(row?.['expiresAt']).toBeUndefined();
  });

  it('acquireLease pins the window end and keeps a pinned one on later attempts', async () => {
    const id = newConnectionId();
    await store.initialize(id, W0);
    const leased = await store.acquireLease(id, 'owner-a', NOW, LEASE_MS, E1);
    expect(leased).toMatchObject({
      pendingWindowEnd: E1,
      lease: { owner: 'owner-a', expiresAt: new Date(NOW.getTime() + LEASE_MS) },
    });
    const again = await store.acquireLease(id, 'owner-a', NOW, LEASE_MS, E2);
    expect(again?.pendingWindowEnd).toEqual(E1);
  });

  it('acquireLease returns undefined while another owner holds an unexpired lease', async () => {
    const id = await leasedConnection('owner-a');
    const before = await rawRow(id, 'STATE');
    expect(
      await store.acquireLease(id, 'owner-b', new Date(NOW.getTime() + LEASE_MS - 1), LEASE_MS, E1),
    ).toBe(undefined);
    expect(await rawRow(id, 'STATE')).toEqual(before);
  });

  it('acquireLease takes an expired lease of another owner, keeping its pending window and cursor', async () => {
    const id = await leasedConnection('owner-a');
    const cursor = { nextObjectIndex: 3, nextPartNumber: 2, parts: [parts[0]!], attempt: 'attempt-1' };
    expect(await store.saveCursor(id, 'owner-a', E1, cursor, 0)).toBe(true);
    const later = new Date(NOW.getTime() + LEASE_MS);
    const taken = await store.acquireLease(id, 'owner-b', later, LEASE_MS, E2);
    expect(taken).toMatchObject({ lease: { owner: 'owner-b' }, pendingWindowEnd: E1, cursor });
    expect(await store.renewLease(id, 'owner-a', later, LEASE_MS)).toBe(false);
    expect(await store.saveCursor(id, 'owner-a', E1, cursor, 0)).toBe(false);
  });

  it('acquireLease does not pin a window end at or before the watermark', async () => {
    const id = newConnectionId();
    await store.initialize(id, E1);
    const leased = await store.acquireLease(id, 'owner-a', NOW, LEASE_MS, E1);
    expect(leased?.lease?.owner).toBe('owner-a');
    expect(leased?.pendingWindowEnd).toBeUndefined();
  });

  it('renewLease extends only our lease', async () => {
    const id = await leasedConnection('owner-a');
    const later = new Date(NOW.getTime() + 30_000);
    expect(await store.renewLease(id, 'owner-a', later, LEASE_MS)).toBe(true);
    expect((await store.get(id))?.lease?.expiresAt).toEqual(new Date(later.getTime() + LEASE_MS));
    expect(await store.renewLease(id, 'owner-b', later, LEASE_MS)).toBe(false);
  });

  it('a successful commit moves the watermark, clears the window, and writes history and usage', async () => {
    const id = await leasedConnection('owner-a');
    await store.saveCursor(
      id,
      'owner-a',
      E1,
      { nextObjectIndex: 1, nextPartNumber: 2, parts: [parts[0]!], attempt: 'a' },
      0,
    );
    await store.recordError(id, {
      code: 'BUCKET_POLICY_MISSING',
      message: 'add the statement',
      at: NOW.toISOString(),
    });

    expect(await store.commitWindow(id, commitOf())).toBe(true);

    const state = await store.get(id);
    expect(state).toEqual({
      connectionId: id,
      watermark: E1,
      sequence: 1,
      lastCommittedAt: NOW,
      lastFileKey: parts[1]!.key,
    });
    const history = await store.listHistory(id);
    expect(history).toEqual([
      {
        connectionId: id,
        windowStart: W0,
        windowEnd: E1,
        sequence: 1,
        parts,
        partCount: 2,
        manifestKey: commitOf().manifestKey,
        records: 15,
        bytes: 1500,
        committedAt: NOW,
        bucketName: 'customer-bucket',
        usage: { events: 15, files: 2, bytes: 1500 },
      },
    ]);
    expect(await store.getUsage(id, '2025-04')).toEqual({
      connectionId: id,
      month: '2025-04',
      events: 15,
      files: 2,
      bytes: 1500,
    });
  });

  it('usage adds up over windows of the same month and is kept per month', async () => {
    const id = await leasedConnection('owner-a');
    expect(await store.commitWindow(id, commitOf())).toBe(true);
    await store.acquireLease(id, 'owner-a', NOW, LEASE_MS, E2);
    const one = [parts[1]!];
    expect(
      await store.commitWindow(
        id,
        commitOf({ expectedWatermark: E1, windowEnd: E2, sequence: 2, parts: one }),
      ),
    ).toBe(true);
    expect(await store.getUsage(id, '2025-04')).toMatchObject({ events: 20, files: 3, bytes: 2000 });
    expect(await store.getUsage(id, '2025-05')).toMatchObject({ events: 0, files: 0, bytes: 0 });
    expect((await store.listHistory(id, { newestFirst: true })).map((h) => h.sequence)).toEqual([2, 1]);
    expect(await store.listUsage(id)).toEqual([
      { connectionId: id, month: '2025-04', events: 20, files: 3, bytes: 2000 },
    ]);
  });

  it('commitWindow with a wrong expected watermark returns false and writes nothing', async () => {
    const id = await leasedConnection('owner-a');
    const before = await rawRow(id, 'STATE');
    expect(
      await store.commitWindow(id, commitOf({ expectedWatermark: new Date('2025-03-31T22:00:00Z') })),
    ).toBe(false);
    expect(await rawRow(id, 'STATE')).toEqual(before);
    expect(await store.listHistory(id)).toEqual([]);
    expect(await store.getUsage(id, '2025-04')).toMatchObject({ events: 0, files: 0, bytes: 0 });
  });

  it('commitWindow after losing the lease returns false and writes nothing, not even usage', async () => {
    const id = await leasedConnection('owner-a');
    const taken = await store.acquireLease(id, 'owner-b', new Date(NOW.getTime() + LEASE_MS), LEASE_MS, E1);
    expect(taken?.lease?.owner).toBe('owner-b');
    const before = await rawRow(id, 'STATE');
    expect(await store.commitWindow(id, commitOf({ leaseOwner: 'owner-a' }))).toBe(false);
    expect(await rawRow(id, 'STATE')).toEqual(before);
    expect(await store.listHistory(id)).toEqual([]);
    expect(await store.getUsage(id, '2025-04')).toMatchObject({ events: 0, files: 0, bytes: 0 });
  });

  it('of two attempts racing to commit the same window, exactly one succeeds and usage counts it once', async () => {
    const id = await leasedConnection('owner-a');
    const results = await Promise.all([
      store.commitWindow(id, commitOf({ committedAt: NOW })),
      store.commitWindow(id, commitOf({ committedAt: new Date(NOW.getTime() + 1) })),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.getUsage(id, '2025-04')).toMatchObject({ events: 15, files: 2, bytes: 1500 });
    expect(await store.listHistory(id)).toHaveLength(1);
    expect((await store.get(id))?.sequence).toBe(1);
  });

  it('a re-export of a committed window (backfill) counts again, from its history row', async () => {
    const id = await leasedConnection('owner-a');
    expect(await store.commitWindow(id, commitOf())).toBe(true);
    expect(await store.resetWatermark(id, W0, new Date(NOW.getTime() + LEASE_MS), E1)).toBe(true);
    await store.acquireLease(id, 'owner-a', NOW, LEASE_MS, E1);
    const earlier = await store.getCommittedWindow(id, E1);
    expect(earlier?.usage).toEqual({ events: 15, files: 2, bytes: 1500 });
    expect(await store.commitWindow(id, commitOf({ parts: [parts[1]!], earlierUsage: earlier?.usage }))).toBe(
      true,
    );
    expect(await store.listUsage(id)).toEqual([
      { connectionId: id, month: '2025-04', events: 20, files: 3, bytes: 2000 },
    ]);
    expect(await store.listHistory(id)).toHaveLength(1);
  });

  it('a commit retried after it succeeded reports true without counting usage twice', async () => {
    const id = await leasedConnection('owner-a');
    expect(await store.commitWindow(id, commitOf())).toBe(true);
    expect(await store.commitWindow(id, commitOf())).toBe(true);
    expect(await store.getUsage(id, '2025-04')).toMatchObject({ events: 15, files: 2, bytes: 1500 });
    expect(await store.listHistory(id)).toHaveLength(1);
    // A different exporter's commit of the same window is not mistaken for ours.
    expect(await store.commitWindow(id, commitOf({ committedAt: new Date(NOW.getTime() + 1) }))).toBe(false);
  });

  it('a cursor of 3,000 parts stays a few hundred bytes: each part has its own item, the commit links them', async () => {
    const id = await leasedConnection('owner-a');
    const many: WrittenPart[] = Array.from({ length: 3_001 }, (_, i) => ({
      key: `c/export_day=01-04-2025/event_exports_1743465600_${i + 1}.json.gz`,
      records: 2,
      bytes: 100,
      sha256: (i % 16).toString(16).repeat(64),
    }));
    // Saved 60 parts at a time (each save stores the parts written since the last one).
    const cursor = {
      nextObjectIndex: 0,
      nextPartNumber: 1,
      parts: [] as WrittenPart[],
      attempt: 'attempt-big',
    };
    for (let recorded = 0; recorded < 3_000; recorded += 60) {
      cursor.parts = many.slice(0, recorded + 60);
      cursor.nextObjectIndex = recorded + 60;
      cursor.nextPartNumber = recorded + 61;
      expect(await store.saveCursor(id, 'owner-a', E1, cursor, recorded)).toBe(true);
    }
    const row = await rawRow(id, 'STATE');
    expect(JSON.stringify(row).length).toBeLessThan(1_000);
    // A takeover reads the 3,000 parts back from their items.
    const taken = await store.acquireLease(id, 'owner-b', new Date(NOW.getTime() + LEASE_MS), LEASE_MS, E2);
    expect(taken?.cursor).toEqual({ ...cursor, parts: many.slice(0, 3_000) });
    // The former owner can no longer add an item.
    expect(await store.saveCursor(id, 'owner-a', E1, { ...cursor, parts: many }, 3_000)).toBe(false);
    expect(await rawRow(id, 'WINDOW#2025-04-01T00:00:00.000Z#PARTS#3000')).toBeUndefined();

    // The commit adds the last part's item only, in a transaction of three items.
    expect(
      await store.commitWindow(
        id,
        commitOf({ leaseOwner: 'owner-b', parts: many, recordedParts: 3_000, partsAttempt: 'attempt-big' }),
      ),
    ).toBe(true);
    const [entry] = await store.listHistory(id);
    expect(entry?.partCount).toBe(3_001);
    expect(entry?.parts).toEqual(many);
    expect(entry?.partsInManifestOnly).toBeUndefined();
    expect(await store.getUsage(id, '2025-04')).toMatchObject({
      events: 6_002,
      files: 3_001,
      bytes: 300_100,
    });
  });

  it('part items of another attempt of the same window end are not listed as its parts', async () => {
    const id = await leasedConnection('owner-a');
    const many: WrittenPart[] = Array.from({ length: 120 }, (_, i) => ({ ...parts[0]!, key: `k${i + 1}` }));
    // An earlier attempt (e.g. before a repin) stored 120 parts; this one writes 110.
    const stale = { nextObjectIndex: 120, nextPartNumber: 121, parts: many, attempt: 'attempt-old' };
    expect(await store.saveCursor(id, 'owner-a', E1, stale, 0)).toBe(true);
    const fresh = many.slice(0, 110).map((p) => ({ ...p, sha256: 'c'.repeat(64) }));
    const cursor = {
      nextObjectIndex: 110,
      nextPartNumber: 110,
      parts: fresh.slice(0, 109),
      attempt: 'attempt-new',
    };
    expect(await store.saveCursor(id, 'owner-a', E1, cursor, 0)).toBe(true);
    expect(
      await store.commitWindow(
        id,
        commitOf({ parts: fresh, recordedParts: 109, partsAttempt: 'attempt-new' }),
      ),
    ).toBe(true);
    const [entry] = await store.listHistory(id);
    expect(entry?.parts).toEqual(fresh);
  });

  it('releaseLease frees only our lease and keeps the pending window and cursor', async () => {
    const id = await leasedConnection('owner-a');
    const cursor = { nextObjectIndex: 2, nextPartNumber: 2, parts: [parts[0]!], attempt: 'attempt-1' };
    await store.saveCursor(id, 'owner-a', E1, cursor, 0);
    await store.releaseLease(id, 'owner-b');
    expect((await store.get(id))?.lease?.owner).toBe('owner-a');
    await store.releaseLease(id, 'owner-a');
    const state = await store.get(id);
    expect(state?.lease).toBeUndefined();
    expect(state?.pendingWindowEnd).toEqual(E1);
    expect(state?.cursor).toEqual(cursor);
    expect(await store.acquireLease(id, 'owner-b', NOW, LEASE_MS, E2)).toMatchObject({
      pendingWindowEnd: E1,
    });
  });

  it('recordError on a connection without state keeps it uninitialized but listed with the error', async () => {
    const id = newConnectionId();
    const diagnosis = {
      code: 'INVALID_CONNECTION',
      message: 'bucketName must be ...',
      at: NOW.toISOString(),
    };
    await store.recordError(id, diagnosis);
    expect(await store.get(id)).toBeUndefined();
    const listed = (await store.listStates()).find((s) => s.connectionId === id);
    expect(listed).toEqual({ connectionId: id, sequence: 0, lastError: diagnosis });
    const initialized = await store.initialize(id, W0);
    expect(initialized).toMatchObject({ watermark: W0, sequence: 0, lastError: diagnosis });
  });

  it('resetWatermark is refused while a window is pending or a lease is held, and clears the cursor', async () => {
    const id = await leasedConnection('owner-a');
    const backfillFrom = new Date('2025-03-25T00:00:00Z');
    expect(await store.resetWatermark(id, backfillFrom, NOW)).toBe(false);
    expect(await store.commitWindow(id, commitOf())).toBe(true);
    await store.acquireLease(id, 'owner-a', NOW, LEASE_MS, E1); // nothing to pin: E1 is the watermark
    expect(await store.resetWatermark(id, backfillFrom, NOW)).toBe(false);
    expect(await store.resetWatermark(id, backfillFrom, new Date(NOW.getTime() + LEASE_MS))).toBe(true);
    const state = await store.get(id);
    expect(state).toMatchObject({ watermark: backfillFrom, sequence: 1 });
    expect(state?.lease).toBeUndefined();
    expect(state?.cursor).toBeUndefined();
  });
});
