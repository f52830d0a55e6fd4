/**
 * "Test connection" through the real S3ExportSink and KMS inspector, with the SDK clients
 * mocked (aws-sdk-client-mock) or answering with canned S3 responses, and the SDK's own
 * exception classes.
 */
import { gunzipSync } from 'node:zlib';
import { DescribeKeyCommand, DisabledException, KMSClient, KMSServiceException } from '@aws-sdk/client-kms';
import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import * as openpgp from 'openpgp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKmsKeyInspector } from '../../lambdas/adapters/kms-key-inspector.ts';
import { encryptStream, loadEncryptionKey } from '../../lambdas/adapters/pgp.ts';
import { S3ExportSink } from '../../lambdas/adapters/s3-export-sink.ts';
import { diagnosisOf, parseConnectionTestEvent } from '../../lambdas/connection-test/handler.ts';
import type { ConnectionInput } from '../../lambdas/domain/connection.ts';
import { probeObjectKey } from '../../lambdas/domain/object-keys.ts';
import { bucketPolicyStatement, kmsKeyPolicyStatement } from '../../lambdas/domain/policies.ts';
import type { ConnectionDiagnosis } from '../../lambdas/ports/index.ts';
import {
  type TestConnectionDeps,
  testConnection,
  testStoredConnection,
} from '../../lambdas/usecases/test-connection.ts';
import { s3ClientAnswering, s3ErrorXml } from '../support/s3-error-responses.ts';

const ROLE = 'arn:aws:iam::111122223333:role/s3-event-export-exporter';
const KEY_ARN = 'arn:aws:kms:ap-south-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const NOW = new Date('2026-03-01T10:05:00Z');
const clock = { now: () => new Date(NOW) };

const row: ConnectionInput = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  appId: 'app-1',
  appName: 'App Name',
  dbName: 'MoEngage App Name',
  connectionName: 'daily-events',
  folderPath: 'exports',
  bucketName: 'customer-data-lake',
  bucketRegion: 'ap-south-1',
  bucketOwnerAccountId: '444455556666',
  events: { mode: 'ALL' },
  frequency: 'DAILY',
  kmsKeyArn: KEY_ARN,
  createdAt: '2026-02-01T00:00:00Z',
};

const s3 = mockClient(S3Client);
const kms = mockClient(KMSClient);

function deps(
  overrides: Partial<TestConnectionDeps<unknown>> = {},
  client?: S3Client,
): TestConnectionDeps<unknown> {
  const s3Client = client ?? new S3Client({ region: 'ap-south-1' });
  return {
    sink: new S3ExportSink(() => s3Client),
    pgp: { loadEncryptionKey, encryptStream } as TestConnectionDeps<unknown>['pgp'],
    kmsKeyAllowlist: [KEY_ARN],
    kmsKeys: createKmsKeyInspector({ createKmsClient: ({ region }) => new KMSClient({ region }) }),
    clock,
    exporterRoleArn: ROLE,
    ...overrides,
  };
}

function putBody(): Buffer {
  const body = s3.commandCalls(PutObjectCommand)[0]!.args[0].input.Body;
  return Buffer.from(body as Uint8Array);
}

beforeEach(() => {
  s3.reset();
  kms.reset();
  s3.on(PutObjectCommand).resolves({ ETag: '"etag"' });
  kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', KeyState: 'Enabled', Enabled: true } });
});
afterEach(() => {
  s3.reset();
  kms.reset();
});

