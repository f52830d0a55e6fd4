import { describe, expect, it } from 'vitest';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import type { WindowManifest } from '../../lambdas/domain/manifest.ts';
import type { ExportStateStore } from '../../lambdas/ports/index.ts';
import { ManualClock } from '../../local/clock.ts';
import {
  createHarness,
  gzipRecords,
  isDataKey,
  isManifestKey,
  listKeys,
  readBucket,
} from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

/** A state store whose next commitWindow fails before it reaches DynamoDB (a crash before commit). */
function crashingOnceBeforeCommit(real: ExportStateStore): ExportStateStore & { armed: boolean } {
  const wrapper = Object.create(real) as ExportStateStore & { armed: boolean };
  wrapper.armed = true;
  wrapper.commitWindow = async (id, commit) => {
    if (wrapper.armed) {
      wrapper.armed = false;
      throw new Error('simulated crash after upload, before commit');
    }
    return real.commitWindow(id, commit);
  };
  return wrapper;
}

const END1 = Date.parse('2026-11-02T10:15:00Z') / 1000;

/** A connection with one window of 6 events whose first attempt wrote its part and crashed before the commit. */
async function crashedWindow(bucket: string, id: string) {
  const e = engines();
  await e.createBucket(bucket);
  const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
  const { driver, s3 } = await createHarness(e, { clock });
  const state = crashingOnceBeforeCommit(driver.runtime.state);
  const { driver: crashing } = await createHarness(e, { clock, exportOverrides: { state } });
  const original = parseConnection({
    connectionId: id,
    appId: `app-${bucket}`,
    appName: 'Pinned',
    dbName: 'Pinned DB',
    connectionName: 'pinned',
    bucketName: bucket,
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: '2026-11-02T10:00:00Z',
  });
  await driver.runtime.connections.put(original);
  clock.set(new Date('2026-11-02T10:05:00Z'));
  await driver.stage(
    Array.from({ length: 6 }, (_, i) => ({
      app_id: original.appId,
      event: { event_uuid: `w1-${i}`, event_name: i < 2 ? 'PURCHASE' : 'VIEW_RADAR', event_time: 1 },
    })),
  );
  clock.set(new Date('2026-11-02T10:20:00Z'));
  await expect(
    crashing.exportJob({ connectionId: original.connectionId, windowEnd: '2026-11-02T10:15:00.000Z' }),
  ).rejects.toThrow('simulated crash');
  expect(await listKeys(s3, bucket, 'pinned/')).toHaveLength(2); // part + manifest, uncommitted
  // The window's only part is its last: the commit records it, no cursor save does.
  const pending = await driver.runtime.state.get(id);
  expect(pending?.pendingWindowEnd).toEqual(new Date('2026-11-02T10:15:00.000Z'));
  expect(pending?.cursor).toBeUndefined();
  return { clock, driver, s3, original };
}

const uuidsOf = (body: Buffer) =>
  gzipRecords(body).map((r) => (r.event as { event_uuid: string }).event_uuid);

