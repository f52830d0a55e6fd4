import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { RequestRecorder } from '../../lambdas/adapters/request-recorder.ts';
import { regionalS3Clients, S3ExportSink } from '../../lambdas/adapters/s3-export-sink.ts';
import type { SinkTarget } from '../../lambdas/ports/index.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const BUCKET = 'customer-sink';
const KMS_KEY = 'arn:aws:kms:ap-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
let s3: S3Client;
const recorder = new RequestRecorder();

beforeAll(async () => {
  const e = engines();
  await e.createBucket(BUCKET);
  s3 = createS3Client({ region: 'ap-south-1', endpoint: e.s3Endpoint, credentials: e.credentials });
  recorder.attach(s3);
});

const target = (overrides: Partial<SinkTarget> = {}): SinkTarget => ({
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  bucketName: BUCKET,
  bucketRegion: 'ap-south-1',
  ...overrides,
});

/** `total` pseudo-random bytes in chunks of 64 KiB, generated as read (never held whole). */
function randomBody(total: number, seed: Buffer = randomBytes(64 * 1024)): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return this.push(null);
      const n = Math.min(seed.length, total - sent);
      const chunk = Buffer.from(seed.subarray(0, n));
      chunk.writeUInt32BE(sent >>> 0, 0); // vary chunks so a reordered part changes the hash
      sent += n;
      this.push(chunk);
    },
  });
}

async function storedSha256(key: string): Promise<{ sha256: string; bytes: number }> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of Body as Readable) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

