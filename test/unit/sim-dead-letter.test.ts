/**
 * The simulated SQS (local/simulation/exporter.ts) redelivers a failed job until it succeeds, but
 * not for ever: a job that fails DEAD_LETTER_RECEIVES deliveries in a row is dead-lettered and the
 * run reports it as a problem, instead of rescheduling itself until the test times out.
 */
import { describe, expect, it } from 'vitest';
import type { ExportJob } from '../../lambdas/ports/index.ts';
import { ManualClock } from '../../local/clock.ts';
import type { LocalDriver } from '../../local/driver.ts';
import type { Action } from '../../local/simulation/agenda.ts';
import type { SimContext } from '../../local/simulation/context.ts';
import { DEAD_LETTER_RECEIVES, SimulatedExporter } from '../../local/simulation/exporter.ts';
import { FaultInjector } from '../../local/simulation/faults.ts';
import type { SimulationSettings } from '../../local/simulation/options.ts';
import { Tally } from '../../local/simulation/tally.ts';

describe('the simulated job queue', () => {
  it('dead-letters a job that fails every delivery, and reports it', async () => {
    const clock = new ManualClock(new Date('2026-11-02T00:00:00Z'));
    const tally = new Tally();
    const faults = new FaultInjector(tally, clock, () => 0.99, 0);
    faults.enabled = false;
    const scheduled: { at: number; action: Action }[] = [];
    let deliveries = 0;
    const driver = {
      queue: { drain: async () => undefined },
      runJob: async () => {
        deliveries += 1;
        throw new Error('the window cannot be exported');
      },
    } as unknown as LocalDriver;
    const ctx: SimContext = {
      settings: { faultRate: 0 } as SimulationSettings,
      tally,
      faults,
      clock,
      random: () => 0.5,
      driver,
      settleMs: 0,
      schedule: (at, action) => scheduled.push({ at, action }),
    };
    const exporter = new SimulatedExporter(ctx, () => undefined);
    const job = { connectionId: 'conn_a', windowEnd: '2026-11-02T00:00:00.000Z' } as unknown as ExportJob;

    // Deliver it as SQS would: each redelivery the exporter schedules, until none is (or 1,000).
    await exporter.runJob(job, 0);
    while (scheduled.length > 0 && deliveries < 1000) {
      const next = scheduled.shift()!;
      expect(next.action.kind).toBe('job');
      if (next.action.kind !== 'job') break;
      clock.set(new Date(next.at));
      await exporter.runJob(next.action.job, next.action.failures);
    }

    expect(deliveries).toBe(DEAD_LETTER_RECEIVES);
    expect(tally.problems.at(-1)).toBe(
      `job conn_a 2026-11-02T00:00:00.000Z failed ${DEAD_LETTER_RECEIVES} deliveries in a row and went to the dead-letter queue`,
    );
  });
});
