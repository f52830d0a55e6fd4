/**
 * The operator's onboarding runbook (docs/operations.md, "Onboarding a connection"), step by step
 * on the local engines with the real adapters: a new row is printed PAUSED, its policies are
 * printed and it is tested from the FILE before anything is stored (no row, no state), the test
 * passes once the bucket exists, `put --activate` stores it ACTIVE, and its first window lands in
 * the customer's bucket.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { createDynamoDocumentClient, createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { ManualClock } from '../../local/clock.ts';
import { gzipRecords, isDataKey, listKeys, readObject } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const BUCKET = 'customer-onboarding';
const ROLE = 'arn:aws:iam::111122223333:role/s3-event-export-exporter';
const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
const dir = mkdtempSync(join(tmpdir(), 'onboarding-'));

beforeAll(() => {
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
});
afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env: { ...engines().env },
    clock,
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

function adapters() {
  const e = engines();
  const dynamo = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  return {
    connections: new DynamoConnectionRepository(dynamo, e.tables.connections, e.tables.exportState),
    state: new DynamoExportStateStore(dynamo, e.tables.exportState),
    s3: createS3Client({ region: e.region, endpoint: e.s3Endpoint, credentials: e.credentials }),
  };
}

describe('onboarding a connection in one flow', () => {
  it('new (PAUSED) → policy FILE → test FILE (fails, then passes) → put --activate → first window exported', async () => {
    const { connections, state, s3 } = adapters();
    const created = await cli([
      'connections',
      'new',
      '--app-id',
      'app-onboard',
      '--name',
      'events',
      '--bucket',
      BUCKET,
      '--bucket-region',
      'us-east-1',
    ]);
    expect(created.code).toBe(0);
    const row = JSON.parse(created.stdout) as { connectionId: string; status: string };
    expect(row.status).toBe('PAUSED');
    const file = join(dir, 'row.json');
    writeFileSync(file, created.stdout);

    const policy = await cli(['connections', 'policy', file, '--exporter-role-arn', ROLE, '--json']);
    expect(policy.code).toBe(0);
    const documents = JSON.parse(policy.stdout) as {
      connectionId: string;
      bucketPolicy: { Statement: { Resource: unknown }[] };
    };
    expect(documents.connectionId).toBe(row.connectionId);
    expect(JSON.stringify(documents.bucketPolicy.Statement)).toContain(`arn:aws:s3:::${BUCKET}/events/*`);

    // The customer has not created the bucket yet: the test fails with its fix, and records nothing.
    const failing = await cli(['connections', 'test', file]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/^FAIL {2}write +could not write s3:\/\/customer-onboarding\//m);
    expect(failing.stdout).not.toContain('recorded');
    expect(await connections.getRaw(row.connectionId)).toBeUndefined();
    expect(await state.get(row.connectionId)).toBeUndefined();

    await engines().createBucket(BUCKET);
    const passing = await cli(['connections', 'test', file]);
    expect(passing.stderr).toBe('');
    expect(passing.code).toBe(0);
    expect(passing.stdout).toContain(`${row.connectionId}: all 2 checks passed`);

    const put = await cli(['connections', 'put', file, '--activate']);
    expect(put.code).toBe(0);
    expect(await connections.getRaw(row.connectionId)).toMatchObject({ status: 'ACTIVE' });

    clock.set(new Date('2026-11-02T10:05:00Z'));
    const events = join(dir, 'events.ndjson');
    writeFileSync(
      events,
      ['a', 'b', 'c']
        .map((id, i) =>
          JSON.stringify({
            app_id: 'app-onboard',
            event: { event_uuid: id, event_name: 'VIEW', event_time: 1_790_000_000 + i },
          }),
        )
        .join('\n'),
    );
    expect((await cli(['stage', events])).code).toBe(0);
    clock.set(new Date('2026-11-02T10:20:00Z'));
    const exported = await cli(['export', '--connection', row.connectionId]);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    const dataKeys = (await listKeys(s3, BUCKET, 'events/')).filter(isDataKey);
    expect(dataKeys).toHaveLength(1);
    expect(gzipRecords(await readObject(s3, BUCKET, dataKeys[0]!))).toHaveLength(3);
  });
});
