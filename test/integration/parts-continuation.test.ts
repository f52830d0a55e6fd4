import { describe, expect, it } from 'vitest';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { dataObjectKey } from '../../lambdas/domain/object-keys.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

describe('a window larger than one invocation', () => {
  it('is split into parts named as documented and continues across invocations from the cursor, each event once', async () => {
    const e = engines();
    await e.createBucket('customer-parts');
    const clock = new ManualClock(new Date('2026-11-02T00:00:00Z'));
    let invocations = 0;
    // Tiny parts and no time left after each part: every invocation writes one part, saves the
    // cursor, re-enqueues itself and stops; the watermark moves only after the last part.
    const { driver, s3 } = await createHarness(e, {
      clock,
      config: { partSizeBytes: 1 },
      exportOverrides: { remainingTimeMs: () => 0, reserveMs: 1 },
    });
    const connection = parseConnection({
      connectionId: 'conn_parts00000001',
      appId: 'app-parts',
      appName: 'Parts',
      dbName: 'Parts DB',
      connectionName: 'parts',
      bucketName: 'customer-parts',
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'DAILY',
      createdAt: '2026-11-02T00:00:00Z',
    });
    await driver.runtime.connections.put(connection);
    const staged: string[] = [];
    for (let batch = 0; batch < 5; batch++) {
      clock.set(new Date(Date.parse('2026-11-02T01:00:00Z') + batch * 3_600_000));
      const events = Array.from({ length: 7 }, (_, i) => ({
        app_id: 'app-parts',
        event: { event_uuid: `p-${batch}-${i}`, event_name: 'VIEW', event_time: 1 },
      }));
      staged.push(...events.map((x) => x.event.event_uuid));
      await driver.stage(events);
    }
    clock.set(new Date('2026-11-03T00:05:00Z'));
    const tick = await driver.tick('DAILY', clock.now());
    invocations = tick.exports.length;
    const statuses = tick.exports.map((x) => x.outcome?.status);
    expect(statuses.slice(0, -1).every((s) => s === 'continued')).toBe(true);
    expect(statuses.at(-1)).toBe('committed');
    expect(invocations).toBe(5); // one part per invocation

    const windowEnd = new Date('2026-11-03T00:00:00Z');
    const files = await readBucket(s3, 'customer-parts');
    const data = files.filter((f) => isDataKey(f.key));
    expect(data.map((f) => f.key).sort()).toEqual(
      [1, 2, 3, 4, 5].map((n) => dataObjectKey(connection, windowEnd, n)).sort(),
    );
    const uuids = data.flatMap((f) =>
      gzipRecords(f.body).map((r) => (r.event as { event_uuid: string }).event_uuid),
    );
    expect(uuids.sort()).toEqual([...staged].sort());
    const manifest = JSON.parse(files.find((f) => isManifestKey(f.key))!.body.toString('utf8'));
    expect(manifest.files.map((f: { key: string }) => f.key)).toEqual(
      [1, 2, 3, 4, 5].map((n) => dataObjectKey(connection, windowEnd, n)),
    );
    expect(manifest.totalRecords).toBe(35);
    const state = await driver.runtime.state.get(connection.connectionId);
    expect(state?.watermark.toISOString()).toBe(windowEnd.toISOString());
    expect(state?.sequence).toBe(1);
    expect(state?.cursor).toBeUndefined();
  });
});
