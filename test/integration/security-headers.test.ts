/**
 * What the exporter sends to customers' buckets, recorded on the wire (RequestRecorder on the
 * S3 clients of the real S3ExportSink) while the real export path runs on the local engines
 * (LocalDriver: stager, dispatcher, exporter, DynamoDB Local, s3rver). s3rver ignores the
 * SSE, ACL and owner headers, so they are checked as sent, not as stored.
 *
 * Tenant isolation runs the S3 client provider in its AWS mode: STS is aws-sdk-client-mock
 * answering AssumeRole with a fresh session per call; s3rver refuses access keys it does not
 * know (InvalidAccessKeyId) but does not verify SigV4 signatures, so each session's key id is
 * registered in s3rver's in-process account registry. A write signed with any other key than a
 * registered session's (or the local S3RVER key) would be refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, type AssumeRoleCommandInput, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encryptStream, loadEncryptionKey } from '../../lambdas/adapters/pgp.ts';
import { type RecordedRequest, RequestRecorder } from '../../lambdas/adapters/request-recorder.ts';
import { createS3ClientProvider, type S3ClientProvider } from '../../lambdas/adapters/s3-client-provider.ts';
import { MIN_PART_SIZE_BYTES, S3ExportSink } from '../../lambdas/adapters/s3-export-sink.ts';
import { CONNECTION_SESSION_TAG } from '../../lambdas/definitions.ts';
import { type ConnectionInput, parseConnection } from '../../lambdas/domain/connection.ts';
import type { ExportSink, SinkTarget } from '../../lambdas/ports/index.ts';
import { testConnection } from '../../lambdas/usecases/test-connection.ts';
import { ManualClock } from '../../local/clock.ts';
import type { IncomingEvent } from '../../local/driver.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

const T0 = new Date('2026-11-02T10:00:00Z'); // a Monday
const KEY_ARN = 'arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_KEY_ARN = 'arn:aws:kms:us-east-1:444455556666:key/99999999-9999-9999-9999-999999999999';
const OWNER = '444455556666';
const EXPORTER_ROLE = 'arn:aws:iam::111122223333:role/s3-event-export-exporter';

function connectionRow(patch: Partial<ConnectionInput> & Pick<ConnectionInput, 'connectionId'>) {
  return parseConnection({
    appId: 'app-sec',
    appName: 'App Name',
    dbName: 'MoEngage App Name',
    connectionName: patch.connectionId,
    bucketName: 'customer-sec',
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: T0.toISOString(),
    ...patch,
  });
}

let eventCounter = 0;
/** An event; `padding` bytes of random base64 make its gzip about as large as its text. */
function event(appId: string, at: Date, padding = 0): IncomingEvent {
  eventCounter += 1;
  return {
    app_id: appId,
    event: {
      event_uuid: `00000000-0000-4000-a000-${String(eventCounter).padStart(12, '0')}`,
      event_name: 'VIEW_RADAR',
      event_time: Math.floor(at.getTime() / 1000),
      user_attributes: { moengage_user_id: `user-${eventCounter % 50}` },
      event_attributes: padding ? { blob: randomBytes(padding).toString('base64') } : { n: eventCounter },
    },
  };
}

type Operation =
  | 'PutObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'Other';

function operationOf(r: RecordedRequest): Operation {
  if (r.method === 'PUT') return 'partNumber' in r.query ? 'UploadPart' : 'PutObject';
  if (r.method === 'POST' && 'uploads' in r.query) return 'CreateMultipartUpload';
  if (r.method === 'POST' && 'uploadId' in r.query) return 'CompleteMultipartUpload';
  if (r.method === 'DELETE' && 'uploadId' in r.query) return 'AbortMultipartUpload';
  return 'Other';
}

/** Bucket and key of a path-style request. */
function objectOf(r: RecordedRequest): { bucket: string; key: string } {
  const [, bucket = '', ...key] = r.path.split('/');
  return { bucket: decodeURIComponent(bucket), key: key.map(decodeURIComponent).join('/') };
}

function accessKeyIdOf(r: RecordedRequest): string | undefined {
  return /Credential=([^/]+)\//.exec(r.headers.authorization ?? '')?.[1];
}

