/**
 * The dispatcher and the exporter as EventBridge Scheduler, SQS and Lambda run them in the
 * simulation: ticks dispatch jobs, SQS delivers each shortly (sometimes twice, sometimes to two
 * exporters at once), a failed attempt is redelivered after the visibility timeout until it succeeds
 * or has failed DEAD_LETTER_RECEIVES times (then it is dead-lettered, and that is a problem).
 */
import type { Frequency } from '../../lambdas/definitions.ts';
import type { ExportJob } from '../../lambdas/ports/index.ts';
import { jobConnectionIds } from '../../lambdas/ports/index.ts';
import { dispatchTick } from '../../lambdas/usecases/dispatch-tick.ts';
import type { ExportJobRun, MemberRun } from '../../lambdas/usecases/export-job.ts';
import { isBucketRefusal } from '../customer-buckets.ts';
import { type DrillField, isAcceptedField } from '../operator-drills.ts';
import type { SimContext } from './context.ts';
import type { ExportFault } from './faults.ts';
import { isInjected, SimulatedCrash } from './injected-errors.ts';
import { HOUR, MINUTE } from './options.ts';
import { between } from './random.ts';

/**
 * Receives after which the simulated queue dead-letters a job. Higher than a deployment's
 * `jobMaxReceiveCount` (5, lib/config.ts): injected faults stop after 6 failures of a job in a row
 * (faults.ts), so a job failing this often fails for a reason of the product's own, and the run
 * reports it instead of redelivering it for ever.
 */
export const DEAD_LETTER_RECEIVES = 20;

export class SimulatedExporter {
  attempts = 0;

  constructor(
    private readonly ctx: SimContext,
    /** The field an operator drill has made wrong on a connection, if any. */
    private readonly drilledField: (connectionId: string) => DrillField | undefined,
  ) {}

  /** A schedule tick: dispatch, then hand the jobs to SQS. */
  async tick(frequency: Frequency, scheduledTime: Date): Promise<void> {
    const { driver, settleMs, tally } = this.ctx;
    const tick = await dispatchTick({ frequency, scheduledTime }, driver.runtime.dispatchDeps(), settleMs);
    if (tick.invalidConnections.length > 0) {
      tally.problem(`invalid connection rows: ${tick.invalidConnections.join(', ')}`);
    }
    await this.collectJobs();
  }

  /** Move what the exporter or the dispatcher enqueued into the agenda: SQS delivers it shortly. */
  async collectJobs(): Promise<void> {
    const { clock, driver, faults, random, settings, tally } = this.ctx;
    await driver.queue.drain(async (job) => {
      const at = clock.now().getTime() + between(random, 1000, 90_000);
      this.ctx.schedule(at, { kind: 'job', job, failures: 0 });
      if (faults.enabled && random() < settings.faultRate / 6) {
        // At-least-once delivery: the same message again, later.
        tally.fired('job-delivered-twice');
        this.ctx.schedule(at + between(random, 1000, 2 * HOUR), { kind: 'job', job, failures: 0 });
      }
    });
  }

  /** SQS delivers `job` (that failed `failures` times before) to one exporter, or to two racing. */
  async runJob(job: ExportJob, failures: number): Promise<void> {
    const { clock, faults, random, settings, tally } = this.ctx;
    const race = faults.enabled && random() < settings.faultRate / 5;
    const runs = race
      ? await Promise.all([
          this.runExport(job, faults.drawExportFault(failures), 'racing exporter'),
          this.runExport(job, faults.drawExportFault(failures), 'racing exporter'),
        ])
      : [await this.runExport(job, faults.drawExportFault(failures), 'exporter')];
    if (race) tally.fired('two-exporters-racing');
    await this.collectJobs();
    if (runs.some((r) => r.error !== undefined || r.run?.redeliver)) {
      if (failures + 1 >= DEAD_LETTER_RECEIVES) {
        // SQS moves it to the dead-letter queue: no more deliveries, and the run is a failure.
        tally.problem(
          `job ${jobConnectionIds(job).join(',')} ${job.windowEnd} failed ${failures + 1} deliveries in a row and went to the dead-letter queue`,
        );
        return;
      }
      // Not acknowledged: SQS redelivers after the visibility timeout.
      const delay = random() < 0.1 ? between(random, HOUR, 6 * HOUR) : between(random, MINUTE, 20 * MINUTE);
      this.ctx.schedule(clock.now().getTime() + delay, { kind: 'job', job, failures: failures + 1 });
    }
  }

  /** One exporter attempt at `job`, with `fault` injected (the label names it in problems). */
  async runExport(
    job: ExportJob,
    fault: ExportFault | undefined,
    label: string,
  ): Promise<{ run?: ExportJobRun; error?: unknown }> {
    const { driver, faults, tally } = this.ctx;
    this.attempts += 1;
    const attempt = faults.exportAttempt(job, fault);
    if (job.connectionIds) tally.fired('group-job');
    if (job.groups) tally.fired('batch-job');
    try {
      // As the exporter Lambda runs it: a group's members concurrently, with shared staged reads.
      const run = await faults.run(attempt, () => driver.runJob(job));
      for (const member of run.members) this.checkMember(member, job, label);
      if (run.retried.length > 0) tally.fired('group-member-retried-alone');
      return { run };
    } catch (error) {
      tally.problem(
        `${label} ${jobConnectionIds(job).join(',')} ${job.windowEnd}: job threw ${String(error)}`,
      );
      return { error };
    }
  }

  private checkMember(member: MemberRun, job: ExportJob, label: string): void {
    // A drill tests something only if an export meets the wrong row and is refused.
    const field = this.drilledField(member.connectionId);
    const refused = member.outcome?.status === 'refused' || isBucketRefusal(member.error);
    // A wrong value of an accepted field is valid: it is exported as written, never refused.
    if (field && refused && isAcceptedField(field))
      this.ctx.tally.problem(`${label} ${member.connectionId}: refused while only ${field} was wrong`);
    else if (field && refused) this.ctx.tally.fired(`drill-${field}-refused`);
    if (
      member.error !== undefined &&
      !(member.error instanceof SimulatedCrash) &&
      !isInjected(member.error) &&
      !isBucketRefusal(member.error)
    ) {
      this.ctx.tally.problem(
        `${label} ${member.connectionId} ${job.windowEnd}: unexpected error ${String(member.error)}`,
      );
    }
  }
}
