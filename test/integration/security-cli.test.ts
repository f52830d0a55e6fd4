/**
 * `s3-event-export connections test ID` against the local engines, configured the way an
 * operator configures the CLI (environment variables), with the real adapters: the
 * Connections and ExportState tables in DynamoDB Local, the probe written by S3ExportSink
 * through the S3 client provider into s3rver, PGP with a key made by GnuPG.
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { createDynamoDocumentClient, createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { probeObjectKey } from '../../lambdas/domain/object-keys.ts';
import { listKeys, readObject } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { createGpgHome, type GpgHome, type GpgKey } from '../support/gpg.ts';

const engines = useLocalEngines();
// gpg makes keys with the real clock: test "now" a little after it.
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);

let home: GpgHome;
let key: GpgKey;

beforeAll(async () => {
  // The CLI reads its settings from the environment, and the SDK its endpoints and credentials.
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
  home = await createGpgHome();
  key = await home.createKey('curve25519');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await home?.dispose();
});

let client: ReturnType<typeof createS3Client> | undefined;
function s3() {
  const e = engines();
  client ??= createS3Client({ region: e.region, endpoint: e.s3Endpoint, credentials: e.credentials });
  return client;
}

function repositories() {
  const e = engines();
  const documentClient = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  return {
    connections: new DynamoConnectionRepository(documentClient, e.tables.connections, e.tables.exportState),
    state: new DynamoExportStateStore(documentClient, e.tables.exportState),
  };
}

function connection(patch: Record<string, unknown>) {
  return parseConnection({
    appId: 'app-cli',
    appName: 'App Name',
    dbName: 'MoEngage App Name',
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'DAILY',
    createdAt: '2026-01-01T00:00:00Z',
    ...patch,
  } as Parameters<typeof parseConnection>[0]);
}

async function cli(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env: { ...engines().env },
    clock: { now: () => NOW },
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

describe('cli: connections test on the local engines', () => {
  it('a reachable bucket passes: the PGP-encrypted probe lands under the prefix and gpg --decrypt | gunzip reads it', async () => {
    const e = engines();
    await e.createBucket('customer-cli-ok');
    const { connections, state } = repositories();
    const ok = connection({
      connectionId: 'conn_cli0000000ok',
      connectionName: 'daily',
      folderPath: 'exports',
      bucketName: 'customer-cli-ok',
      pgpPublicKey: key.armoredPublicKey,
    });
    await connections.put(ok);

    const run = await cli(['connections', 'test', ok.connectionId]);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^PASS {2}connection +the connection row is valid$/m);
    expect(run.stdout).toMatch(
      new RegExp(`^PASS {2}pgpPublicKey +files are encrypted to ${key.fingerprint}`, 'm'),
    );
    expect(run.stdout).toMatch(
      /^PASS {2}write +wrote s3:\/\/customer-cli-ok\/exports_daily\/_connection_test\//m,
    );
    expect(run.stdout).toContain('conn_cli0000000ok: all 3 checks passed');

    const probeKey = probeObjectKey(ok, NOW);
    expect(probeKey).toMatch(/^exports_daily\/_connection_test\/probe_\d+\.probe$/);
    expect(await listKeys(s3(), 'customer-cli-ok')).toEqual([probeKey]);
    const plaintext = gunzipSync(await home.decrypt(await readObject(s3(), 'customer-cli-ok', probeKey)));
    expect(JSON.parse(plaintext.toString('utf8'))).toMatchObject({
      probe: 'connection-test',
      connectionId: 'conn_cli0000000ok',
      at: NOW.toISOString(),
    });
    expect((await state.get(ok.connectionId))?.lastError).toBeUndefined();
  });

  it('a missing bucket fails the probe write with its fix, exit 1, and the diagnosis is stored on the state', async () => {
    const { connections, state } = repositories();
    const broken = connection({
      connectionId: 'conn_cli00000bad',
      connectionName: 'daily',
      bucketName: 'customer-cli-nonexistent',
    });
    await connections.put(broken);
    await state.initialize(broken.connectionId, new Date('2026-01-01T00:00:00Z'));

    const run = await cli(['connections', 'test', broken.connectionId]);

    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /^FAIL {2}write +could not write s3:\/\/customer-cli-nonexistent\/daily\/_connection_test\//m,
    );
    expect(run.stdout).toMatch(/^ {6}fix: /m);
    expect(run.stdout).toContain('diagnosis BUCKET_NOT_FOUND recorded');
    const stored = await state.get(broken.connectionId);
    expect(stored?.lastError).toMatchObject({ code: 'BUCKET_NOT_FOUND', at: NOW.toISOString() });
    expect(stored?.lastError?.message).toMatch(
      /^test connection: could not write s3:\/\/customer-cli-nonexistent\//,
    );
    // The watermark is the exporter's business: a test never moves it.
    expect(stored?.watermark).toEqual(new Date('2026-01-01T00:00:00Z'));
  });

  it('--json prints the report with the recorded diagnosis', async () => {
    const run = await cli(['connections', 'test', 'conn_cli00000bad', '--json']);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      checks: { name: string; ok: boolean; code?: string }[];
      recordedDiagnosis: { code: string };
    };
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.name, c.ok, c.code])).toEqual([
      ['connection', true, undefined],
      ['write', false, 'BUCKET_NOT_FOUND'],
    ]);
    expect(report.recordedDiagnosis.code).toBe('BUCKET_NOT_FOUND');
  });

  it('once the operator fixes the cause, a passing test clears the recorded error: status shows none', async () => {
    const { state } = repositories();
    expect((await state.get('conn_cli00000bad'))?.lastError?.code).toBe('BUCKET_NOT_FOUND');
    await engines().createBucket('customer-cli-nonexistent');

    const run = await cli(['connections', 'test', 'conn_cli00000bad']);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain('conn_cli00000bad: all 2 checks passed');
    const stored = await state.get('conn_cli00000bad');
    expect(stored?.lastError).toBeUndefined();
    expect(stored?.watermark).toEqual(new Date('2026-01-01T00:00:00Z'));
    const status = await cli(['status', '--json']);
    const entry = (JSON.parse(status.stdout) as { connectionId: string; lastError?: unknown }[]).find(
      (e) => e.connectionId === 'conn_cli00000bad',
    );
    expect(entry).toBeDefined();
    expect(entry?.lastError).toBeUndefined();
  });

  it('a passing test keeps an error recorded after it started, and creates no state row', async () => {
    const { state } = repositories();
    await state.initialize('conn_cli000later', new Date('2026-01-01T00:00:00Z'));
    const later = {
      code: 'ACCESS_DENIED' as const,
      message: 'export failed meanwhile',
      at: new Date(NOW.getTime() + 1000).toISOString(),
    };
    await state.recordError('conn_cli000later', later);
    await state.recordPassedTest('conn_cli000later', NOW);
    expect((await state.get('conn_cli000later'))?.lastError).toEqual(later);

    await state.recordPassedTest('conn_cli00absent', NOW);
    const rows = await state.listStates();
    expect(rows.map((r) => r.connectionId)).not.toContain('conn_cli00absent');
  });
});
