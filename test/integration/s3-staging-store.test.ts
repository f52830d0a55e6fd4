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
import {
  continuedReadGets,
  encodeRefKey,
  encodeSlotIndex,
  rangeRuns,
  type SectionEntry,
} from '../../lambdas/domain/staged-segment.ts';
import { SLOT_MS, segmentKey, slotDataKey, slotIndexKey } from '../../lambdas/domain/staging-layout.ts';
import { SlotsNotCompactedError } from '../../lambdas/ports/index.ts';
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

const SEGMENT = (ms: number, seq: string) => segmentKey(new Date(ms), 'shardId-000000000001', seq, seq);

describe('S3StagingStore on s3rver', () => {
  it('creates an object once; a second create of the same key is "exists" and keeps the first body', async () => {
    const key = SEGMENT(Date.parse('2025-04-01T10:00:00.000Z'), '1');
    recorder.clear();
    expect(await store.createObject(key, gz(['{"n":1}']))).toBe('created');
    expect(await store.createObject(key, gz(['{"n":2}']))).toBe('exists');

    const puts = recorder.find('PUT', key);
    expect(puts).toHaveLength(2);
    for (const put of puts) expect(put.headers['if-none-match']).toBe('*');
    expect(gunzipSync((await store.readBytes(key))!).toString()).toBe('{"n":1}\n');
  });

  it('exists tells a staged key from a missing one; readBytes of a missing key is undefined', async () => {
    const key = SEGMENT(Date.parse('2025-04-01T10:00:00.000Z'), '7');
    expect(await store.exists(key)).toBe(false);
    expect(await store.readBytes(key)).toBeUndefined();
    await store.createObject(key, gz(['{}']));
    expect(await store.exists(key)).toBe(true);
  });

  it('readBytes reads exactly a byte range (a ranged GET)', async () => {
    const key = SEGMENT(Date.parse('2025-04-01T10:00:00.000Z'), '8');
    const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    await store.createObject(key, body);
    expect(Buffer.from((await store.readBytes(key, { offset: 1234, length: 777 }))!)).toEqual(
      body.subarray(1234, 2011),
    );
  });

  it('listPrefix lists every object under a prefix in key order; writeStream writes chunks as one object', async () => {
    await store.writeStream(
      't-list/b',
      (async function* () {
        yield Buffer.from('hello ');
        yield Buffer.from('world');
      })(),
    );
    await store.createObject('t-list/a', Buffer.from('x'));
    expect(await store.listPrefix('t-list/')).toEqual([
      { key: 't-list/a', size: 1 },
      { key: 't-list/b', size: 11 },
    ]);
    expect(Buffer.from((await store.readBytes('t-list/b'))!).toString()).toBe('hello world');
  });

  it('listWindow names the uncompacted slots of a window instead of reading them as empty', async () => {
    const start = at('2025-04-03T10:00:00.000Z');
    const error = await store
      .listWindow('app', start, at('2025-04-03T10:15:00.000Z'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlotsNotCompactedError);
    expect((error as SlotsNotCompactedError).slotStarts.map((d) => d.toISOString())).toEqual([
      '2025-04-03T10:00:00.000Z',
    ]);
  });

  it('openObject streams the bytes of every range of a ref key, in order', async () => {
    await store.createObject('t-ref/x', Buffer.from('0123456789'));
    await store.createObject('t-ref/y', Buffer.from('abcdefghij'));
    const ref = encodeRefKey([
      { objectKey: 't-ref/x', offset: 2, length: 3 },
      { objectKey: 't-ref/y', offset: 7, length: 3 },
    ]);
    expect((await readAll(await store.openObject(ref))).toString()).toBe('234hij');
  });
});

describe('S3StagingStore reads of a large app (one GET per run of chunks)', () => {
  /** A compacted slot: app-a's data in `chunkCount` chunks, then app-b's in one. */
  async function writeSlot(slotStart: Date, chunkCount: number) {
    const members: Buffer[] = [];
    const entries: SectionEntry[] = [];
    let offset = 0;
    const add = (section: string, n: number) => {
      const member = gz(Array.from({ length: 200 }, (_, i) => `{"app":"${section}","chunk":${n},"i":${i}}`));
      entries.push({ section, offset, length: member.length, count: 200 });
      members.push(member);
      offset += member.length;
    };
    for (let n = 0; n < chunkCount; n++) add('app-a', n);
    add('app-b', 0);
    const data = Buffer.concat(members);
    await store.createObject(slotDataKey(slotStart), data);
    await store.createObject(
      slotIndexKey(slotStart),
      Buffer.from(encodeSlotIndex(slotStart.getTime(), entries)),
    );
    return { data, entries };
  }

  it('reads the chunks of a window in order with one GET of their run, byte for byte', async () => {
    const slotStart = at('2025-04-02T10:00:00.000Z');
    const { data, entries } = await writeSlot(slotStart, 5);
    // groupBytes 1: one ref per chunk, as for an app with chunks of SLOT_CHUNK_BYTES.
    const refs = await store.listWindow('app-a', slotStart, new Date(slotStart.getTime() + SLOT_MS), 1);
    expect(refs).toHaveLength(5);
    recorder.clear();
    const bodies = await Promise.all(refs.map(async (ref) => readAll(await store.openObject(ref.key))));
    const appA = entries.filter((e) => e.section === 'app-a');
    for (const [i, body] of bodies.entries())
      expect(body).toEqual(data.subarray(appA[i]!.offset, appA[i]!.offset + appA[i]!.length));
    const gets = recorder.find('GET', slotDataKey(slotStart));
    expect(gets).toHaveLength(1);
    const last = appA.at(-1)!;
    expect(gets[0]!.headers.range).toBe(`bytes=0-${last.offset + last.length - 1}`);
    // The bench's model of the reads agrees with the adapter.
    const runs = rangeRuns([{ slotStart, dataKey: slotDataKey(slotStart), entries: appA }]);
    expect(
      continuedReadGets(
        refs.map((r) => r.key),
        runs,
      ),
    ).toBe(gets.length);
  });

  it('a window read again (a retry) or out of order costs GETs, never other bytes', async () => {
    const slotStart = at('2025-04-02T10:15:00.000Z');
    const { data, entries } = await writeSlot(slotStart, 3);
    const refs = await store.listWindow('app-a', slotStart, new Date(slotStart.getTime() + SLOT_MS), 1);
    const appA = entries.filter((e) => e.section === 'app-a');
    recorder.clear();
    const order = [2, 0, 1];
    for (const i of order) {
      const body = await readAll(await store.openObject(refs[i]!.key));
      expect(body).toEqual(data.subarray(appA[i]!.offset, appA[i]!.offset + appA[i]!.length));
    }
    // 2 alone; 0 opens the run, which 1 continues.
    expect(recorder.find('GET', slotDataKey(slotStart))).toHaveLength(2);
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

  it('listPrefix follows continuation tokens', async () => {
    const mock = mockClient(mockableClient());
    mock
      .on(ListObjectsV2Command)
      .resolvesOnce({ Contents: [{ Key: 'p/2', Size: 1 }], IsTruncated: true, NextContinuationToken: 't1' })
      .resolvesOnce({ Contents: [{ Key: 'p/1', Size: 1 }], IsTruncated: false });
    const listed = await new S3StagingStore(mock as unknown as S3Client, 'b').listPrefix('p/');
    expect(listed.map((o) => o.key)).toEqual(['p/1', 'p/2']);
    expect(mock.commandCalls(ListObjectsV2Command)[1]?.args[0].input.ContinuationToken).toBe('t1');
  });
});

/** A fresh client for aws-sdk-client-mock (mocking the shared one would hide the engine). */
function mockableClient(): S3Client {
  return createS3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
}
