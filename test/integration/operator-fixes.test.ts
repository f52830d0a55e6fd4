/**
 * Operator fixes converge (docs/exactly-once.md §3): a window that failed because of the
 * connection row — every field that can be wrong — is exported under the fixed row once the
 * operator fixes it, into the bucket the row names at the end, each event once. The customer
 * side refuses wrong rows as AWS would (local/customer-buckets.ts; s3rver itself refuses an
 * unknown bucket), and the exporter's real preflight refuses a KMS key off the allowlist and an
 * expired PGP key.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type ConnectionInput, parseConnection } from '../../lambdas/domain/connection.ts';
import type { WindowManifest } from '../../lambdas/domain/manifest.ts';
import { backfill } from '../../lambdas/usecases/backfill.ts';
import { ManualClock } from '../../local/clock.ts';
import { withCustomerBuckets } from '../../local/customer-buckets.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { createGpgHome, type GpgHome, gpgAvailable } from '../support/gpg.ts';

const engines = useLocalEngines();

const BUCKET = 'customer-fixes';
const OWNER = '444455556666';
const ROLE = { arn: 'arn:aws:iam::444455556666:role/event-export-writer', externalId: 'ext-fixes-0001' };
const KEY_ARN = 'arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_KEY_ARN = 'arn:aws:kms:us-east-1:444455556666:key/99999999-9999-9999-9999-999999999999';
// Tomorrow (UTC): a PGP key made now by the test is valid at the simulated instants.
const DAY = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const at = (hhmm: string) => new Date(`${DAY}T${hhmm}:00Z`);

let counter = 0;
let gpg: GpgHome | undefined;
afterAll(async () => {
  await gpg?.dispose();
});

async function setup(fixed: Partial<ConnectionInput> = {}) {
  const e = engines();
  await e.createBucket(BUCKET);
  counter += 1;
  const n = String(counter).padStart(4, '0');
  const clock = new ManualClock(at('10:00'));
  const { driver, s3 } = await createHarness(e, {
    clock,
    config: { kmsKeyAllowlist: [KEY_ARN] },
    sink: (real) =>
      withCustomerBuckets(real, [
        { bucketName: BUCKET, bucketRegion: 'us-east-1', ownerAccountId: OWNER, role: ROLE },
      ]),
  });
  const row: ConnectionInput = {
    connectionId: `conn_fixes000000${n}`,
    appId: `app-fixes-${n}`,
    appName: 'Fixes',
    dbName: 'Fixes DB',
    connectionName: `fixes-${n}`,
    bucketName: BUCKET,
    bucketRegion: 'us-east-1',
    bucketOwnerAccountId: OWNER,
    assumeRoleArn: ROLE.arn,
    externalId: ROLE.externalId,
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: at('10:00').toISOString(),
    ...fixed,
  };
  const stage = (prefix: string, count: number) =>
    driver.stage(
      Array.from({ length: count }, (_, i) => ({
        app_id: row.appId,
        event: { event_uuid: `${prefix}-${i}`, event_name: 'VIEW_RADAR', event_time: 1_790_000_000 },
      })),
    );
  const put = (patch: Partial<ConnectionInput>) =>
    driver.runtime.connections.put(parseConnection({ ...row, ...patch }));
  return { clock, driver, s3, row, stage, put };
}

/** Data files (decrypted when a GnuPG home is given) and manifests under the row's prefix. */
async function exported(s3: Parameters<typeof readBucket>[0], prefix: string, home?: GpgHome) {
  const files = await readBucket(s3, BUCKET, prefix);
  const uuids: string[] = [];
  for (const f of files.filter((x) => isDataKey(x.key))) {
    const body = f.key.endsWith('.gpg') ? await home!.decrypt(f.body) : f.body;
    for (const r of gzipRecords(body)) uuids.push(String((r.event as { event_uuid: string }).event_uuid));
  }
  const manifests = files
    .filter((f) => isManifestKey(f.key))
    .map((f) => JSON.parse(f.body.toString('utf8')) as WindowManifest)
    .sort((a, b) => a.sequence - b.sequence);
  return { uuids: uuids.sort(), manifests, keys: files.map((f) => f.key) };
}

/**
 * The row is wrong at the first attempt and its retry (the window is pinned), then fixed: the
 * next tick exports the pending window under the fixed row, then goes on.
 */
