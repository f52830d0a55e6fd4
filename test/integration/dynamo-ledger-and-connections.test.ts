import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoStagingLedger } from '../../lambdas/adapters/dynamo-staging-ledger.ts';
import { type Connection, parseConnection } from '../../lambdas/domain/connection.ts';
import type { StagingUnitInFlight } from '../../lambdas/ports/index.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
let dynamo: ReturnType<typeof createDynamoDocumentClient>;

beforeAll(() => {
  const e = engines();
  dynamo = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
});

describe('DynamoStagingLedger', () => {
  const NOW = new Date('2025-04-01T00:00:00.000Z');
  const ledger = () =>
    new DynamoStagingLedger(dynamo, engines().tables.stagingLedger, {
      clock: { now: () => NOW },
      stagingRetentionDays: 14,
    });
  const pending: StagingUnitInFlight = {
    firstSequence: '49590338271490256608559692538361571095921575989136588898',
    lastSequence: '49590338271490256608559692540361571095921575989136588898',
    stageTimeMs: NOW.getTime(),
    key: 'segments/1743465600000/1743465600000-shardId-000000000001-49590338271490256608559692538361571095921575989136588898.seg',
  };

  it('an unknown shard has version 0 and no checkpoint', async () => {
    expect(await ledger().getCheckpoint('shardId-unknown')).toEqual({
      shardId: 'shardId-unknown',
      version: 0,
    });
  });

  it('writes a checkpoint under the expected version and bumps the version', async () => {
    const shardId = 'shardId-000000000001';
    expect(await ledger().putCheckpoint({ shardId, pending }, 0)).toBe(true);
    expect(await ledger().getCheckpoint(shardId)).toEqual({ shardId, pending, version: 1 });
    expect(await ledger().putCheckpoint({ shardId, stagedThrough: pending.lastSequence }, 1)).toBe(true);
    // The whole row is replaced: the pending unit is gone once staged.
    expect(await ledger().getCheckpoint(shardId)).toEqual({
      shardId,
      stagedThrough: pending.lastSequence,
      version: 2,
    });
  });

  it('refuses a write whose expected version is stale, keeping the stored checkpoint', async () => {
    const shardId = 'shardId-000000000002';
    expect(await ledger().putCheckpoint({ shardId, pending }, 0)).toBe(true);
    expect(await ledger().putCheckpoint({ shardId, stagedThrough: '1' }, 0)).toBe(false);
    expect(await ledger().putCheckpoint({ shardId, stagedThrough: '1' }, 2)).toBe(false);
    expect(await ledger().getCheckpoint(shardId)).toEqual({ shardId, pending, version: 1 });
  });

  it('counts a write as done when the SDK retried it after it was applied (answer lost)', async () => {
    const shardId = 'shardId-000000000009';
    const e = engines();
    const client = createDynamoDocumentClient({
      region: e.region,
      endpoint: e.dynamoEndpoint,
      credentials: e.credentials,
    });
    // Below the retry middleware: the first PutItem reaches DynamoDB Local and is applied, then its
    // answer is "lost" as on a reset connection; the SDK sends it again.
    let lost = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'PutItemCommand' && lost === 0) {
          lost += 1;
          throw Object.assign(new Error('socket hang up'), {
            name: 'Error',
            code: 'ECONNRESET',
            $metadata: {},
          });
        }
        return result;
      },
      { step: 'deserialize', name: 'loseFirstPutAnswer' },
    );
    const retried = new DynamoStagingLedger(client, e.tables.stagingLedger, {
      clock: { now: () => NOW },
      stagingRetentionDays: 14,
    });
    expect(await retried.putCheckpoint({ shardId, pending }, 0)).toBe(true);
    expect(await retried.putCheckpoint({ shardId, stagedThrough: pending.lastSequence }, 1)).toBe(true);
    expect(lost).toBe(1);
    expect(await ledger().getCheckpoint(shardId)).toEqual({
      shardId,
      stagedThrough: pending.lastSequence,
      version: 2,
    });
    // A different content under a stale version is still a lost race.
    expect(await retried.putCheckpoint({ shardId, stagedThrough: '7' }, 1)).toBe(false);
  });

  it('of two concurrent writers on the same version only one wins', async () => {
    const shardId = 'shardId-000000000003';
    // The first write: create-if-absent. (CI once saw two of these both succeed: DynamoDB Local's
    // TTL sweeper had deleted the first row, whose expiresAt the test's 2025 clock put in the real
    // past; local tables no longer turn TTL deletion on — LocalEngineOptions.timeToLive.)
    const created = await Promise.all(
      ['1', '2', '3', '4'].map((s) => ledger().putCheckpoint({ shardId, stagedThrough: s }, 0)),
    );
    expect(created.filter(Boolean)).toHaveLength(1);
    const winner = (await ledger().getCheckpoint(shardId)).stagedThrough;
    expect(winner).toBe(String(created.indexOf(true) + 1));
    // Then on the existing row (the stager's steady state).
    const results = await Promise.all(
      ['2', '3', '4', '5'].map((s) => ledger().putCheckpoint({ shardId, stagedThrough: s }, 1)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await ledger().getCheckpoint(shardId)).version).toBe(2);
  });

  it('stores the row under pk shard#<shardId> with a TTL twice the staging retention ahead', async () => {
    const shardId = 'shardId-000000000004';
    await ledger().putCheckpoint({ shardId, stagedThrough: '5' }, 0);
    const { Item } = await dynamo.send(
      new GetCommand({ TableName: engines().tables.stagingLedger, Key: { pk: `shard#${shardId}` } }),
    );
    expect(Item?.['expiresAt']).toBe(NOW.getTime() / 1000 + 28 * 86_400);
  });
});

