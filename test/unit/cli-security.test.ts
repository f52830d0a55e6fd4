/**
 * The security commands of the CLI: `connections policy` prints the exact documents of
 * lambdas/domain/policies.ts for a stored connection; `connections test` refuses before any
 * write what the allowlist refuses and records the diagnosis. Also: the runtime configuration
 * refuses a KMS allowlist that is not made of key ARNs.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { ConfigurationError, configFromEnv } from '../../lambdas/config.ts';
import { CONNECTION_SESSION_TAG, ENV } from '../../lambdas/definitions.ts';
import type { PolicyDocument, PolicyStatement } from '../../lambdas/domain/policies.ts';
import type { ConnectionDiagnosis, ExportStateStore } from '../../lambdas/ports/index.ts';
import { InMemoryConnectionRepository } from '../support/in-memory-connection-repository.ts';

const ROLE = 'arn:aws:iam::111122223333:role/s3-event-export-exporter';
const KEY_ARN = 'arn:aws:kms:ap-south-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const NOW = new Date('2026-11-29T08:15:00.000Z');
const ID = 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC';

const row = (patch: Record<string, unknown> = {}) => ({
  connectionId: ID,
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop DB',
  connectionName: 'daily-events',
  folderPath: 'exports',
  bucketName: 'customer-data-lake',
  bucketRegion: 'ap-south-1',
  events: { mode: 'ALL' },
  frequency: 'DAILY',
  createdAt: '2026-11-01T00:00:00.000Z',
  ...patch,
});

/** Only what `connections test` touches; any other call is a test failure. */
class RecordingStateStore {
  readonly errors: { connectionId: string; diagnosis: ConnectionDiagnosis }[] = [];
  readonly passed: { connectionId: string; testedAt: Date }[] = [];
  async recordError(connectionId: string, diagnosis: ConnectionDiagnosis): Promise<void> {
    this.errors.push({ connectionId, diagnosis });
  }
  async recordPassedTest(connectionId: string, testedAt: Date): Promise<void> {
    this.passed.push({ connectionId, testedAt });
  }
}

async function cli(
  argv: string[],
  rows: Record<string, unknown>[] = [row()],
  env: NodeJS.ProcessEnv = {},
  state = new RecordingStateStore(),
) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env: { AWS_REGION: 'us-east-1', ...env },
    clock: { now: () => NOW },
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    overrides: {
      connectionRepository: async () => new InMemoryConnectionRepository(rows),
      exportStateStore: async () => state as unknown as ExportStateStore,
    },
  });
  return { code, stdout, stderr, state };
}

interface PolicyOutput {
  connectionId: string;
  exporterRoleArn: string;
  mode: string;
  bucketPolicy?: PolicyDocument;
  roleTrustPolicy?: PolicyDocument;
  rolePermissionsPolicy?: PolicyDocument;
  kmsKeyPolicyStatement?: PolicyStatement;
}

