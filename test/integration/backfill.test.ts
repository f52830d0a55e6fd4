/**
 * Backfill (`startFrom`, docs/product.md#connections): a paused connection's watermark moves back to --from
 * and the re-exported range is exported exactly once more; refusals say what to do.
 */
import { describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import type { WindowManifest } from '../../lambdas/domain/manifest.ts';
import { BackfillRefusedError, backfill } from '../../lambdas/usecases/backfill.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

const at = (iso: string) => new Date(`2026-11-${iso}Z`);
let nextId = 0;

async function setup(config: { partSizeBytes?: number } = {}) {
  const e = engines();
  await e.createBucket('customer-backfill');
  nextId += 1;
  const n = String(nextId).padStart(4, '0');
  const clock = new ManualClock(at('02T10:00:00'));
  const { driver, s3, config: runtimeConfig } = await createHarness(e, { clock, config });
  const connection = parseConnection({
    connectionId: `conn_backfill0000${n}`,
    appId: `app-backfill-${n}`,
    appName: 'Backfill',
    dbName: 'Backfill DB',
    connectionName: `backfill-${n}`,
    bucketName: 'customer-backfill',
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: at('02T10:00:00').toISOString(),
  });
  await driver.runtime.connections.put(connection);
  const deps = {
    connections: driver.runtime.connections,
    state: driver.runtime.state,
    clock,
    stagingRetentionDays: runtimeConfig.stagingRetentionDays,
  };
  const stage = (prefix: string, count: number) =>
    driver.stage(
      Array.from({ length: count }, (_, i) => ({
        app_id: connection.appId,
        event: { event_uuid: `${prefix}-${i}`, event_name: 'VIEW_RADAR', event_time: 1_790_000_000 },
      })),
    );
  const setStatus = (status: 'ACTIVE' | 'PAUSED') =>
    driver.runtime.connections.put(parseConnection({ ...connection, status }));
  const exported = async () => {
    const files = await readBucket(s3, 'customer-backfill', `${connection.connectionName}/`);
    return {
      uuids: files
        .filter((f) => isDataKey(f.key))
        .flatMap((f) =>
          gzipRecords(f.body).map((r) => String((r.event as { event_uuid: string }).event_uuid)),
        )
        .sort(),
      windows: files
        .filter((f) => isManifestKey(f.key))
        .map((f) => JSON.parse(f.body.toString('utf8')) as WindowManifest)
        .sort((a, b) => a.sequence - b.sequence)
        .map((m) => [m.sequence, m.windowStart, m.windowEnd]),
      manifests: files
        .filter((f) => isManifestKey(f.key))
        .map((f) => JSON.parse(f.body.toString('utf8')) as WindowManifest)
        .sort((a, b) => a.sequence - b.sequence),
      keys: files.map((f) => f.key),
    };
  };
  return { e, clock, driver, connection, deps, stage, setStatus, exported };
}

describe('backfill', () => {
  it('re-exports committed windows to their own keys: the bucket holds each event once', async () => {
    const { clock, driver, connection, deps, stage, setStatus, exported } = await setup();
    clock.set(at('02T10:05:00'));
    await stage('early', 3);
    clock.set(at('02T10:20:00'));
    await stage('middle', 2);
    clock.set(at('02T10:35:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now()); // one catch-up window [10:00, 10:30)
    const before = await exported();

    clock.set(at('02T10:40:00'));
    await setStatus('PAUSED');
    await stage('while-paused', 2);
    // 10:15 falls in the committed window [10:00, 10:30): the backfill starts at that window's start.
    const result = await backfill({ connectionId: connection.connectionId, from: at('02T10:15:00') }, deps);
    expect(result.previousWatermark).toEqual(at('02T10:30:00'));
    expect(result.watermark).toEqual(at('02T10:00:00'));
    await setStatus('ACTIVE');
    clock.set(at('02T10:50:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());

    const { uuids, windows, manifests, keys } = await exported();
    expect(uuids).toEqual([
      'early-0',
      'early-1',
      'early-2',
      'middle-0',
      'middle-1',
      'while-paused-0',
      'while-paused-1',
    ]);
    expect(windows).toEqual([
      [1, '2026-11-02T10:00:00.000Z', '2026-11-02T10:30:00.000Z'],
      [2, '2026-11-02T10:30:00.000Z', '2026-11-02T10:45:00.000Z'],
    ]);
    // The re-exported window overwrote its own keys and says which commit it supersedes.
    expect(keys.filter((k) => before.keys.includes(k))).toEqual(before.keys);
    expect(manifests[0]?.supersedes).toEqual({
      sequence: 1,
      windowStart: '2026-11-02T10:00:00.000Z',
      objects: [],
    });
    expect(manifests[1]?.supersedes).toBeUndefined();
    const state = await driver.runtime.state.get(connection.connectionId);
    expect(state).toMatchObject({ watermark: at('02T10:45:00'), sequence: 2 });
  });

  it('reports the parts of the earlier commit the re-export no longer writes (manifest, state, history)', async () => {
    const { clock, driver, connection, deps, setStatus, exported } = await setup({ partSizeBytes: 64 });
    // Three staging slots (parts split between slots' chunks), exported as one catch-up window.
    for (const [minute, name] of [
      ['02', 'PURCHASE'],
      ['17', 'VIEW_RADAR'],
      ['32', 'VIEW_RADAR'],
    ] as const) {
      clock.set(at(`02T10:${minute}:00`));
      await driver.stage([
        {
          app_id: connection.appId,
          event: { event_uuid: `${name}-${minute}`, event_name: name, event_time: 1 },
        },
      ]);
    }
    clock.set(at('02T10:50:00'));
    await driver.exportJob({
      connectionId: connection.connectionId,
      windowEnd: at('02T10:45:00').toISOString(),
    });
    const before = await exported();
    const keys = before.manifests[0]!.files.map((f) => f.key);
    expect(keys).toHaveLength(3); // one part per slot

    clock.set(at('02T10:55:00'));
    await setStatus('PAUSED');
    await backfill({ connectionId: connection.connectionId, from: at('02T10:00:00') }, deps);
    // Only the first batch's events are selected now: the re-export writes one part.
    await driver.runtime.connections.put(
      parseConnection({ ...connection, events: { mode: 'SELECTED', names: ['PURCHASE'] } }),
    );
    clock.set(at('02T11:05:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());

    const [manifest] = (await exported()).manifests;
    const superseded = keys.slice(1).map((key) => ({ bucketName: 'customer-backfill', key }));
    expect(manifest).toMatchObject({
      sequence: 1,
      totalRecords: 1,
      supersedes: { sequence: 1, windowStart: '2026-11-02T10:00:00.000Z', objects: superseded },
    });
    expect(manifest?.files.map((f) => f.key)).toEqual([keys[0]]);
    const state = await driver.runtime.state.get(connection.connectionId);
    expect(state?.superseded?.supersedes.objects).toEqual(superseded);
    const history = await driver.runtime.state.listHistory(connection.connectionId);
    expect(history[0]?.supersedes?.objects).toEqual(superseded);
  });

  it('refuses an active connection, saying to pause it first', async () => {
    const { connection, deps } = await setup();
    await expect(
      backfill({ connectionId: connection.connectionId, from: at('02T10:00:00') }, deps),
    ).rejects.toThrow(
      `connection ${connection.connectionId} is ACTIVE; pause it first (connections pause ${connection.connectionId})`,
    );
  });

  it('refuses a start earlier than the staging retention, naming the earliest allowed instant', async () => {
    const { clock, connection, deps, setStatus } = await setup();
    clock.set(at('20T12:00:00'));
    await setStatus('PAUSED');
    const refusal = backfill({ connectionId: connection.connectionId, from: at('05T00:00:00') }, deps);
    await expect(refusal).rejects.toBeInstanceOf(BackfillRefusedError);
    await expect(refusal).rejects.toThrow(
      '--from 2026-11-05T00:00:00.000Z is earlier than the staging retention allows (14 days); the earliest allowed instant is 2026-11-06T12:00:00.000Z',
    );
  });

  it('refuses while a window is pinned or an exporter holds the lease, and a start after the watermark', async () => {
    const { clock, driver, connection, deps, setStatus } = await setup();
    clock.set(at('02T10:20:00'));
    await driver.runtime.state.initialize(connection.connectionId, at('02T10:00:00'));
    await driver.runtime.state.acquireLease(
      connection.connectionId,
      'exporter-1',
      clock.now(),
      300_000,
      at('02T10:15:00'),
    );
    await setStatus('PAUSED');
    await expect(
      backfill({ connectionId: connection.connectionId, from: at('02T10:00:00') }, deps),
    ).rejects.toMatchObject({ code: 'WINDOW_IN_PROGRESS' });
    // A backfill starts at a staging-slot boundary: 10:16 is in the slot from 10:15, after the watermark.
    await expect(
      backfill({ connectionId: connection.connectionId, from: at('02T10:16:00') }, deps),
    ).rejects.toThrow('is after the watermark 2026-11-02T10:00:00.000Z');
    expect((await driver.runtime.state.get(connection.connectionId))?.watermark).toEqual(at('02T10:00:00'));
  });

  it('is a CLI command: backfill --connection ID --from ISO', async () => {
    const { e, clock, driver, connection, stage, setStatus } = await setup();
    clock.set(at('02T10:05:00'));
    await stage('cli', 2);
    clock.set(at('02T10:20:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) };
    const argv = [
      'backfill',
      '--connection',
      connection.connectionId,
      '--from',
      '2026-11-02T10:00:00Z',
      '--endpoint-url',
      e.dynamoEndpoint,
    ];
    const env = { ...e.env };
    // The SDK's default credential chain reads the process environment.
    vi.stubEnv('AWS_ACCESS_KEY_ID', e.credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', e.credentials.secretAccessKey);
    clock.set(at('02T10:25:00'));

    expect(await runCli(argv, { env, io, clock })).toBe(1);
    expect(err.join('')).toContain('pause it first');
    await setStatus('PAUSED');
    expect(await runCli(argv, { env, io, clock })).toBe(0);
    expect(out.join('')).toContain(
      `connection ${connection.connectionId}: watermark 2026-11-02T10:15:00.000Z -> 2026-11-02T10:00:00.000Z`,
    );
    expect((await driver.runtime.state.get(connection.connectionId))?.watermark).toEqual(at('02T10:00:00'));
    vi.unstubAllEnvs();
  });
});