describe('a pending window with parts written', () => {
  it('is written again whole under a changed destination, reporting the superseded keys (manifest, state, history)', async () => {
    const bucket = 'customer-pinned-moved';
    const { clock, driver, s3, original } = await crashedWindow(bucket, 'conn_pin00000000001');
    // The operator moves the connection into a folder before the retry.
    await driver.runtime.connections.put(parseConnection({ ...original, folderPath: 'moved' }));
    clock.set(new Date('2026-11-02T10:25:00Z'));
    const retry = await driver.exportJob({
      connectionId: original.connectionId,
      windowEnd: '2026-11-02T10:15:00.000Z',
    });
    expect(retry.status).toBe('committed');

    const moved = await readBucket(s3, bucket, 'moved_pinned/');
    const data = moved.filter((f) => isDataKey(f.key));
    expect(data.map((f) => f.key)).toEqual([
      `moved_pinned/export_day=02-11-2026/event_exports_${END1}.json.gz`,
    ]);
    expect(uuidsOf(data[0]!.body)).toHaveLength(6);
    const superseded = [
      { bucketName: bucket, key: `pinned/export_day=02-11-2026/event_exports_${END1}.json.gz` },
      { bucketName: bucket, key: `pinned/export_day=02-11-2026/event_exports_${END1}.manifest.json` },
    ];
    const manifest = JSON.parse(
      moved.find((f) => isManifestKey(f.key))!.body.toString('utf8'),
    ) as WindowManifest;
    expect(manifest).toMatchObject({ sequence: 1, totalRecords: 6, supersedes: { objects: superseded } });
    const state = await driver.runtime.state.get(original.connectionId);
    expect(state?.superseded).toEqual({
      windowEnd: new Date('2026-11-02T10:15:00Z'),
      supersedes: { objects: superseded },
    });
    expect(state?.pendingSupersedes).toBeUndefined();
    const [history] = await driver.runtime.state.listHistory(original.connectionId);
    expect(history).toMatchObject({ bucketName: bucket, supersedes: { objects: superseded } });
  });

  it('is finished with its pinned settings when only the selection changed; the edit applies from the next window', async () => {
    const bucket = 'customer-pinned-selection';
    const { clock, driver, s3, original } = await crashedWindow(bucket, 'conn_pin00000000002');
    await driver.runtime.connections.put(
      parseConnection({ ...original, events: { mode: 'SELECTED', names: ['PURCHASE'] } }),
    );
    clock.set(new Date('2026-11-02T10:25:00Z'));
    const retry = await driver.exportJob({
      connectionId: original.connectionId,
      windowEnd: '2026-11-02T10:15:00.000Z',
    });
    expect(retry.status).toBe('committed');
    const window1 = (await readBucket(s3, bucket, 'pinned/')).filter((f) => isDataKey(f.key));
    expect(window1.map((f) => f.key)).toEqual([`pinned/export_day=02-11-2026/event_exports_${END1}.json.gz`]);
    expect(uuidsOf(window1[0]!.body)).toHaveLength(6);

    clock.set(new Date('2026-11-02T10:31:00Z'));
    await driver.stage([
      { app_id: original.appId, event: { event_uuid: 'w2-a', event_name: 'PURCHASE', event_time: 1 } },
      { app_id: original.appId, event: { event_uuid: 'w2-b', event_name: 'VIEW_RADAR', event_time: 1 } },
    ]);
    clock.set(new Date('2026-11-02T10:50:00Z'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    const all = (await readBucket(s3, bucket, 'pinned/')).filter((f) => isDataKey(f.key));
    expect(all.flatMap((f) => uuidsOf(f.body)).filter((u) => u.startsWith('w2'))).toEqual(['w2-a']);
    const after = await driver.runtime.state.get(original.connectionId);
    expect(after?.pendingConnection).toBeUndefined();
    expect(after?.superseded).toBeUndefined();
    expect(after?.sequence).toBe(2); // [10:00,10:15) and the catch-up window [10:15,10:45)
  });
});

describe('after a commit', () => {
  it('a notification that cannot be published does not fail the committed window or record an error', async () => {
    const e = engines();
    await e.createBucket('customer-notify');
    const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
    const failingNotifier = {
      windowCommitted: async () => {
        throw new Error('EventBridge unavailable');
      },
      exportFailed: async () => undefined,
    };
    const { driver } = await createHarness(e, { clock, notifier: failingNotifier });
    const connection = parseConnection({
      connectionId: 'conn_notify00000001',
      appId: 'app-notify',
      appName: 'Notify',
      dbName: 'Notify DB',
      connectionName: 'notify',
      bucketName: 'customer-notify',
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'FIFTEEN_MINUTES',
      createdAt: '2026-11-02T10:00:00Z',
    });
    await driver.runtime.connections.put(connection);
    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage([
      { app_id: 'app-notify', event: { event_uuid: 'n1', event_name: 'X', event_time: 1 } },
    ]);
    clock.set(new Date('2026-11-02T10:20:00Z'));
    const outcome = await driver.exportJob({
      connectionId: connection.connectionId,
      windowEnd: '2026-11-02T10:15:00.000Z',
    });
    expect(outcome.status).toBe('committed');
    const state = await driver.runtime.state.get(connection.connectionId);
    expect(state?.watermark.toISOString()).toBe('2026-11-02T10:15:00.000Z');
    expect(state?.lastError).toBeUndefined();
  });
});