async function wrongThenFixed(
  wrong: Partial<ConnectionInput>,
  fixed: Partial<ConnectionInput> = {},
  home?: GpgHome,
) {
  const { clock, driver, s3, row, stage, put } = await setup(fixed);
  await put(wrong);
  clock.set(at('10:05'));
  await stage('w1', 4);
  for (const attempt of ['10:20', '10:35']) {
    clock.set(at(attempt));
    const outcome = await driver
      .exportJob({ connectionId: row.connectionId, windowEnd: at('10:15').toISOString() })
      .catch((error: unknown) => error);
    expect(outcome).not.toMatchObject({ status: 'committed' });
    const state = await driver.runtime.state.get(row.connectionId);
    expect(state?.pendingWindowEnd).toEqual(at('10:15'));
    expect(state?.lastError).toBeDefined();
  }
  await stage('w2', 2);
  await put({}); // the operator fixes the row
  clock.set(at('10:50'));
  const run = await driver.tick('FIFTEEN_MINUTES', clock.now());
  expect(run.exports.map((x) => x.outcome?.status ?? String(x.error))).toEqual(['committed']);
  const state = await driver.runtime.state.get(row.connectionId);
  expect(state).toMatchObject({ watermark: at('10:45'), sequence: 2 });
  expect(state?.lastError).toBeUndefined();
  return exported(s3, `${row.connectionName}/`, home);
}

const ALL = ['w1-0', 'w1-1', 'w1-2', 'w1-3', 'w2-0', 'w2-1'];

describe('a window that failed because of the row is exported under the fixed row', () => {
  it.each<[string, Partial<ConnectionInput>, Partial<ConnectionInput>?]>([
    ['bucket name (no such bucket)', { bucketName: 'customer-fixes-typo' }],
    ['bucket region', { bucketRegion: 'eu-west-1' }],
    ['bucket owner account', { bucketOwnerAccountId: '999999999999' }],
    ['assume role ARN', { assumeRoleArn: 'arn:aws:iam::444455556666:role/someone-else' }],
    ['external id', { externalId: 'ext-wrong-0001' }],
    ['KMS key not on the allowlist', { kmsKeyArn: OTHER_KEY_ARN }, { kmsKeyArn: KEY_ARN }],
  ])('wrong %s, then fixed: every event once, in the bucket the row names', async (_field, wrong, fixed) => {
    const result = await wrongThenFixed(wrong, fixed);
    expect(result.uuids).toEqual(ALL);
    expect(result.manifests.map((m) => [m.sequence, m.windowEnd, m.totalRecords])).toEqual([
      [1, at('10:15').toISOString(), 4],
      [2, at('10:45').toISOString(), 2],
    ]);
  });

  it.runIf(gpgAvailable())(
    'an expired PGP key, then a valid one: the files are encrypted to the new key',
    async () => {
      gpg ??= await createGpgHome();
      const [expired, valid] = [await gpg.createKey('expired'), await gpg.createKey('curve25519')];
      const result = await wrongThenFixed(
        { pgpPublicKey: expired.armoredPublicKey },
        { pgpPublicKey: valid.armoredPublicKey },
        gpg,
      );
      expect(result.uuids).toEqual(ALL);
      expect(result.keys.filter(isDataKey).every((k) => k.endsWith('.json.gz.gpg'))).toBe(true);
    },
  );

  it('backfill is not blocked by the pin of a window that keeps failing with nothing written', async () => {
    const { clock, driver, s3, row, stage, put } = await setup();
    await put({ bucketName: 'customer-fixes-typo' });
    clock.set(at('10:05'));
    await stage('b', 3);
    clock.set(at('10:20'));
    await expect(
      driver.exportJob({ connectionId: row.connectionId, windowEnd: at('10:15').toISOString() }),
    ).rejects.toMatchObject({ name: 'BucketNotFoundError', code: 'NoSuchBucket' });
    expect((await driver.runtime.state.get(row.connectionId))?.pendingWindowEnd).toEqual(at('10:15'));

    clock.set(at('10:30'));
    await put({ status: 'PAUSED' });
    const deps = {
      connections: driver.runtime.connections,
      state: driver.runtime.state,
      clock,
      stagingRetentionDays: 14,
    };
    const result = await backfill({ connectionId: row.connectionId, from: at('10:00') }, deps);
    expect(result.watermark).toEqual(at('10:00'));
    const state = await driver.runtime.state.get(row.connectionId);
    expect(state?.pendingWindowEnd).toBeUndefined();
    expect(state?.pendingConnection).toBeUndefined();

    await put({}); // fixed and resumed
    clock.set(at('10:35'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect((await exported(s3, `${row.connectionName}/`)).uuids).toEqual(['b-0', 'b-1', 'b-2']);
  });
});
