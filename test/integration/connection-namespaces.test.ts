/**
 * One namespace per connection, on DynamoDB Local: the repository's put claims the prefix
 * `[<folderPath>_]<connectionName>/` in its bucket atomically (a transaction of conditional
 * claim items), so colliding rows are refused naming the other connection, and of two racing
 * puts of colliding rows exactly one wins. At export time a row written around the CLI
 * (`aws dynamodb put-item`) is refused the same way, and the refusal is recorded on its state.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { type Connection, parseConnection } from '../../lambdas/domain/connection.ts';
import { NamespaceConflictError } from '../../lambdas/domain/namespaces.ts';
import { exportWindow } from '../../lambdas/usecases/export-window.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, listKeys } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
let dynamo: ReturnType<typeof createDynamoDocumentClient>;
let repository: DynamoConnectionRepository;

beforeAll(() => {
  const e = engines();
  dynamo = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  repository = new DynamoConnectionRepository(dynamo, e.tables.connections, e.tables.exportState);
});

let counter = 0;
function row(patch: {
  bucketName: string;
  connectionName: string;
  folderPath?: string;
  appId?: string;
}): Connection {
  counter += 1;
  return parseConnection({
    connectionId: `conn_ns${String(counter).padStart(24, '0')}`,
    appId: patch.appId ?? `app-${counter}`,
    appName: 'App',
    dbName: 'DB',
    bucketRegion: 'ap-south-1',
    events: { mode: 'ALL' },
    frequency: 'DAILY',
    createdAt: '2026-11-01T00:00:00.000Z',
    ...patch,
  });
}

async function refusal(promise: Promise<unknown>): Promise<NamespaceConflictError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NamespaceConflictError);
  return error as NamespaceConflictError;
}

describe('DynamoConnectionRepository: one namespace per connection', () => {
  it('folder "a" + name "b_c" and folder "a_b" + name "c" (other apps) give one prefix: the second is refused, naming the first', async () => {
    const first = row({ bucketName: 'ns-one', folderPath: 'a', connectionName: 'b_c' });
    const second = row({ bucketName: 'ns-one', folderPath: 'a_b', connectionName: 'c' });
    await repository.put(first);
    const error = await refusal(repository.put(second));
    expect(error.otherConnectionId).toBe(first.connectionId);
    expect(error.message).toContain(
      `its prefix "a_b_c/" in bucket ns-one collides with connection ${first.connectionId}`,
    );
    expect(await repository.getRaw(second.connectionId)).toBeUndefined();
    // Another bucket is another namespace.
    await repository.put({ ...second, bucketName: 'ns-other' });
  });

  it("a prefix nested inside another connection's prefix collides, in either order", async () => {
    const outer = row({ bucketName: 'ns-nested', connectionName: 'x_y' });
    const inner = row({ bucketName: 'ns-nested', folderPath: 'x_y/z', connectionName: 'n' });
    await repository.put(outer);
    expect((await refusal(repository.put(inner))).otherConnectionId).toBe(outer.connectionId);

    const inner2 = row({ bucketName: 'ns-nested-2', folderPath: 'x_y/z', connectionName: 'n' });
    const outer2 = row({ bucketName: 'ns-nested-2', connectionName: 'x_y' });
    await repository.put(inner2);
    expect((await refusal(repository.put(outer2))).otherConnectionId).toBe(inner2.connectionId);
  });

  it('siblings under one folder are fine; a connection at that folder collides with them', async () => {
    const left = row({ bucketName: 'ns-siblings', folderPath: 'root/a', connectionName: 'x' });
    const right = row({ bucketName: 'ns-siblings', folderPath: 'root/b', connectionName: 'x' });
    await repository.put(left);
    await repository.put(right);
    const top = row({ bucketName: 'ns-siblings', connectionName: 'root' });
    expect([left.connectionId, right.connectionId]).toContain(
      (await refusal(repository.put(top))).otherConnectionId,
    );
    // Re-putting a row (an edit that keeps its prefix) is not a collision with itself.
    await repository.put({ ...left, frequency: 'WEEKLY' });
  });

  it('an edit that moves a prefix releases the old one; a delete releases its prefix', async () => {
    const a = row({ bucketName: 'ns-move', connectionName: 'first' });
    const b = row({ bucketName: 'ns-move', connectionName: 'first' });
    await repository.put(a);
    await refusal(repository.put(b));
    await repository.put({ ...a, connectionName: 'renamed' });
    await repository.put(b);
    await refusal(
      repository.put(row({ bucketName: 'ns-move', folderPath: 'renamed/deeper', connectionName: 'z' })),
    );
    await repository.delete(a.connectionId);
    await repository.put(row({ bucketName: 'ns-move', folderPath: 'renamed/deeper', connectionName: 'z' }));
  });

  it('two racing puts of colliding rows: exactly one wins, the other names it (20 races)', async () => {
    for (let race = 0; race < 20; race += 1) {
      const bucketName = `ns-race-${race}`;
      const pair =
        race % 2 === 0
          ? [
              row({ bucketName, folderPath: 'a', connectionName: 'b_c' }),
              row({ bucketName, folderPath: 'a_b', connectionName: 'c' }),
            ]
          : [
              row({ bucketName, connectionName: 'top' }),
              row({ bucketName, folderPath: 'top/in', connectionName: 'c' }),
            ];
      const results = await Promise.allSettled(pair.map((c) => repository.put(c)));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [pair[i] as Connection] : []));
      expect(winners).toHaveLength(1);
      const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(loser.reason).toBeInstanceOf(NamespaceConflictError);
      expect((loser.reason as NamespaceConflictError).otherConnectionId).toBe(winners[0]?.connectionId);
      const stored = await Promise.all(pair.map((c) => repository.getRaw(c.connectionId)));
      expect(stored.filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('exporter: a colliding row written around the CLI is refused at export time', () => {
  it('the later connection is refused with NAMESPACE_CONFLICT naming the other, recorded on its state; nothing is written for it', async () => {
    const e = engines();
    await e.createBucket('ns-export');
    const clock = new ManualClock(new Date('2026-11-02T00:00:00Z'));
    const { driver, s3 } = await createHarness(e, { clock });
    const first = row({ bucketName: 'ns-export', folderPath: 'a', connectionName: 'b_c' });
    const later = row({ bucketName: 'ns-export', folderPath: 'a_b', connectionName: 'c' });
    first.createdAt = '2026-11-01T00:00:00.000Z';
    later.createdAt = '2026-11-01T00:00:00.000Z';
    await driver.runtime.connections.put(first);
    // As `aws dynamodb put-item` would: the row goes in without a claim.
    await dynamo.send(new PutCommand({ TableName: e.tables.connections, Item: { ...later } }));

    clock.set(new Date('2026-11-02T00:05:00Z'));
    const windowEnd = new Date('2026-11-02T00:00:00Z');
    const outcome = await exportWindow(
      { connectionId: later.connectionId, windowEnd },
      driver.runtime.exportDeps(),
    );
    expect(outcome).toMatchObject({ status: 'refused', diagnosis: { code: 'NAMESPACE_CONFLICT' } });
    const state = await driver.runtime.state.get(later.connectionId);
    expect(state?.lastError?.code).toBe('NAMESPACE_CONFLICT');
    expect(state?.lastError?.message).toContain(`collides with connection ${first.connectionId}`);
    expect(state?.watermark).toEqual(new Date('2026-11-01T00:00:00.000Z'));

    const ok = await exportWindow(
      { connectionId: first.connectionId, windowEnd },
      driver.runtime.exportDeps(),
    );
    expect(ok.status).toBe('committed');
    const keys = await listKeys(s3, 'ns-export');
    expect(keys.length).toBeGreaterThan(0);
    // Only the first connection's manifest: the later one wrote nothing.
    expect(keys.every((k) => k.startsWith('a_b_c/'))).toBe(true);
    expect(keys.filter((k) => k.endsWith('.manifest.json'))).toHaveLength(1);
  });
});