describe('test connection', () => {
  it('writes a gzipped one-line probe with the exact write settings and reports every check', async () => {
    const report = await testConnection(row, deps());

    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['connection', true],
      ['kmsKeyAllowlist', true],
      ['kmsKey', true],
      ['write', true],
    ]);
    const input = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      Bucket: 'customer-data-lake',
      Key: probeObjectKey({ connectionName: 'daily-events', folderPath: 'exports' }, NOW),
      ACL: 'bucket-owner-full-control',
      ExpectedBucketOwner: '444455556666',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: KEY_ARN,
      BucketKeyEnabled: true,
      ContentType: 'application/gzip',
    });
    expect(report.probeKey).toBe('exports_daily-events/_connection_test/probe_1772359500.probe');
    const lines = gunzipSync(putBody()).toString('utf8').split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ probe: 'connection-test', connectionId: row.connectionId });
  });

  it('with a PGP key the probe is encrypted to it (.gpg) and decrypts to the gzipped line', async () => {
    const { privateKey, publicKey } = await openpgp.generateKey({
      userIDs: [{ name: 'Customer', email: 'c@example.test' }],
      date: new Date('2026-01-01T00:00:00Z'),
      format: 'armored',
    });
    const report = await testConnection({ ...row, pgpPublicKey: publicKey }, deps());

    expect(report.ok).toBe(true);
    expect(report.checks.find((c) => c.name === 'pgpPublicKey')?.message).toMatch(
      /encrypted to [0-9A-F]{40} \(cv25519\)/,
    );
    expect(report.probeKey).toMatch(/_connection_test\/probe_\d+\.probe$/);
    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input.ContentType).toBe('application/pgp-encrypted');
    const decrypted = await openpgp.decrypt({
      message: await openpgp.readMessage({ binaryMessage: putBody() }),
      decryptionKeys: await openpgp.readPrivateKey({ armoredKey: privateKey }),
      format: 'binary',
    });
    expect(gunzipSync(decrypted.data as Uint8Array).toString('utf8')).toMatch(/"probe":"connection-test"/);
  });

  it('an expired PGP key fails its check with the date, and nothing is written', async () => {
    const { publicKey } = await openpgp.generateKey({
      userIDs: [{ name: 'Customer' }],
      date: new Date('2024-01-01T00:00:00Z'),
      keyExpirationTime: 86_400,
      format: 'armored',
    });
    const report = await testConnection({ ...row, pgpPublicKey: publicKey }, deps());
    const check = report.checks.find((c) => c.name === 'pgpPublicKey');
    expect(check).toMatchObject({ ok: false, code: 'INVALID_PGP_KEY' });
    expect(check?.message).toMatch(/^pgpPublicKey: the key of [0-9A-F]+ expired on 2024-01-02T00:00:00Z/);
    expect(report.checks.at(-1)).toMatchObject({ name: 'write', ok: false, skipped: true });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });

  it('a pasted private key is refused by the row validation and never echoed', async () => {
    const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'C' }], format: 'armored' });
    const report = await testConnection({ ...row, pgpPublicKey: privateKey }, deps());
    expect(report.ok).toBe(false);
    expect(report.checks[0]).toMatchObject({ name: 'connection', ok: false, code: 'INVALID_CONNECTION' });
    expect(report.checks[0]!.message).toMatch(/this is a private key; paste the public key/);
    expect(JSON.stringify(report)).not.toContain(privateKey.split('\n')[3]);
  });

  it('a KMS key not on the allowlist is refused before any write', async () => {
    const report = await testConnection(row, deps({ kmsKeyAllowlist: [] }));
    expect(report.checks.find((c) => c.name === 'kmsKeyAllowlist')).toMatchObject({
      ok: false,
      code: 'KMS_KEY_NOT_ALLOWLISTED',
      message: expect.stringContaining(
        'ask the operator to add it to the kmsKeyAllowlist context and redeploy',
      ),
    });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(kms.commandCalls(DescribeKeyCommand)).toHaveLength(0);
  });

  it('a disabled KMS key (DescribeKey DisabledException) fails with the enable command', async () => {
    kms
      .on(DescribeKeyCommand)
      .rejects(new DisabledException({ $metadata: { httpStatusCode: 400 }, message: 'disabled' }));
    const report = await testConnection(row, deps());
    expect(report.checks.find((c) => c.name === 'kmsKey')).toMatchObject({
      ok: false,
      code: 'KMS_KEY_DISABLED',
      fix: expect.stringContaining(`aws kms enable-key --key-id ${KEY_ARN}`),
    });
  });

  it('a key described as PendingDeletion fails too', async () => {
    kms
      .on(DescribeKeyCommand)
      .resolves({ KeyMetadata: { KeyId: 'k', KeyState: 'PendingDeletion', Enabled: false } });
    const report = await testConnection(row, deps());
    expect(report.checks.find((c) => c.name === 'kmsKey')?.message).toMatch(/state PendingDeletion/);
  });

  it('AccessDenied on DescribeKey is only a warning; the probe write still runs', async () => {
    kms.on(DescribeKeyCommand).rejects(
      new KMSServiceException({
        name: 'AccessDeniedException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        message: 'denied',
      }),
    );
    const report = await testConnection(row, deps());
    expect(report.ok).toBe(true);
    expect(report.checks.find((c) => c.name === 'kmsKey')).toMatchObject({ ok: true, warning: true });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
  });

  it('AccessDenied on the write (owner set) reports the owner mismatch and the bucket statement to add', async () => {
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'Access Denied',
      }),
    );
    const report = await testConnection(row, deps());
    const write = report.checks.find((c) => c.name === 'write');
    expect(write).toMatchObject({ ok: false, code: 'BUCKET_OWNER_MISMATCH' });
    expect(write?.fix).toContain(
      JSON.stringify(bucketPolicyStatement({ ...row, folderPath: 'exports' } as never, ROLE)),
    );
  });

  it('AccessDenied on the write without an owner: the bucket policy is missing', async () => {
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'Access Denied',
      }),
    );
    const { bucketOwnerAccountId: _owner, ...noOwner } = row;
    const report = await testConnection(noOwner, deps());
    expect(report.checks.find((c) => c.name === 'write')?.code).toBe('BUCKET_POLICY_MISSING');
  });

  it('KMS denied inside S3 prints the key-policy statement', async () => {
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message:
          'User: arn:aws:sts::111122223333:assumed-role/e/x is not authorized to perform: kms:GenerateDataKey on resource: ' +
          KEY_ARN,
      }),
    );
    const report = await testConnection(row, deps());
    const write = report.checks.find((c) => c.name === 'write');
    expect(write?.code).toBe('KMS_ACCESS_DENIED');
    expect(write?.fix).toContain(JSON.stringify(kmsKeyPolicyStatement(row as never, ROLE)));
  });

  it('a bucket in another region: the real SDK error of a 301 names the region', async () => {
    s3.restore();
    try {
      const answering = s3ClientAnswering({
        statusCode: 301,
        headers: { 'x-amz-bucket-region': 'eu-central-1' },
        body: s3ErrorXml(
          'PermanentRedirect',
          'The bucket you are attempting to access must be addressed using the specified endpoint.',
        ),
      });
      const report = await testConnection(row, deps({ kmsKeys: undefined }, answering));
      expect(report.checks.find((c) => c.name === 'write')).toMatchObject({
        ok: false,
        code: 'WRONG_REGION',
        message: expect.stringContaining('bucket customer-data-lake is in eu-central-1, not in ap-south-1'),
        fix: 'set bucketRegion to eu-central-1 and use a KMS key in eu-central-1',
      });
    } finally {
      s3.reset();
    }
  });
});