describe('DynamoConnectionRepository', () => {
  const repository = () =>
    new DynamoConnectionRepository(dynamo, engines().tables.connections, engines().tables.exportState);
  const connection = (id: string, frequency: Connection['frequency'], extra: Record<string, unknown> = {}) =>
    parseConnection({
      connectionId: `conn_${id.padStart(26, '0')}`,
      appId: 'app1',
      appName: 'App One',
      dbName: 'MoEngage App One',
      connectionName: `export-${id}`,
      bucketName: 'customer-bucket',
      bucketRegion: 'ap-south-1',
      events: { mode: 'ALL' },
      frequency,
      createdAt: '2025-04-01T00:00:00.000Z',
      ...extra,
    });

  it('round-trips a connection as plain attributes, without undefined fields', async () => {
    const c = connection('rt', 'DAILY', {
      folderPath: 'my_folder/sub',
      bucketOwnerAccountId: '123456789012',
    });
    await repository().put(c);
    const raw = await repository().getRaw(c.connectionId);
    expect(raw).toEqual(JSON.parse(JSON.stringify(c)));
    expect(parseConnection(raw)).toEqual(c);
  });

  it('lists by frequency through the GSI, only that frequency, across result pages', async () => {
    const weekly = Array.from({ length: 30 }, (_, i) => connection(`w${i}`, 'WEEKLY'));
    const fifteen = Array.from({ length: 3 }, (_, i) => connection(`f${i}`, 'FIFTEEN_MINUTES'));
    await Promise.all([...weekly, ...fifteen].map((c) => repository().put(c)));
    // 12 rows of ~100 KB exceed one 1 MB query page.
    const large = Array.from({ length: 12 }, (_, i) => ({
      ...connection(`big${i}`, 'WEEKLY'),
      operatorNotes: 'n'.repeat(100_000),
    }));
    for (const row of large)
      await dynamo.send(new PutCommand({ TableName: engines().tables.connections, Item: row }));

    const listed = await repository().listRawByFrequency('WEEKLY');
    expect(listed.map((r) => r['connectionId']).sort()).toEqual(
      [...weekly, ...large].map((c) => c.connectionId).sort(),
    );
    expect(
      (await repository().listRawByFrequency('FIFTEEN_MINUTES')).map((r) => r['connectionId']).sort(),
    ).toEqual(fifteen.map((c) => c.connectionId).sort());
  });

  it('returns invalid rows raw (the caller validates) and lists every row with listRaw', async () => {
    await dynamo.send(
      new PutCommand({
        TableName: engines().tables.connections,
        Item: { connectionId: 'conn_broken', frequency: 'DAILY', bucketName: 'Not A Bucket' },
      }),
    );
    expect(await repository().getRaw('conn_broken')).toEqual({
      connectionId: 'conn_broken',
      frequency: 'DAILY',
      bucketName: 'Not A Bucket',
    });
    expect((await repository().listRawByFrequency('DAILY')).map((r) => r['connectionId'])).toContain(
      'conn_broken',
    );
    expect((await repository().listRaw()).map((r) => r['connectionId'])).toContain('conn_broken');
  });

  it('deletes a connection', async () => {
    const c = connection('del', 'DAILY');
    await repository().put(c);
    await repository().delete(c.connectionId);
    expect(await repository().getRaw(c.connectionId)).toBeUndefined();
  });
});