describe('cli: connections policy', () => {
  it('prints a bucket policy for the exporter role, pinned to the connection id by the session tag and scoped to its prefix', async () => {
    const run = await cli(['connections', 'policy', ID, '--exporter-role-arn', ROLE, '--json']);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as PolicyOutput;
    expect(out).toMatchObject({ connectionId: ID, exporterRoleArn: ROLE, mode: 'bucket-policy' });
    expect(out.kmsKeyPolicyStatement).toBeUndefined();
    expect(out.bucketPolicy?.Statement).toEqual([
      {
        Sid: 'EventExportconn01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
        Effect: 'Allow',
        Principal: { AWS: ROLE },
        Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
        Resource: 'arn:aws:s3:::customer-data-lake/exports_daily-events/*',
        Condition: { StringEquals: { [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: ID } },
      },
    ]);
  });

  it('adds the KMS key policy statement (via S3 in the bucket region only) when the connection has kmsKeyArn', async () => {
    const run = await cli(['connections', 'policy', ID, '--json'], [row({ kmsKeyArn: KEY_ARN })], {
      [ENV.exporterRoleArn]: ROLE,
    });
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as PolicyOutput;
    expect(out.kmsKeyPolicyStatement).toMatchObject({
      Principal: { AWS: ROLE },
      Action: ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey'],
      Resource: '*',
      Condition: { StringEquals: { 'kms:ViaService': 's3.ap-south-1.amazonaws.com' } },
    });
    expect(out.bucketPolicy?.Statement[0]?.Condition?.StringEquals).toEqual({
      [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: ID,
    });
  });

  it('the human output holds the same documents as pasteable JSON with headings', async () => {
    const run = await cli(
      ['connections', 'policy', ID, '--exporter-role-arn', ROLE],
      [row({ kmsKeyArn: KEY_ARN })],
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Bucket policy of s3://customer-data-lake');
    expect(run.stdout).toContain(`KMS key policy statement for ${KEY_ARN}`);
    expect(run.stdout).toContain(`"aws:PrincipalTag/${CONNECTION_SESSION_TAG}": "${ID}"`);
    // Each document is printed as a JSON block that parses on its own.
    const blocks = run.stdout.split('\n\n').slice(1);
    const documents = blocks.map((b) => JSON.parse(b.slice(b.indexOf('\n') + 1)));
    expect(documents[0]).toMatchObject({ Version: '2012-10-17' });
    expect(documents[1]).toMatchObject({ Sid: 'EventExportViaS3conn01JD7Z6T5Q9Y3M2K8V4W1X0ABC' });
  });

  it('in assume-role mode prints the trust policy with the tag condition and a placeholder for the external id', async () => {
    const secret = 'ext-id-s3cr3t-value';
    const assumeRow = row({
      assumeRoleArn: 'arn:aws:iam::444455556666:role/event-export-writer',
      externalId: secret,
    });
    const run = await cli(['connections', 'policy', ID, '--exporter-role-arn', ROLE, '--json'], [assumeRow]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain(secret);
    const out = JSON.parse(run.stdout) as PolicyOutput;
    expect(out.mode).toBe('assume-role');
    expect(out.bucketPolicy).toBeUndefined();
    expect(out.roleTrustPolicy?.Statement[0]).toMatchObject({
      Principal: { AWS: ROLE },
      Action: 'sts:AssumeRole',
      Condition: {
        StringEquals: {
          'sts:ExternalId': '<the externalId of this connection>',
          [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: ID,
        },
      },
    });
    expect(out.rolePermissionsPolicy?.Statement[0]?.Resource).toBe(
      'arn:aws:s3:::customer-data-lake/exports_daily-events/*',
    );

    const shown = await cli(
      ['connections', 'policy', ID, '--exporter-role-arn', ROLE, '--json', '--show-external-id'],
      [assumeRow],
    );
    expect(
      (JSON.parse(shown.stdout) as PolicyOutput).roleTrustPolicy?.Statement[0]?.Condition?.StringEquals?.[
        'sts:ExternalId'
      ],
    ).toBe(secret);
  });

  it('without an exporter role ARN it fails with the flag, the variable and where to find the ARN', async () => {
    const run = await cli(['connections', 'policy', ID]);
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toBe(
      "error: --exporter-role-arn is required (or set EXPORTER_ROLE_ARN): the policies name the stack's exporter role (stack output ExporterRoleArn)\n",
    );
  });

  it('refuses an exporter role ARN that is not an IAM role ARN (a typo would grant nobody)', async () => {
    const run = await cli(['connections', 'policy', ID, '--exporter-role-arn', 'arn:aws:iam::1111:user/bob']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('is not an IAM role ARN');
  });

  it('a missing connection or an invalid row prints no policy and exits 1', async () => {
    const missing = await cli(['connections', 'policy', 'conn_nope', '--exporter-role-arn', ROLE]);
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: 'error: connection conn_nope not found\n' });
    const invalid = await cli(
      ['connections', 'policy', ID, '--exporter-role-arn', ROLE],
      [row({ bucketName: 'Not_A_Bucket' })],
    );
    expect(invalid.code).toBe(1);
    expect(invalid.stdout).toBe('');
    expect(invalid.stderr).toContain('bucketName');
  });
});

describe('cli: connections test (checks that need no bucket)', () => {
  it('a KMS key off the allowlist fails before any write, with the diagnosis recorded and exit 1', async () => {
    const run = await cli(['connections', 'test', ID], [row({ kmsKeyArn: KEY_ARN })], {
      [ENV.kmsKeyAllowlist]: 'arn:aws:kms:ap-south-1:444455556666:key/00000000-0000-0000-0000-000000000000',
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^PASS {2}connection /m);
    expect(run.stdout).toMatch(/^FAIL {2}kmsKeyAllowlist .*not on this deployment's KMS key allowlist/m);
    expect(run.stdout).toMatch(/^SKIP {2}write .*not written/m);
    expect(run.stdout).toContain('diagnosis KMS_KEY_NOT_ALLOWLISTED recorded');
    expect(run.state.errors).toEqual([
      {
        connectionId: ID,
        diagnosis: expect.objectContaining({ code: 'KMS_KEY_NOT_ALLOWLISTED', at: NOW.toISOString() }),
      },
    ]);
  });

  it('a KMS allowlist holding an alias is a configuration error, not a refusal of the customer', async () => {
    const run = await cli(['connections', 'test', ID], [row({ kmsKeyArn: KEY_ARN })], {
      [ENV.kmsKeyAllowlist]: 'alias/customer-key',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'KMS_KEY_ALLOWLIST has entries that are not KMS key ARNs: "alias/customer-key"',
    );
    expect(run.state.errors).toEqual([]);
  });

  it('a PGP private key pasted as pgpPublicKey is refused and never echoed', async () => {
    const body = 'lQOYBGV4YW1wbGUtcHJpdmF0ZS1rZXktbWF0ZXJpYWwtc2VjcmV0';
    const privateKey = `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${body}\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\n`;
    const run = await cli(['connections', 'test', ID, '--json'], [row({ pgpPublicKey: privateKey })]);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).not.toContain(body);
    const report = JSON.parse(run.stdout) as { ok: boolean; recordedDiagnosis: ConnectionDiagnosis };
    expect(report.ok).toBe(false);
    expect(['INVALID_CONNECTION', 'INVALID_PGP_KEY']).toContain(report.recordedDiagnosis.code);
    expect(JSON.stringify(run.state.errors)).not.toContain(body);
  });

  it('an unknown connection is an error without a recorded diagnosis', async () => {
    const run = await cli(['connections', 'test', 'conn_nope']);
    expect(run).toMatchObject({ code: 1, stderr: 'error: connection conn_nope not found\n' });
    expect(run.state.errors).toEqual([]);
  });
});

describe('runtime configuration: KMS_KEY_ALLOWLIST', () => {
  const base = {
    [ENV.connectionsTable]: 'c',
    [ENV.exportStateTable]: 's',
    [ENV.stagingLedgerTable]: 'l',
    [ENV.stagingBucket]: 'b',
  };

  it('holds full key ARNs, trimmed and deduplicated; blank allows no key', () => {
    expect(
      configFromEnv({ ...base, [ENV.kmsKeyAllowlist]: ` ${KEY_ARN}, ${KEY_ARN},` }).kmsKeyAllowlist,
    ).toEqual([KEY_ARN]);
    expect(configFromEnv(base).kmsKeyAllowlist).toEqual([]);
  });

  it('refuses an alias with a ConfigurationError naming the entry and the valid form', () => {
    expect(() => configFromEnv({ ...base, [ENV.kmsKeyAllowlist]: `${KEY_ARN},alias/customer-key` })).toThrow(
      ConfigurationError,
    );
    expect(() => configFromEnv({ ...base, [ENV.kmsKeyAllowlist]: 'alias/customer-key' })).toThrow(
      /KMS_KEY_ALLOWLIST has entries that are not KMS key ARNs: "alias\/customer-key"; use full key ARNs/,
    );
  });
});