describe('S3ExportSink on s3rver', () => {
  it('writes a multi-MB body by multipart upload; the stored bytes hash to the returned SHA-256', async () => {
    const sink = new S3ExportSink(() => s3, { partSizeBytes: 5 * 1024 * 1024, queueSize: 2 });
    const key = 'my_folder_conn/export_day=01-04-2025/event_exports_1743465600.json.gz';
    const size = 12 * 1024 * 1024 + 12_345;
    recorder.clear();

    const stored = await sink.putObject(target(), key, randomBody(size), 'application/gzip');

    expect(stored.key).toBe(key);
    expect(stored.bytes).toBe(size);
    expect(await storedSha256(key)).toEqual({ sha256: stored.sha256, bytes: size });
    const parts = recorder.requests.filter((r) => r.method === 'PUT' && r.query['partNumber'] !== undefined);
    expect(parts.map((r) => r.query['partNumber']).sort()).toEqual(['1', '2', '3']);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.ContentType).toBe('application/gzip');
  });

  it('sends bucket-owner-full-control, the expected bucket owner and SSE-KMS with a bucket key on a multipart upload', async () => {
    const sink = new S3ExportSink(() => s3);
    const key = 'conn/export_day=01-04-2025/event_exports_1743466500.json.gz.gpg';
    recorder.clear();
    await sink.putObject(
      target({ bucketOwnerAccountId: '123456789012', kmsKeyArn: KMS_KEY }),
      key,
      randomBody(6 * 1024 * 1024),
      'application/pgp-encrypted',
    );
    const create = recorder.requests.find((r) => r.method === 'POST' && 'uploads' in r.query);
    expect(create?.headers).toMatchObject({
      'x-amz-acl': 'bucket-owner-full-control',
      'x-amz-expected-bucket-owner': '123456789012',
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': KMS_KEY,
      'x-amz-server-side-encryption-bucket-key-enabled': 'true',
    });
    // Every request of the upload pins the bucket owner.
    const uploadRequests = recorder.requests.filter((r) => decodeURIComponent(r.path).endsWith(key));
    expect(uploadRequests.length).toBeGreaterThanOrEqual(4); // create, 2 parts, complete
    for (const r of uploadRequests) expect(r.headers['x-amz-expected-bucket-owner']).toBe('123456789012');
  });

  it('sends the same headers on a single PUT of a small body, and no SSE or owner headers when unset', async () => {
    const sink = new S3ExportSink(() => s3);
    recorder.clear();
    const small = await sink.putObject(
      target({ bucketOwnerAccountId: '123456789012', kmsKeyArn: KMS_KEY }),
      'conn/small.json.gz',
      Readable.from([Buffer.from('hello\n')]),
      'application/gzip',
    );
    expect(small).toEqual({
      key: 'conn/small.json.gz',
      bytes: 6,
      sha256: createHash('sha256').update('hello\n').digest('hex'),
    });
    const [put] = recorder.find('PUT', 'conn/small.json.gz');
    expect(put?.headers).toMatchObject({
      'x-amz-acl': 'bucket-owner-full-control',
      'x-amz-expected-bucket-owner': '123456789012',
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': KMS_KEY,
      'x-amz-server-side-encryption-bucket-key-enabled': 'true',
    });

    recorder.clear();
    await sink.putObject(
      target(),
      'conn/plain.json.gz',
      Readable.from([Buffer.from('x')]),
      'application/gzip',
    );
    const [plain] = recorder.find('PUT', 'conn/plain.json.gz');
    expect(plain?.headers['x-amz-acl']).toBe('bucket-owner-full-control');
    expect(plain?.headers['x-amz-expected-bucket-owner']).toBeUndefined();
    expect(plain?.headers['x-amz-server-side-encryption']).toBeUndefined();
  });

  it('an empty body stores an empty object with the SHA-256 of nothing', async () => {
    const stored = await new S3ExportSink(() => s3).putObject(
      target(),
      'conn/empty.json',
      Readable.from([]),
      'application/json',
    );
    expect(stored).toMatchObject({ bytes: 0, sha256: createHash('sha256').digest('hex') });
    expect(await storedSha256('conn/empty.json')).toEqual({ sha256: stored.sha256, bytes: 0 });
  });

  it('fails, and leaves no object, when the body stream fails midway', async () => {
    const key = 'conn/broken.json.gz';
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent >= 7 * 1024 * 1024) return this.destroy(new Error('gzip stream broke'));
        sent += 1024 * 1024;
        this.push(Buffer.alloc(1024 * 1024, 1));
      },
    });
    await expect(
      new S3ExportSink(() => s3).putObject(target(), key, failing, 'application/gzip'),
    ).rejects.toThrow('gzip stream broke');
    await expect(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({
      name: 'NotFound',
    });
  });

  it('abandons an upload whose signal aborts midway: the reason is thrown and no object is stored', async () => {
    const key = 'conn/fenced.json.gz';
    const controller = new AbortController();
    const reason = new Error('the lease ran out while a write was in flight');
    let sent = 0;
    const slow = new Readable({
      read() {
        if (sent === 6 * 1024 * 1024) controller.abort(reason);
        if (sent >= 12 * 1024 * 1024) return this.push(null);
        sent += 1024 * 1024;
        this.push(Buffer.alloc(1024 * 1024, 2));
      },
    });
    const sink = new S3ExportSink(() => s3);
    await expect(
      sink.putObject(target(), key, slow, 'application/gzip', { signal: controller.signal }),
    ).rejects.toBe(reason);
    expect(await sink.exists(target(), key)).toBe(false);
    // An already aborted signal sends nothing.
    await expect(
      sink.putObject(target(), key, Readable.from([Buffer.from('x')]), 'application/gzip', {
        signal: controller.signal,
      }),
    ).rejects.toBe(reason);
    expect(await sink.exists(target(), key)).toBe(false);
    await sink.putObject(target(), key, Readable.from([Buffer.from('x')]), 'application/gzip');
    expect(await sink.exists(target(), key)).toBe(true);
    expect(await sink.exists(target({ bucketName: 'no-such-customer-bucket' }), key)).toBe(false);
  });

  it('the default client provider keeps one client per bucket region', async () => {
    const clientFor = regionalS3Clients({
      endpoint: engines().s3Endpoint,
      credentials: engines().credentials,
    });
    const a = await clientFor(target({ bucketRegion: 'ap-south-1' }));
    const b = await clientFor(target({ bucketRegion: 'ap-south-1', connectionId: 'conn_other0000000' }));
    const c = await clientFor(target({ bucketRegion: 'eu-west-1' }));
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(await c.config.region()).toBe('eu-west-1');
    const stored = await new S3ExportSink(clientFor).putObject(
      target(),
      'conn/via-default.json',
      Readable.from([Buffer.from('{}')]),
      'application/json',
    );
    expect(await storedSha256('conn/via-default.json')).toEqual({ sha256: stored.sha256, bytes: 2 });
  });
});
