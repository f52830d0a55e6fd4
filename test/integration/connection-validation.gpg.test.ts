/**
 * One validation for every write path and the exporter: `connections validate|put` refuse exactly
 * what the exporter's preflight refuses (PGP key usable as of now, KMS key on this deployment's
 * allowlist), with keys made by the real `gpg`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { ENV } from '../../lambdas/definitions.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { createDeploymentPreflight } from '../../lambdas/runtime.ts';
import { ConnectionProblemError } from '../../lambdas/usecases/export-window.ts';
import { createGpgHome, type GpgHome } from '../support/gpg.ts';
import { InMemoryConnectionRepository } from '../support/in-memory-connection-repository.ts';

// Keys are made by gpg with the real clock, so "now" is shortly after it.
const NOW = new Date(Date.now() + 60_000);
const ALLOWED = 'arn:aws:kms:ap-south-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER = 'arn:aws:kms:ap-south-1:444455556666:key/99999999-12ab-34cd-56ef-1234567890ab';

const row = (patch: Record<string, unknown>) => ({
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop DB',
  connectionName: 'daily-events',
  bucketName: 'customer-data-lake',
  bucketRegion: 'ap-south-1',
  events: { mode: 'ALL' },
  frequency: 'DAILY',
  // Within the staging retention of the real clock the CLI runs with.
  createdAt: new Date(Date.now() - 86_400_000).toISOString(),
  ...patch,
});

let home: GpgHome;
let dir: string;
const keys: Record<string, string> = {};

beforeAll(async () => {
  home = await createGpgHome();
  dir = await mkdtemp(join(tmpdir(), 'rows-'));
  for (const kind of ['curve25519', 'expired', 'revoked', 'rsa1024'] as const) {
    keys[kind] = (await home.createKey(kind)).armoredPublicKey;
  }
}, 120_000);

afterAll(async () => {
  await home?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cli(argv: string[], repository: InMemoryConnectionRepository) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env: { AWS_REGION: 'us-east-1', [ENV.kmsKeyAllowlist]: ALLOWED },
    clock: { now: () => NOW },
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    overrides: {
      connectionRepository: async () => repository,
      // No connection here has exported: start checks find no state.
      exportStateStore: async () => ({ get: async () => undefined }) as never,
    },
  });
  return { code, stdout, stderr };
}

/** The exporter's verdict on a (schema-valid) row: the field it refuses, or undefined. */
async function exporterRefuses(raw: Record<string, unknown>): Promise<string | undefined> {
  try {
    await createDeploymentPreflight([ALLOWED])(parseConnection(raw), NOW);
    return undefined;
  } catch (error) {
    if (!(error instanceof ConnectionProblemError)) throw error;
    return (
      { KMS_KEY_NOT_ALLOWLISTED: 'kmsKeyArn', INVALID_PGP_KEY: 'pgpPublicKey' }[error.code] ?? error.code
    );
  }
}

const CASES: { what: string; patch: () => Record<string, unknown>; refused?: string; says?: RegExp }[] = [
  { what: 'a usable key made just now', patch: () => ({ pgpPublicKey: keys.curve25519 }) },
  {
    what: 'an expired key',
    patch: () => ({ pgpPublicKey: keys.expired }),
    refused: 'pgpPublicKey',
    says: /expired on/,
  },
  {
    what: 'a revoked key',
    patch: () => ({ pgpPublicKey: keys.revoked }),
    refused: 'pgpPublicKey',
    says: /revoked/,
  },
  {
    what: 'an RSA-1024 key',
    patch: () => ({ pgpPublicKey: keys.rsa1024 }),
    refused: 'pgpPublicKey',
    says: /at least 2048 bits/,
  },
  { what: 'an allowlisted KMS key', patch: () => ({ kmsKeyArn: ALLOWED }) },
  {
    what: 'a KMS key not on the allowlist',
    patch: () => ({ kmsKeyArn: OTHER }),
    refused: 'kmsKeyArn',
    says: /not on this deployment's KMS key allowlist/,
  },
];

describe('connections validate|put refuse exactly what the exporter refuses', () => {
  it.each(CASES)('$what', async ({ patch, refused, says }) => {
    const raw = row(patch());
    expect(await exporterRefuses(raw)).toBe(refused);

    const file = join(dir, `row-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, JSON.stringify(raw));
    const repository = new InMemoryConnectionRepository();
    const validate = await cli(['connections', 'validate', file], repository);
    const put = await cli(['connections', 'put', file], repository);
    if (refused) {
      expect(validate.code).toBe(1);
      expect(validate.stderr).toContain(`connection ${raw.connectionId}: ${refused}: `);
      expect(validate.stderr).toMatch(says as RegExp);
      expect(put.code).toBe(1);
      expect(put.stderr).toContain('nothing written');
      expect(repository.rows.size).toBe(0);
    } else {
      expect(validate.code, validate.stderr).toBe(0);
      expect(put.code, put.stderr).toBe(0);
      expect(repository.rows.get(raw.connectionId)).toMatchObject({ connectionName: 'daily-events' });
    }
  });
});