describe('test of a stored connection (connection-test handler)', () => {
  let recorded: { connectionId: string; diagnosis: ConnectionDiagnosis }[];
  let passed: { connectionId: string; testedAt: Date }[];
  const state = {
    recordError: async (connectionId: string, diagnosis: ConnectionDiagnosis) => {
      recorded.push({ connectionId, diagnosis });
    },
    recordPassedTest: async (connectionId: string, testedAt: Date) => {
      passed.push({ connectionId, testedAt });
    },
  };
  beforeEach(() => {
    recorded = [];
    passed = [];
  });

  it('loads the row, runs the test and records a failing report on the state', async () => {
    const connections = { getRaw: async (id: string) => (id === row.connectionId ? { ...row } : undefined) };
    const report = await testStoredConnection(row.connectionId, {
      connections,
      state,
      test: deps({ kmsKeyAllowlist: [] }),
    });
    expect(report.ok).toBe(false);
    expect(recorded).toEqual([
      {
        connectionId: row.connectionId,
        diagnosis: {
          code: 'KMS_KEY_NOT_ALLOWLISTED',
          message: expect.stringMatching(
            /^test connection: kmsKeyArn .* is not on this deployment's KMS key allowlist/,
          ),
          at: NOW.toISOString(),
        },
      },
    ]);
    expect(diagnosisOf(report)?.code).toBe('KMS_KEY_NOT_ALLOWLISTED');
  });

  it('a passing report records no error and clears the errors recorded before it', async () => {
    const connections = { getRaw: async () => ({ ...row }) };
    const report = await testStoredConnection(row.connectionId, { connections, state, test: deps() });
    expect(report.ok).toBe(true);
    expect(recorded).toEqual([]);
    expect(passed).toEqual([{ connectionId: row.connectionId, testedAt: NOW }]);
  });

  it('an unknown connection id is a failed report, not an exception', async () => {
    const connections = { getRaw: async () => undefined };
    const report = await testStoredConnection('conn_01JD7Z6T5Q9Y3M2K8V4W1XNONE', {
      connections,
      state,
      test: deps(),
    });
    expect(report).toMatchObject({ ok: false, checks: [{ name: 'connection', ok: false }] });
    expect(recorded).toEqual([]);
  });

  it('an event without a connection id is refused', async () => {
    for (const event of [{}, { connectionId: '' }, { connectionId: 7 }, null])
      expect(() => parseConnectionTestEvent(event)).toThrow(/connectionId/);
    expect(parseConnectionTestEvent({ connectionId: 'conn_x' })).toEqual({ connectionId: 'conn_x' });
  });
});
