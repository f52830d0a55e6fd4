/**
 * Parts are bounded in time as well as size: a part whose invocation runs low closes at the next
 * staged-object boundary, the cursor is saved and the window continues in another invocation.
 */
import { describe, expect, it } from 'vitest';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { dataObjectKey } from '../../lambdas/domain/object-keys.ts';
import type { ExportStateStore, StagingStore } from '../../lambdas/ports/index.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const MINUTE = 60_000;

/** An object whose methods are `overrides`, else those of `target()` (known only later). */
function forwarding<T extends object>(target: () => T, overrides: Partial<T>): T {
  return new Proxy(overrides as T, {
    get(own, name) {
      if (name in own) return own[name as keyof T];
      const value = target()[name as keyof T];
      return typeof value === 'function' ? value.bind(target()) : value;
    },
  });
}

/**
 * A DAILY window of 8 staged objects (one ref each), small enough for one part by size, exported
 * by the tick with `overrides`: reading and compressing one object takes a simulated minute, and
 * each invocation has 5 minutes from when it takes the lease (`remainingTimeMs`).
 */
async function exportEightObjects(bucket: string, overrides: { budget?: boolean; partTimeLimitMs?: number }) {
  const e = engines();
  await e.createBucket(bucket);
  const clock = new ManualClock(new Date('2026-11-05T00:00:00Z'));
  let invocationEnd = 0;
  const cursorSaves: number[] = [];
  let real!: { state: ExportStateStore; staging: StagingStore };
  const state = forwarding(() => real.state, {
    acquireLease: (...args) => {
      invocationEnd = clock.now().getTime() + 5 * MINUTE;
      return real.state.acquireLease(...args);
    },
    saveCursor: (id, owner, windowEnd, cursor, recorded) => {
      cursorSaves.push(cursor.nextObjectIndex);
      return real.state.saveCursor(id, owner, windowEnd, cursor, recorded);
    },
  });
  const staging = forwarding(() => real.staging, {
    // One ref per staged chunk (in AWS, refs of up to 1 MiB each): many small refs.
    listWindow: (appId, start, end) => real.staging.listWindow(appId, start, end, 1),
    openObject: (key) => {
      clock.advance(MINUTE);
      return real.staging.openObject(key);
    },
  });
  const { driver, s3 } = await createHarness(e, {
    clock,
    exportOverrides: {
      state,
      staging,
      ...(overrides.budget
        ? { remainingTimeMs: () => invocationEnd - clock.now().getTime(), reserveMs: MINUTE }
        : {}),
      ...(overrides.partTimeLimitMs ? { partTimeLimitMs: overrides.partTimeLimitMs } : {}),
    },
  });
  real = { state: driver.runtime.state, staging: driver.runtime.staging };
  const connection = parseConnection({
    connectionId: `conn_${bucket.replaceAll('-', '').slice(0, 14)}`,
    appId: `app-${bucket}`,
    appName: 'Budget',
    dbName: 'Budget DB',
    connectionName: 'budget',
    bucketName: bucket,
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'DAILY',
    createdAt: '2026-11-05T00:00:00Z',
  });
  await driver.runtime.connections.put(connection);
  const staged: string[] = [];
  for (let hour = 1; hour <= 8; hour++) {
    clock.set(new Date(Date.parse('2026-11-05T00:00:00Z') + hour * 3_600_000));
    const events = Array.from({ length: 4 }, (_, i) => ({
      app_id: connection.appId,
      event: { event_uuid: `b-${hour}-${i}`, event_name: 'VIEW', event_time: 1 },
    }));
    staged.push(...events.map((x) => x.event.event_uuid));
    await driver.stage(events);
  }
  clock.set(new Date('2026-11-06T00:05:00Z'));
  const tick = await driver.tick('DAILY', clock.now());
  const windowEnd = new Date('2026-11-06T00:00:00Z');
  const files = await readBucket(s3, bucket);
  const data = files.filter((f) => isDataKey(f.key));
  const manifest = JSON.parse(files.find((f) => isManifestKey(f.key))!.body.toString('utf8'));
  return {
    statuses: tick.exports.map((x) => x.outcome?.status),
    cursorSaves,
    dataKeys: data.map((f) => f.key).sort(),
    partKeys: (n: number) =>
      Array.from({ length: n }, (_, i) => dataObjectKey(connection, windowEnd, i + 1)).sort(),
    uuids: data
      .flatMap((f) => gzipRecords(f.body).map((r) => (r.event as { event_uuid: string }).event_uuid))
      .sort(),
    staged: staged.sort(),
    manifest,
    watermark: (await driver.runtime.state.get(connection.connectionId))?.watermark,
    windowEnd,
  };
}

describe('a window of many staged objects and a short invocation budget', () => {
  it('closes the first part when the time runs low in its middle, then continues from the cursor, each event once', async () => {
    const run = await exportEightObjects('customer-part-budget', { budget: true });
    // The first invocation closed its part in the middle (by time: by size it holds all 8 objects),
    // saved the cursor there and handed the window on; each invocation wrote one part, the last
    // (which needs no cursor save) finished the window. How many objects a part holds depends on
    // how far the exporter reads ahead (its worker threads).
    expect(run.statuses.length).toBeGreaterThanOrEqual(2);
    expect(run.statuses.slice(0, -1).every((s) => s === 'continued')).toBe(true);
    expect(run.statuses.at(-1)).toBe('committed');
    expect(run.cursorSaves).toHaveLength(run.statuses.length - 1);
    expect(run.cursorSaves[0]).toBeGreaterThan(0);
    expect(run.cursorSaves[0]).toBeLessThan(8);
    expect(run.dataKeys).toEqual(run.partKeys(run.statuses.length));
    expect(run.uuids).toEqual(run.staged);
    expect(run.manifest.totalRecords).toBe(run.staged.length);
    expect(run.watermark).toEqual(run.windowEnd);
  });

  it('closes parts that take longer than partTimeLimitMs, in one invocation when time is left', async () => {
    const run = await exportEightObjects('customer-part-time', { partTimeLimitMs: 3 * MINUTE });
    expect(run.statuses).toEqual(['committed']);
    expect(run.dataKeys.length).toBeGreaterThanOrEqual(2);
    expect(run.dataKeys).toEqual(run.partKeys(run.dataKeys.length));
    expect(run.cursorSaves).toHaveLength(run.dataKeys.length - 1);
    expect(run.uuids).toEqual(run.staged);
    expect(run.manifest.files).toHaveLength(run.dataKeys.length);
  });
});
