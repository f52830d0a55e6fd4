/**
 * docs/product.md#schedules-and-windows: changing the frequency neither duplicates nor loses data — the next
 * window of the new frequency starts at the old watermark.
 */
import { describe, expect, it } from 'vitest';
import type { Frequency } from '../../lambdas/definitions.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import type { WindowManifest } from '../../lambdas/domain/manifest.ts';
import { boundariesBetween } from '../../lambdas/domain/windows.ts';
import { ManualClock } from '../../local/clock.ts';
import { createEventGenerator } from '../../local/events.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

const HOUR = 3_600_000;
const SETTLE = 5 * 60_000;

describe('frequency changes', () => {
  // A simulated week of ticks, each compacting its slots on demand: about 70 s on a loaded machine.
  it('daily → 15 min → weekly → daily within a week exports every event once, windows tiling [createdAt, watermark)', {
    timeout: 300_000,
  }, async () => {
    const e = engines();
    await e.createBucket('customer-frequency');
    const start = new Date('2026-11-02T09:00:00Z'); // a Monday
    const clock = new ManualClock(start);
    const { driver, s3 } = await createHarness(e, { clock });
    const base = parseConnection({
      connectionId: 'conn_frequency00000001',
      appId: 'app-frequency',
      appName: 'Frequency',
      dbName: 'Frequency DB',
      connectionName: 'switching',
      bucketName: 'customer-frequency',
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'DAILY',
      createdAt: start.toISOString(),
    });
    await driver.runtime.connections.put(base);

    // Frequency from each instant on; the week ends with a tick of every frequency after Monday 00:05.
    const plan: [at: string, frequency: Frequency][] = [
      ['2026-11-03T13:07:00Z', 'FIFTEEN_MINUTES'],
      ['2026-11-04T08:52:00Z', 'WEEKLY'],
      ['2026-11-06T17:30:00Z', 'DAILY'],
    ];
    const end = new Date('2026-11-09T00:10:00Z');
    const generate = createEventGenerator({ appId: 'app-frequency', seed: 4, offlineShare: 0.2 });

    type Step = { at: number; run: () => Promise<unknown> };
    const steps: Step[] = [];
    const staged: { uuid: string; stageTime: number }[] = [];
    for (const frequency of ['FIFTEEN_MINUTES', 'DAILY', 'WEEKLY'] as const) {
      for (const boundary of boundariesBetween(frequency, start, end)) {
        const at = boundary.getTime() + SETTLE;
        steps.push({ at, run: () => driver.tick(frequency, new Date(at)) });
      }
    }
    for (const [at, frequency] of plan) {
      steps.push({
        at: Date.parse(at),
        run: () => driver.runtime.connections.put(parseConnection({ ...base, frequency })),
      });
    }
    // A batch every 50 minutes, and one a millisecond before each hour (the edge of every window).
    const batchTimes = new Set<number>();
    for (let t = start.getTime() + 7 * 60_000; t < end.getTime(); t += 50 * 60_000) batchTimes.add(t);
    for (let t = start.getTime() + HOUR - 1; t < end.getTime(); t += HOUR) batchTimes.add(t);
    for (const at of batchTimes) {
      steps.push({
        at,
        run: async () => {
          const batch = Array.from({ length: 3 }, () => generate(clock.now()));
          await driver.stage(batch);
          for (const b of batch) staged.push({ uuid: String(b.event.event_uuid), stageTime: at });
        },
      });
    }
    steps.sort((a, b) => a.at - b.at);
    for (const step of steps) {
      clock.set(new Date(step.at));
      await step.run();
    }

    const watermark = Date.parse('2026-11-09T00:00:00Z');
    expect((await driver.runtime.state.get(base.connectionId))?.watermark.getTime()).toBe(watermark);
    const files = await readBucket(s3, 'customer-frequency', 'switching/');
    const exported = files
      .filter((f) => isDataKey(f.key))
      .flatMap((f) => gzipRecords(f.body).map((r) => String((r.event as { event_uuid: string }).event_uuid)));
    const expected = staged.filter((s) => s.stageTime < watermark).map((s) => s.uuid);
    expect(expected.length).toBeGreaterThan(900);
    expect(exported.length).toBe(expected.length); // no duplicates ...
    expect(new Set(exported)).toEqual(new Set(expected)); // ... and no loss
    const manifests = files
      .filter((f) => isManifestKey(f.key))
      .map((f) => JSON.parse(f.body.toString('utf8')) as WindowManifest)
      .sort((a, b) => a.sequence - b.sequence);
    expect(manifests.map((m) => m.sequence)).toEqual(manifests.map((_, i) => i + 1));
    let edge = start.toISOString();
    for (const m of manifests) {
      expect(m.windowStart).toBe(edge);
      edge = m.windowEnd;
    }
    expect(edge).toBe('2026-11-09T00:00:00.000Z');
  });
});
