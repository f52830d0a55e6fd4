import { describe, expect, it } from 'vitest';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import type { ExportStateStore } from '../../lambdas/ports/index.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, gzipRecords, isDataKey, listKeys, readBucket } from '../../local/harness.ts';
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

describe('a pinned window keeps the settings it was pinned with', () => {
  it('an edit between a crashed attempt and its retry applies from the next window, never splitting a window', async () => {
    const e = engines();
    await e.createBucket('customer-pinned');
    const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
    const { driver, s3 } = await createHarness(e, { clock });
    const state = crashingOnceBeforeCommit(driver.runtime.state);
    const { driver: crashing } = await createHarness(e, { clock, exportOverrides: { state } });

    const original = parseConnection({
      connectionId: 'conn_pin00000000001',
      appId: 'app-pinned',
      appName: 'Pinned',
      dbName: 'Pinned DB',
      connectionName: 'pinned',
      bucketName: 'customer-pinned',
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'FIFTEEN_MINUTES',
      createdAt: '2026-11-02T10:00:00Z',
    });
    await driver.runtime.connections.put(original);
    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage(
      Array.from({ length: 6 }, (_, i) => ({
        app_id: 'app-pinned',
        event: { event_uuid: `w1-${i}`, event_name: 'VIEW_RADAR', event_time: 1 },
      })),
    );

    clock.set(new Date('2026-11-02T10:20:00Z'));
    await expect(
      crashing.exportJob({ connectionId: original.connectionId, windowEnd: '2026-11-02T10:15:00.000Z' }),
    ).rejects.toThrow('simulated crash');
    expect(await listKeys(s3, 'customer-pinned', 'pinned/')).toHaveLength(2); // part + manifest, uncommitted

    // The operator moves the connection into a folder and selects fewer events before the retry.
    await driver.runtime.connections.put(
      parseConnection({
        ...original,
        folderPath: 'moved',
        events: { mode: 'SELECTED', names: ['PURCHASE'] },
      }),
    );
    clock.set(new Date('2026-11-02T10:25:00Z'));
    const retry = await driver.exportJob({
      connectionId: original.connectionId,
      windowEnd: '2026-11-02T10:15:00.000Z',
    });
    expect(retry.status).toBe('committed');

    const window1 = (await readBucket(s3, 'customer-pinned', 'pinned/')).filter((f) => isDataKey(f.key));
    expect(window1.map((f) => f.key)).toEqual([
      `pinned/export_day=02-11-2026/event_exports_${Date.parse('2026-11-02T10:15:00Z') / 1000}.json.gz`,
    ]);
    expect(gzipRecords(window1[0]!.body)).toHaveLength(6);
    expect(await listKeys(s3, 'customer-pinned', 'moved_pinned/')).toEqual([]);

    // The next window uses the edited settings.
    clock.set(new Date('2026-11-02T10:31:00Z'));
    await driver.stage([
      { app_id: 'app-pinned', event: { event_uuid: 'w2-a', event_name: 'PURCHASE', event_time: 1 } },
      { app_id: 'app-pinned', event: { event_uuid: 'w2-b', event_name: 'VIEW_RADAR', event_time: 1 } },
    ]);
    clock.set(new Date('2026-11-02T10:50:00Z'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    const moved = (await readBucket(s3, 'customer-pinned', 'moved_pinned/')).filter((f) => isDataKey(f.key));
    expect(moved).toHaveLength(1);
    expect(gzipRecords(moved[0]!.body).map((r) => (r.event as { event_uuid: string }).event_uuid)).toEqual([
      'w2-a',
    ]);
    const after = await driver.runtime.state.get(original.connectionId);
    expect(after?.pendingConnection).toBeUndefined();
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
