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

describe('a window of many staged objects and a short invocation budget', () => {
  it('closes the first part when the time runs low in its middle, then continues from the cursor, each event once', async () => {
    const e = engines();
    await e.createBucket('customer-part-budget');
    const clock = new ManualClock(new Date('2026-11-05T00:00:00Z'));
    // Each invocation has 5 minutes (from when it takes the lease) and keeps 1 in reserve; reading
    // and compressing one staged object takes a simulated minute.
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
        remainingTimeMs: () => invocationEnd - clock.now().getTime(),
        reserveMs: MINUTE,
      },
    });
    real = { state: driver.runtime.state, staging: driver.runtime.staging };

    const connection = parseConnection({
      connectionId: 'conn_budget0000001',
      appId: 'app-budget',
      appName: 'Budget',
      dbName: 'Budget DB',
      connectionName: 'budget',
      bucketName: 'customer-part-budget',
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'DAILY',
      createdAt: '2026-11-05T00:00:00Z',
    });
    await driver.runtime.connections.put(connection);
    // Eight staging slots, one small staged object each: all fit one part by size (512 MiB).
    const staged: string[] = [];
    for (let hour = 1; hour <= 8; hour++) {
      clock.set(new Date(Date.parse('2026-11-05T00:00:00Z') + hour * 3_600_000));
      const events = Array.from({ length: 4 }, (_, i) => ({
        app_id: 'app-budget',
        event: { event_uuid: `b-${hour}-${i}`, event_name: 'VIEW', event_time: 1 },
      }));
      staged.push(...events.map((x) => x.event.event_uuid));
      await driver.stage(events);
    }
    clock.set(new Date('2026-11-06T00:05:00Z'));
    const tick = await driver.tick('DAILY', clock.now());

    // The first invocation closed its part in the middle (by time: by size it holds all 8 objects),
    // saved the cursor there and handed the window on; each invocation wrote one part, the last
    // (which needs no cursor save) finished the window. How many objects a part holds depends on
    // how far the exporter reads ahead (its worker threads).
    const statuses = tick.exports.map((x) => x.outcome?.status);
    expect(statuses.length).toBeGreaterThanOrEqual(2);
    expect(statuses.slice(0, -1).every((s) => s === 'continued')).toBe(true);
    expect(statuses.at(-1)).toBe('committed');
    expect(cursorSaves).toHaveLength(statuses.length - 1);
    expect(cursorSaves[0]).toBeGreaterThan(0);
    expect(cursorSaves[0]).toBeLessThan(8);

    const windowEnd = new Date('2026-11-06T00:00:00Z');
    const files = await readBucket(s3, 'customer-part-budget');
    const data = files.filter((f) => isDataKey(f.key));
    expect(data.map((f) => f.key).sort()).toEqual(
      statuses.map((_, i) => dataObjectKey(connection, windowEnd, i + 1)).sort(),
    );
    const uuids = data.flatMap((f) =>
      gzipRecords(f.body).map((r) => (r.event as { event_uuid: string }).event_uuid),
    );
    expect(uuids.sort()).toEqual([...staged].sort());
    const manifest = JSON.parse(files.find((f) => isManifestKey(f.key))!.body.toString('utf8'));
    expect(manifest.totalRecords).toBe(staged.length);
    expect((await driver.runtime.state.get(connection.connectionId))?.watermark).toEqual(windowEnd);
  });
});
