import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { RequestRecorder } from '../../lambdas/adapters/request-recorder.ts';
import { S3StagingStore } from '../../lambdas/adapters/s3-staging-store.ts';
import { stagedObjectKey } from '../../lambdas/domain/staging-layout.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
let s3: S3Client;
let store: S3StagingStore;
const recorder = new RequestRecorder();

beforeAll(() => {
  const e = engines();
  s3 = createS3Client({ region: e.region, endpoint: e.s3Endpoint, credentials: e.credentials });
  recorder.attach(s3);
  store = new S3StagingStore(s3, e.stagingBucket);
});

const gz = (lines: string[]) => gzipSync(Buffer.from(lines.map((l) => `${l}\n`).join('')));
const at = (iso: string) => new Date(iso);

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

describe('S3StagingStore on s3rver', () => {
  it('creates an object once; a second create of the same key is "exists" and keeps the first body', async () => {
    const key = stagedObjectKey('app-create', at('2025-04-01T10:00:00.000Z'), 'shardId-000000000001', '1');
    recorder.clear();
    expect(await store.createObject(key, gz(['{"n":1}']))).toBe('created');
    expect(await store.createObject(key, gz(['{"n":2}']))).toBe('exists');

    const puts = recorder.find('PUT', key);
    expect(puts).toHaveLength(2);
    for (const put of puts) expect(put.headers['if-none-match']).toBe('*');
    expect(gunzipSync(await readAll(await store.openObject(key))).toString()).toBe('{"n":1}\n');
  });

  it('exists tells a staged key from a missing one', async () => {
    const key = stagedObjectKey('app-exists', at('2025-04-01T10:00:00.000Z'), 'shardId-000000000001', '7');
    expect(await store.exists(key)).toBe(false);
    await store.createObject(key, gz(['{}']));
    expect(await store.exists(key)).toBe(true);
  });

  it('openObject streams the stored gzip bytes unchanged', async () => {
    const key = stagedObjectKey('app-open', at('2025-04-01T10:00:00.000Z'), 'shardId-000000000001', '9');
    const body = gz(Array.from({ length: 2000 }, (_, i) => JSON.stringify({ event_uuid: `u${i}` })));
    await store.createObject(key, body);
    const stored = await readAll(await store.openObject(key));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(
      createHash('sha256').update(body).digest('hex'),
    );
  });

  it('listWindow returns exactly the objects with start <= T < end, across hours and days, in (T, key) order', async () => {
    const app = 'app-window';
    const times = [
      '2025-04-01T22:59:59.999Z', // before the window
      '2025-04-01T23:00:00.000Z', // = start: in
      '2025-04-01T23:59:59.999Z',
      '2025-04-02T00:00:00.000Z', // next day
      '2025-04-02T00:30:00.000Z',
      '2025-04-02T01:14:59.999Z', // last ms in
      '2025-04-02T01:15:00.000Z', // = end: out
      '2025-04-02T01:20:00.000Z',
    ];
    const keys = times.map((t) => stagedObjectKey(app, at(t), 'shardId-000000000002', '100'));
    // Same T, two shards: ordered by key.
    const twin = stagedObjectKey(app, at('2025-04-02T00:30:00.000Z'), 'shardId-000000000001', '100');
    await Promise.all([...keys, twin].map((k) => store.createObject(k, gz(['{}']))));
    await store.createObject(
      stagedObjectKey('other-app', at('2025-04-02T00:30:00.000Z'), 'shardId-000000000001', '1'),
      gz(['{}']),
    );

    const listed = await store.listWindow(
      app,
      at('2025-04-01T23:00:00.000Z'),
      at('2025-04-02T01:15:00.000Z'),
    );
    expect(listed.map((o) => o.key)).toEqual([keys[1], keys[2], keys[3], twin, keys[4], keys[5]]);
    expect(listed.map((o) => o.stageTime.toISOString())).toEqual([
      '2025-04-01T23:00:00.000Z',
      '2025-04-01T23:59:59.999Z',
      '2025-04-02T00:00:00.000Z',
      '2025-04-02T00:30:00.000Z',
      '2025-04-02T00:30:00.000Z',
      '2025-04-02T01:14:59.999Z',
    ]);
    expect(listed.every((o) => typeof o.size === 'number' && o.size > 0)).toBe(true);
    expect(
      await store.listWindow(app, at('2025-04-03T00:00:00.000Z'), at('2025-04-03T06:00:00.000Z')),
    ).toEqual([]);
  });
});

describe('S3StagingStore error mapping (SDK error shapes)', () => {
  const s3Error = (name: string, status: number) =>
    new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

  it('maps 412 PreconditionFailed to "exists"', async () => {
    const mock = mockClient(mockableClient());
    mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    expect(await new S3StagingStore(mock as unknown as S3Client, 'b').createObject('k', gz(['{}']))).toBe(
      'exists',
    );
    expect(mock.commandCalls(PutObjectCommand)[0]?.args[0].input.IfNoneMatch).toBe('*');
  });

  it('maps 409 ConditionalRequestConflict to "exists"', async () => {
    const mock = mockClient(mockableClient());
    mock.on(PutObjectCommand).rejects(s3Error('ConditionalRequestConflict', 409));
    expect(await new S3StagingStore(mock as unknown as S3Client, 'b').createObject('k', gz(['{}']))).toBe(
      'exists',
    );
  });

  it('rethrows any other failure', async () => {
    const mock = mockClient(mockableClient());
    mock.on(PutObjectCommand).rejects(s3Error('AccessDenied', 403));
    await expect(
      new S3StagingStore(mock as unknown as S3Client, 'b').createObject('k', gz(['{}'])),
    ).rejects.toThrow('AccessDenied');
    mock.on(PutObjectCommand).rejects(s3Error('OperationAborted', 409));
    await expect(
      new S3StagingStore(mock as unknown as S3Client, 'b').createObject('k', gz(['{}'])),
    ).rejects.toThrow('OperationAborted');
  });

  it('listWindow follows continuation tokens', async () => {
    const mock = mockClient(mockableClient());
    const start = at('2025-04-01T10:00:00.000Z');
    const key = (ms: number) =>
      stagedObjectKey('app', new Date(start.getTime() + ms), 'shardId-000000000001', '1');
    mock
      .on(ListObjectsV2Command)
      .resolvesOnce({ Contents: [{ Key: key(2), Size: 1 }], IsTruncated: true, NextContinuationToken: 't1' })
      .resolvesOnce({ Contents: [{ Key: key(1), Size: 1 }], IsTruncated: false });
    const listed = await new S3StagingStore(mock as unknown as S3Client, 'b').listWindow(
      'app',
      start,
      new Date(start.getTime() + 60_000),
    );
    expect(listed.map((o) => o.key)).toEqual([key(1), key(2)]);
    expect(mock.commandCalls(ListObjectsV2Command)[1]?.args[0].input.ContinuationToken).toBe('t1');
  });
});

/** A fresh client for aws-sdk-client-mock (mocking the shared one would hide the engine). */
function mockableClient(): S3Client {
  return createS3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
}
