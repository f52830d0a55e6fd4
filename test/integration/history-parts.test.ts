/**
 * History rows stay bounded whatever the number of parts: a window of 5,000 parts (about
 * 1 MB of part records, where one DynamoDB item holds 400 KB) commits on DynamoDB Local, every
 * item stays far below the limit, and the history lists every part.
 */
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import {
  connectionKey,
  DynamoExportStateStore,
  HISTORY_INLINE_PARTS,
} from '../../lambdas/adapters/dynamo-export-state-store.ts';
import type { WrittenPart } from '../../lambdas/ports/index.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

function parts(n: number): WrittenPart[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `customer-folder/export_day=29-11-2026/event_exports_1796112000_${i + 1}.json.gz.gpg`,
    records: 1000 + i,
    bytes: 536_870_912 + i,
    sha256: `${String(i).padStart(8, '0')}${'ab'.repeat(28)}`,
  }));
}

async function commit(connectionId: string, written: WrittenPart[]) {
  const e = engines();
  const documentClient = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  const store = new DynamoExportStateStore(documentClient, e.tables.exportState);
  const start = new Date('2026-11-29T00:00:00.000Z');
  const end = new Date('2026-11-30T00:00:00.000Z');
  await store.initialize(connectionId, start);
  expect(await store.acquireLease(connectionId, 'owner-1', start, 60_000, end)).toBeDefined();
  const ok = await store.commitWindow(connectionId, {
    expectedWatermark: start,
    windowEnd: end,
    sequence: 1,
    stateSequence: 1,
    bucketName: 'customer-history-parts',
    leaseOwner: 'owner-1',
    committedAt: end,
    parts: written,
    manifestKey: 'customer-folder/export_day=29-11-2026/event_exports_1796112000.manifest.json',
  });
  const { Items } = await documentClient.send(
    new QueryCommand({
      TableName: e.tables.exportState,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': connectionKey(connectionId) },
    }),
  );
  return { ok, store, items: Items ?? [] };
}

describe('history of a window with many parts', () => {
  it('5,000 parts: the commit succeeds, every item stays far below 400 KB, the history lists every part', async () => {
    const written = parts(5000);
    expect(JSON.stringify(written).length).toBeGreaterThan(400 * 1024);
    const { ok, store, items } = await commit('conn_histparts5000', written);
    expect(ok).toBe(true);
    for (const item of items) expect(JSON.stringify(item).length).toBeLessThan(200 * 1024);
    const [window] = await store.listHistory('conn_histparts5000');
    expect(window?.partCount).toBe(5000);
    expect(window?.parts).toEqual(written);
    expect(window?.partsInManifestOnly).toBeUndefined();
    const [newest] = await store.listHistory('conn_histparts5000', { newestFirst: true, limit: 1 });
    expect(newest?.parts).toEqual(written);
  });

  it(`up to ${HISTORY_INLINE_PARTS} parts stay in the history row itself`, async () => {
    const written = parts(HISTORY_INLINE_PARTS);
    const { ok, store, items } = await commit('conn_histparts0100', written);
    expect(ok).toBe(true);
    expect(items.filter((i) => String(i.sk).includes('#PARTS#'))).toHaveLength(0);
    expect((await store.listHistory('conn_histparts0100'))[0]?.parts).toEqual(written);
  });
});