/** A sink whose S3 clients (from `provider`) record every request they send. */
function recordingSink(provider: S3ClientProvider, recorder: RequestRecorder): ExportSink {
  const attached = new WeakSet<S3Client>();
  return new S3ExportSink(async (target: SinkTarget) => {
    const client = await provider.clientFor(target);
    if (!attached.has(client)) {
      recorder.attach(client);
      attached.add(client);
    }
    return client;
  });
}

function localProvider(clock: ManualClock): S3ClientProvider {
  const e = engines();
  return createS3ClientProvider({
    region: e.region,
    endpoint: e.s3Endpoint,
    baseCredentials: e.credentials,
    clock,
  });
}

const SSE_KMS_AND_OWNER_HEADERS = {
  'x-amz-server-side-encryption': 'aws:kms',
  'x-amz-server-side-encryption-aws-kms-key-id': KEY_ARN,
  'x-amz-server-side-encryption-bucket-key-enabled': 'true',
  'x-amz-acl': 'bucket-owner-full-control',
  'x-amz-expected-bucket-owner': OWNER,
};

describe('write headers on the real export path', () => {
  it('every data part (single and multipart), manifest and probe write carries SSE-KMS, bucket key, the ACL and ExpectedBucketOwner', async () => {
    const e = engines();
    await e.createBucket('customer-sec');
    const clock = new ManualClock(T0);
    const recorder = new RequestRecorder();
    const { driver, s3 } = await createHarness(e, {
      clock,
      config: { kmsKeyAllowlist: [KEY_ARN] },
      sink: () => recordingSink(localProvider(clock), recorder),
    });
    const connection = connectionRow({
      connectionId: 'conn_sec0000000kms',
      connectionName: 'kms',
      kmsKeyArn: KEY_ARN,
      bucketOwnerAccountId: OWNER,
    });
    await driver.runtime.connections.put(connection);

    // Window 1: about 7 MiB of incompressible records, so its one data file is above the
    // 5 MiB multipart threshold of the sink. Window 2: a few records, a single PutObject.
    clock.set(new Date('2026-11-02T10:03:00Z'));
    const big = Array.from({ length: 1800 }, () => event('app-sec', clock.now(), 3000));
    await driver.stage(big);
    clock.set(new Date('2026-11-02T10:20:00Z'));
    const first = await driver.tick('FIFTEEN_MINUTES', clock.now());
    clock.set(new Date('2026-11-02T10:21:00Z'));
    await driver.stage(Array.from({ length: 5 }, () => event('app-sec', clock.now())));
    clock.set(new Date('2026-11-02T10:35:00Z'));
    const second = await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect([...first.exports, ...second.exports].map((x) => x.outcome?.status)).toEqual([
      'committed',
      'committed',
    ]);

    const probe = await testConnection(connection, {
      sink: recordingSink(localProvider(clock), recorder),
      pgp: { loadEncryptionKey, encryptStream },
      kmsKeyAllowlist: [KEY_ARN],
      clock,
    });
    expect(probe.ok).toBe(true);

    // What landed: two data files, two manifests, the probe; every record once.
    const stored = await readBucket(s3, 'customer-sec', 'kms/');
    const dataKeys = stored.filter((f) => isDataKey(f.key)).map((f) => f.key);
    const manifestKeys = stored.filter((f) => isManifestKey(f.key)).map((f) => f.key);
    expect(dataKeys).toHaveLength(2);
    expect(manifestKeys).toHaveLength(2);
    expect(probe.probeKey).toMatch(/^kms\/_connection_test\//);
    const bigFile = stored.find((f) => f.key === dataKeys[0])!;
    expect(bigFile.body.length).toBeGreaterThan(MIN_PART_SIZE_BYTES);
    expect(gzipRecords(bigFile.body)).toHaveLength(1800);

    // How each object was written, from the wire.
    const starts = recorder.requests.filter((r) =>
      ['PutObject', 'CreateMultipartUpload'].includes(operationOf(r)),
    );
    const startOf = (key: string) => starts.filter((r) => objectOf(r).key === key).map(operationOf);
    expect(startOf(dataKeys[0]!)).toEqual(['CreateMultipartUpload']);
    expect(startOf(dataKeys[1]!)).toEqual(['PutObject']);
    for (const key of manifestKeys) expect(startOf(key)).toEqual(['PutObject']);
    expect(startOf(probe.probeKey!)).toEqual(['PutObject']);
    expect(new Set(starts.map((r) => objectOf(r).key))).toEqual(
      new Set([...dataKeys, ...manifestKeys, probe.probeKey!]),
    );
    for (const request of starts) {
      expect(request.headers, `${operationOf(request)} ${objectOf(request).key}`).toMatchObject(
        SSE_KMS_AND_OWNER_HEADERS,
      );
    }
    // The parts and the completion of the multipart upload name the expected owner too.
    const multipart = recorder.requests.filter((r) =>
      ['UploadPart', 'CompleteMultipartUpload'].includes(operationOf(r)),
    );
    expect(multipart.map(operationOf)).toEqual(['UploadPart', 'UploadPart', 'CompleteMultipartUpload']);
    for (const request of multipart) expect(request.headers['x-amz-expected-bucket-owner']).toBe(OWNER);
    expect(recorder.requests.every((r) => objectOf(r).bucket === 'customer-sec')).toBe(true);
  });

  it('a connection whose KMS key is not allowlisted is refused before any request, while another connection of the tick exports', async () => {
    const e = engines();
    await e.createBucket('customer-refused');
    await e.createBucket('customer-fine');
    const clock = new ManualClock(T0);
    const recorder = new RequestRecorder();
    const { driver, s3 } = await createHarness(e, {
      clock,
      config: { kmsKeyAllowlist: [KEY_ARN] },
      sink: () => recordingSink(localProvider(clock), recorder),
    });
    const refused = connectionRow({
      connectionId: 'conn_sec00refused',
      appId: 'app-two',
      bucketName: 'customer-refused',
      kmsKeyArn: OTHER_KEY_ARN,
    });
    const fine = connectionRow({
      connectionId: 'conn_sec000000fine',
      appId: 'app-two',
      bucketName: 'customer-fine',
    });
    await driver.runtime.connections.put(refused);
    await driver.runtime.connections.put(fine);

    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage(Array.from({ length: 20 }, () => event('app-two', clock.now())));
    clock.set(new Date('2026-11-02T10:20:00Z'));
    const run = await driver.tick('FIFTEEN_MINUTES', clock.now());

    const outcomes = Object.fromEntries(run.exports.map((x) => [x.job.connectionId, x.outcome]));
    expect(outcomes[fine.connectionId]?.status).toBe('committed');
    expect(outcomes[refused.connectionId]).toMatchObject({
      status: 'refused',
      diagnosis: { code: 'KMS_KEY_NOT_ALLOWLISTED' },
    });
    const state = await driver.runtime.state.get(refused.connectionId);
    expect(state?.lastError?.code).toBe('KMS_KEY_NOT_ALLOWLISTED');
    expect(state?.lastError?.message).toContain(
      `kmsKeyArn ${OTHER_KEY_ARN} is not on this deployment's KMS key allowlist`,
    );
    expect(state?.watermark).toEqual(T0);

    // "test connection" refuses it the same way, before writing.
    const probe = await testConnection(refused, {
      sink: recordingSink(localProvider(clock), recorder),
      pgp: { loadEncryptionKey, encryptStream },
      kmsKeyAllowlist: [KEY_ARN],
      clock,
    });
    expect(probe.checks.map((c) => [c.name, c.ok, c.code])).toEqual([
      ['connection', true, undefined],
      ['kmsKeyAllowlist', false, 'KMS_KEY_NOT_ALLOWLISTED'],
      ['write', false, undefined],
    ]);

    expect(recorder.requests.filter((r) => objectOf(r).bucket === 'customer-refused')).toEqual([]);
    expect(await readBucket(s3, 'customer-refused')).toEqual([]);
    expect(recorder.requests.some((r) => objectOf(r).bucket === 'customer-fine')).toBe(true);
    const fineFiles = await readBucket(s3, 'customer-fine');
    expect(gzipRecords(fineFiles.find((f) => isDataKey(f.key))!.body)).toHaveLength(20);
  });
});

describe('tenant isolation: one tagged exporter session per connection', () => {
  const sts = mockClient(STSClient);
  const require = createRequire(import.meta.url);
  const s3rverAccounts = require('s3rver/lib/models/account.js') as {
    DUMMY_ACCOUNT: {
      createKeyPair(id: string, secret: string): void;
      revokeAccessKey(id: string): void;
    };
  };
  const issued: { accessKeyId: string; sessionToken: string; connectionId: string }[] = [];

  afterEach(() => {
    for (const { accessKeyId } of issued) s3rverAccounts.DUMMY_ACCOUNT.revokeAccessKey(accessKeyId);
  });
  afterAll(() => sts.restore());

  it("each connection's writes are signed with its own session, assumed with the connection id as session tag", async () => {
    const e = engines();
    await e.createBucket('tenant-a');
    await e.createBucket('tenant-b');
    sts.reset();
    sts.on(AssumeRoleCommand).callsFake((input: AssumeRoleCommandInput) => {
      const connectionId = input.Tags?.find((t) => t.Key === CONNECTION_SESSION_TAG)?.Value ?? 'untagged';
      const n = issued.length + 1;
      const accessKeyId = `ASIA${createHash('sha256').update(`${connectionId}${n}`).digest('hex').slice(0, 16).toUpperCase()}`;
      const sessionToken = `session-token-${connectionId}-${n}`;
      issued.push({ accessKeyId, sessionToken, connectionId });
      s3rverAccounts.DUMMY_ACCOUNT.createKeyPair(accessKeyId, `secret-${n}`);
      return {
        Credentials: {
          AccessKeyId: accessKeyId,
          SecretAccessKey: `secret-${n}`,
          SessionToken: sessionToken,
          Expiration: new Date(T0.getTime() + 3_600_000),
        },
      };
    });

    const clock = new ManualClock(T0);
    const recorder = new RequestRecorder();
    const provider = createS3ClientProvider({
      region: e.region,
      endpoint: e.s3Endpoint,
      baseCredentials: e.credentials,
      exporterRoleArn: EXPORTER_ROLE,
      clock,
    });
    const { driver, s3 } = await createHarness(e, { clock, sink: () => recordingSink(provider, recorder) });
    const a = connectionRow({
      connectionId: 'conn_tenant00000a',
      appId: 'app-tenant',
      bucketName: 'tenant-a',
    });
    const b = connectionRow({
      connectionId: 'conn_tenant00000b',
      appId: 'app-tenant',
      bucketName: 'tenant-b',
    });
    await driver.runtime.connections.put(a);
    await driver.runtime.connections.put(b);

    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage(Array.from({ length: 30 }, () => event('app-tenant', clock.now())));
    clock.set(new Date('2026-11-02T10:20:00Z'));
    const run = await driver.tick('FIFTEEN_MINUTES', clock.now());
    // (Connections of the other tests share the table and the tick; only these two matter here.)
    const ours = run.exports.filter((x) => [a.connectionId, b.connectionId].includes(x.job.connectionId));
    expect(ours.map((x) => x.outcome?.status)).toEqual(['committed', 'committed']);

    // One AssumeRole per connection (the session is cached), on the exporter role, tagged with its id.
    const calls = sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(2);
    for (const connection of [a, b]) {
      expect(calls.filter((input) => input.RoleSessionName === `export-${connection.connectionId}`)).toEqual([
        expect.objectContaining({
          RoleArn: EXPORTER_ROLE,
          Tags: [{ Key: CONNECTION_SESSION_TAG, Value: connection.connectionId }],
        }),
      ]);
    }

    // Every request to a tenant's bucket is signed with that tenant's session and carries its token.
    for (const connection of [a, b]) {
      const session = issued.find((s) => s.connectionId === connection.connectionId)!;
      const requests = recorder.requests.filter((r) => objectOf(r).bucket === connection.bucketName);
      expect(requests.map(operationOf)).toEqual(['PutObject', 'PutObject']); // data file, manifest
      for (const request of requests) {
        expect(accessKeyIdOf(request)).toBe(session.accessKeyId);
        expect(request.headers['x-amz-security-token']).toBe(session.sessionToken);
      }
      const files = await readBucket(s3, connection.bucketName);
      expect(gzipRecords(files.find((f) => isDataKey(f.key))!.body)).toHaveLength(30);
    }
    expect(recorder.requests.some((r) => accessKeyIdOf(r) === e.credentials.accessKeyId)).toBe(false);
    expect(new Set(issued.map((s) => s.accessKeyId)).size).toBe(2);
  });
});
