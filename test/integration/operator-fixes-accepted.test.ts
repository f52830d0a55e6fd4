/**
 * Operator fixes converge for fields the exporter accepts whatever their value (folder path,
 * connection name, app, app and db names, selection; docs/operations.md, "Fixing a row"): while
 * wrong, windows are exported as written; after the fix, `backfill --committed-since <the wrong
 * edit>` writes every window committed since then again under the fixed row — also the window that
 * ended before the edit but was exported after it, which `--from <the edit>` would leave — and the
 * re-exported windows' manifests and history report what they supersede. On the local engines.
 */
import { describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { type ConnectionInput, parseConnection } from '../../lambdas/domain/connection.ts';
import type { WindowManifest } from '../../lambdas/domain/manifest.ts';
import type { ExportStateStore } from '../../lambdas/ports/index.ts';
import { backfill } from '../../lambdas/usecases/backfill.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

const BUCKET = 'customer-accepted-fixes';
const at = (hhmm: string) => new Date(`2026-11-02T${hhmm}:00Z`);
let counter = 0;

async function setup(patch: Partial<ConnectionInput> = {}) {
  const e = engines();
  await e.createBucket(BUCKET);
  counter += 1;
  const n = String(counter).padStart(4, '0');
  const clock = new ManualClock(at('10:00'));
  // While set, the exporter stops after its uploads, before the commit (as a crashed exporter would).
  const stop = { beforeCommit: false };
  let real: ExportStateStore | undefined;
  const state = new Proxy({} as ExportStateStore, {
    get: (_target, name: keyof ExportStateStore) =>
      name === 'commitWindow' && stop.beforeCommit
        ? async () => {
            throw new Error('stopped before the commit');
          }
        : (...args: unknown[]) => (real![name] as (...a: unknown[]) => unknown).apply(real, args),
  });
  const harness = await createHarness(e, { clock, exportOverrides: { state } });
  const { driver } = harness;
  real = driver.runtime.state;
  const row: ConnectionInput = {
    connectionId: `conn_accepted00000${n}`,
    appId: `app-accepted-${n}`,
    appName: 'Accepted',
    dbName: 'Accepted DB',
    connectionName: `accepted-${n}`,
    bucketName: BUCKET,
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: at('10:00').toISOString(),
    ...patch,
  };
  const put = (change: Partial<ConnectionInput>) =>
    driver.runtime.connections.put(parseConnection({ ...row, ...change }));
  await put({});
  const stage = (prefix: string, count: number, appId = row.appId) =>
    driver.stage(
      Array.from({ length: count }, (_, i) => ({
        app_id: appId,
        event: { event_uuid: `${prefix}-${i}`, event_name: 'VIEW_RADAR', event_time: 1_790_000_000 },
      })),
    );
  const tick = async (hhmm: string) => {
    clock.set(at(hhmm));
    const run = await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect(run.exports.map((x) => x.outcome?.status ?? String(x.error))).toEqual(['committed']);
  };
  const deps = {
    connections: driver.runtime.connections,
    state: driver.runtime.state,
    clock,
    stagingRetentionDays: harness.config.stagingRetentionDays,
  };
  return { e, clock, driver, s3: harness.s3, row, put, stage, tick, deps, stop };
}

/** Event uuids of the data files, and the manifests, under one prefix. */
async function underPrefix(s3: Parameters<typeof readBucket>[0], prefix: string) {
  const files = await readBucket(s3, BUCKET, prefix);
  return {
    keys: files.map((f) => f.key),
    uuids: files
      .filter((f) => isDataKey(f.key))
      .flatMap((f) => gzipRecords(f.body).map((r) => String((r.event as { event_uuid: string }).event_uuid)))
      .sort(),
    manifests: files
      .filter((f) => isManifestKey(f.key))
      .map((f) => JSON.parse(f.body.toString('utf8')) as WindowManifest)
      .sort((a, b) => a.sequence - b.sequence),
  };
}

describe('a wrong value the exporter accepted, fixed, then backfill --committed-since', () => {
  it('a wrong folder path: the windows written under it are written again under the fixed one, which reports every key under the wrong prefix as superseded', async () => {
    const { clock, driver, s3, row, put, stage, tick, deps } = await setup({ folderPath: 'raw' });
    clock.set(at('10:05'));
    await stage('a', 3);
    await tick('10:20'); // [10:00, 10:15) under raw_
    await stage('b', 2);
    // The wrong edit comes after the window [10:15, 10:30) ended, before it is exported.
    clock.set(at('10:31'));
    await put({ folderPath: 'raw-typo' });
    await tick('10:35'); // [10:15, 10:30) under raw-typo_
    await stage('c', 2);
    await tick('10:50'); // [10:30, 10:45) under raw-typo_
    const wrongPrefix = `raw-typo_${row.connectionName}/`;
    const wrongKeys = (await underPrefix(s3, wrongPrefix)).keys;
    expect(wrongKeys).toHaveLength(4); // two windows: a part and a manifest each

    clock.set(at('10:52'));
    await put({ status: 'PAUSED' }); // fixed and paused
    // --from the edit starts at the window the edit falls in, [10:30, 10:45): the window [10:15,
    // 10:30), exported under the wrong folder after the edit, would stay there.
    const fromEdit = await backfill({ connectionId: row.connectionId, from: at('10:31') }, deps);
    expect(fromEdit.watermark).toEqual(at('10:30'));
    const result = await backfill({ connectionId: row.connectionId, committedSince: at('10:31') }, deps);
    expect(result.firstCommittedSince).toMatchObject({ windowStart: at('10:15'), windowEnd: at('10:30') });
    expect(result.watermark).toEqual(at('10:15'));
    await put({});
    clock.set(at('10:55'));
    await stage('d', 2);
    await tick('11:05');

    const fixed = await underPrefix(s3, `raw_${row.connectionName}/`);
    expect(fixed.uuids).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'c-0', 'c-1', 'd-0', 'd-1']);
    expect(fixed.manifests.map((m) => [m.sequence, m.windowStart, m.windowEnd])).toEqual([
      [1, at('10:00').toISOString(), at('10:15').toISOString()],
      [2, at('10:15').toISOString(), at('10:30').toISOString()],
      [3, at('10:30').toISOString(), at('10:45').toISOString()],
      [4, at('10:45').toISOString(), at('11:00').toISOString()],
    ]);
    // Each re-exported window names the commit it replaces and its objects under the wrong prefix.
    const reported = fixed.manifests.flatMap((m) => m.supersedes?.objects ?? []);
    expect(reported.map((o) => o.key).sort()).toEqual([...wrongKeys].sort());
    expect(reported.every((o) => o.bucketName === BUCKET)).toBe(true);
    expect(fixed.manifests[1]?.supersedes).toMatchObject({
      sequence: 2,
      windowStart: at('10:15').toISOString(),
    });
    expect(fixed.manifests[2]?.supersedes).toMatchObject({
      sequence: 3,
      windowStart: at('10:30').toISOString(),
    });
    const history = await driver.runtime.state.listHistory(row.connectionId);
    expect(history.map((w) => w.supersedes?.objects.length ?? 0)).toEqual([0, 2, 2, 0]);
    // Usage counts the re-exports again: 9 events in the bucket, 4 of them exported twice.
    const usage = await driver.runtime.state.listUsage(row.connectionId);
    expect(usage.reduce((n, u) => n + u.events, 0)).toBe(13);
  });

  it('a wrong app, fixed with the CLI: the windows that held the other app are replaced in place', async () => {
    const { e, clock, s3, row, put, stage, tick } = await setup();
    const other = `${row.appId}-other`;
    clock.set(at('10:05'));
    await stage('mine-a', 2);
    await stage('other-a', 2, other);
    await tick('10:20');
    clock.set(at('10:22'));
    await put({ appId: other });
    await stage('mine-b', 3);
    await stage('other-b', 1, other);
    await tick('10:35'); // [10:15, 10:30) holds the other app's event

    clock.set(at('10:40'));
    await put({ status: 'PAUSED' });
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) };
    const cli = (...args: string[]) =>
      runCli(['backfill', '--connection', row.connectionId, ...args, '--endpoint-url', e.dynamoEndpoint], {
        env: { ...e.env },
        io,
        clock,
      });
    vi.stubEnv('AWS_ACCESS_KEY_ID', e.credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', e.credentials.secretAccessKey);
    try {
      expect(await cli('--from', '2026-11-02T10:22:00Z', '--committed-since', '2026-11-02T10:22:00Z')).toBe(
        2,
      );
      expect(err.join('')).toContain('one of --from ISO or --committed-since ISO is required');
      // Nothing was committed after 10:36: nothing to write again, the watermark stays.
      expect(await cli('--committed-since', '2026-11-02T10:36:00Z')).toBe(0);
      expect(out.join('')).toContain(
        'no window committed since 2026-11-02T10:36:00.000Z, nothing to write again',
      );
      expect(await cli('--committed-since', '2026-11-02T10:22:00Z')).toBe(0);
      expect(out.join('')).toContain(
        'watermark 2026-11-02T10:30:00.000Z -> 2026-11-02T10:15:00.000Z (the start of the earliest window committed since 2026-11-02T10:22:00.000Z)',
      );
    } finally {
      vi.unstubAllEnvs();
    }
    await put({});
    await tick('10:50');

    const { uuids, manifests } = await underPrefix(s3, `${row.connectionName}/`);
    expect(uuids).toEqual(['mine-a-0', 'mine-a-1', 'mine-b-0', 'mine-b-1', 'mine-b-2']);
    expect(manifests.map((m) => [m.sequence, m.totalRecords, m.supersedes?.sequence])).toEqual([
      [1, 2, undefined],
      [2, 3, 2],
      [3, 0, undefined],
    ]);
  });

  it('a backfill that drops a pending window: the part an interrupted attempt left under the wrong folder is superseded', async () => {
    const { clock, driver, s3, row, put, stage, tick, deps, stop } = await setup({ folderPath: 'raw' });
    clock.set(at('10:05'));
    await stage('a', 2);
    await tick('10:20');
    clock.set(at('10:22'));
    await put({ folderPath: 'raw-typo' });
    await stage('b', 2);
    // The window [10:15, 10:30) is written under the wrong folder, one part and the manifest (the
    // cursor records nothing before the commit), and the attempt stops before its commit.
    stop.beforeCommit = true;
    clock.set(at('10:35'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    stop.beforeCommit = false;
    const wrongPrefix = `raw-typo_${row.connectionName}/`;
    const left = (await underPrefix(s3, wrongPrefix)).keys;
    expect(left).toHaveLength(2);

    clock.set(at('10:40'));
    await put({ status: 'PAUSED' });
    // Nothing was committed since the edit: the backfill stays at the watermark, dropping the pending window.
    const result = await backfill({ connectionId: row.connectionId, committedSince: at('10:22') }, deps);
    expect(result).toMatchObject({ watermark: at('10:15'), firstCommittedSince: undefined });
    expect(await driver.runtime.state.get(row.connectionId)).toMatchObject({
      droppedWindow: { windowEnd: at('10:30'), nextPartNumber: 1 },
    });
    await put({});
    await tick('10:50');

    const fixed = await underPrefix(s3, `raw_${row.connectionName}/`);
    expect(fixed.uuids).toEqual(['a-0', 'a-1', 'b-0', 'b-1']);
    expect(fixed.manifests[1]?.supersedes?.objects.map((o) => o.key).sort()).toEqual([...left].sort());
    expect((await driver.runtime.state.get(row.connectionId))?.droppedWindow).toBeUndefined();
  });

  it('windows committed every 15 minutes are written again after the frequency became daily', async () => {
    const { clock, driver, s3, row, put, stage, tick, deps } = await setup();
    clock.set(at('10:05'));
    await stage('a', 2);
    await tick('10:20');
    clock.set(at('10:21'));
    await put({ appName: 'Acepted' });
    await stage('b', 2);
    await tick('10:35'); // [10:15, 10:30) with the wrong name in every record

    clock.set(at('10:40'));
    await put({ frequency: 'DAILY', status: 'PAUSED' });
    await backfill({ connectionId: row.connectionId, committedSince: at('10:21') }, deps);
    await put({ frequency: 'DAILY' });
    // The daily window end (00:00) is before the watermark: the tick still sends the re-export.
    clock.set(at('10:50'));
    const run = await driver.tick('DAILY', clock.now());
    expect(run.exports.map((x) => x.outcome?.status ?? String(x.error))).toEqual(['committed']);

    const files = await readBucket(s3, BUCKET, `${row.connectionName}/`);
    const names = files
      .filter((f) => isDataKey(f.key))
      .flatMap((f) => gzipRecords(f.body).map((r) => r.app_name));
    expect(names).toEqual(['Accepted', 'Accepted', 'Accepted', 'Accepted']);
    const state = await driver.runtime.state.get(row.connectionId);
    expect(state).toMatchObject({ watermark: at('10:30'), sequence: 2 });
  });
});
