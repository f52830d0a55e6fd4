/**
 * Data that expired before export is never reported as exported: a connection resumed after a
 * pause longer than the staging retention exports what staging still holds, and its manifest,
 * its history row and its state (`status`) state the gap — the part of the window older than the
 * retention (plus a margin), whose events may be gone. On the local engines.
 */
import { describe, expect, it } from 'vitest';
import { expiredGap } from '../../lambdas/domain/data-expiry.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import { exportWindow } from '../../lambdas/usecases/export-window.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { connectionFactory } from '../support/fixtures.ts';

const engines = useLocalEngines();
const DAY = 86_400_000;
const BUCKET = 'customer-gap';

describe('expired staged data', () => {
  it('a window starting before what staging still holds is committed with its gap in the manifest, history and state', async () => {
    const e = engines();
    await e.createBucket(BUCKET);
    const now = new Date(boundaryAtOrBefore('FIFTEEN_MINUTES', new Date()).getTime() + 5 * 60_000);
    const clock = new ManualClock(now);
    const harness = await createHarness(e, { clock, config: { stagingRetentionDays: 1 } });
    const runtime = harness.driver.runtime;
    const connection = connectionFactory({
      idPrefix: 'gapresume',
      namePrefix: 'gap',
      appName: 'Gap',
      bucketName: BUCKET,
    })({ createdAt: new Date(now.getTime() - 40 * DAY).toISOString() });
    await runtime.connections.put(connection);
    // Paused 2 days ago, resumed now: its watermark is 2 days old, the retention 1 day (short, so
    // the window lists few hours of staging).
    const watermark = new Date(now.getTime() - 2 * DAY);
    await runtime.state.initialize(connection.connectionId, watermark);

    const windowEnd = boundaryAtOrBefore('FIFTEEN_MINUTES', now);
    const outcome = await exportWindow(
      { connectionId: connection.connectionId, windowEnd },
      runtime.exportDeps(),
    );
    expect(outcome.status).toBe('committed');

    const cutoff = new Date(now.getTime() - DAY + 60 * 60_000).toISOString();
    const gap = { from: watermark.toISOString(), to: cutoff, reason: 'STAGING_RETENTION_EXPIRED' };
    if (outcome.status === 'committed') expect(outcome.windows[0]?.gaps).toEqual([gap]);

    const manifests = (await readBucket(harness.s3, BUCKET)).filter((f) => f.key.endsWith('.manifest.json'));
    expect(manifests).toHaveLength(1);
    const manifest = JSON.parse(manifests[0]!.body.toString('utf8'));
    expect(manifest.gaps).toEqual([gap]);

    const history = await runtime.state.listHistory(connection.connectionId);
    expect(history.map((h) => h.gaps)).toEqual([[gap]]);
    const state = await runtime.state.get(connection.connectionId);
    expect(state?.lastGap).toEqual({ ...gap, windowEnd: windowEnd.toISOString() });
    expect(state?.watermark.toISOString()).toBe(windowEnd.toISOString());
  }, 180_000);

  it('a window whose data is all still staged has no gap (the margin included)', () => {
    const now = new Date('2026-11-29T12:00:00.000Z');
    const retention = 14 * DAY;
    expect(expiredGap(new Date(now.getTime() - 13 * DAY), now, now, retention)).toBeUndefined();
    // Within the margin of the cutoff: possibly gone by the end of the export, so reported.
    expect(expiredGap(new Date(now.getTime() - 14 * DAY + 30 * 60_000), now, now, retention)).toEqual({
      from: new Date(now.getTime() - 14 * DAY + 30 * 60_000).toISOString(),
      to: new Date(now.getTime() - 14 * DAY + 60 * 60_000).toISOString(),
      reason: 'STAGING_RETENTION_EXPIRED',
    });
    // A window wholly before the cutoff is a gap from its start to its end.
    const start = new Date(now.getTime() - 30 * DAY);
    const end = new Date(now.getTime() - 29 * DAY);
    expect(expiredGap(start, end, now, retention)).toEqual({
      from: start.toISOString(),
      to: end.toISOString(),
      reason: 'STAGING_RETENTION_EXPIRED',
    });
  });
});
