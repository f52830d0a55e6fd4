/**
 * The operator staging an NDJSON file through `s3-event-export stage` (cli/commands/stage.ts, run
 * in-process by the CLI's router on the simulation's clock, ledger and staging bucket): the run is
 * interrupted at its Nth batch (a crash before or after that batch's segment), and the operator
 * runs the same file again later. The file's events are the run's like the stream's: each must be
 * staged once and exported once (docs/simulation.md, "The CLI's stage").
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StagingLedger, StagingStore } from '../../lambdas/ports/index.ts';
import { createEventGenerator, type GeneratedEvent, seededRandom } from '../events.ts';
import type { Agenda } from './agenda.ts';
import type { SimContext } from './context.ts';
import { type CliEntryPoint, DAY, MINUTE } from './options.ts';
import { between, pickOne } from './random.ts';
import type { SimulatedStager, StagedBatch } from './stager.ts';

/** Records per `stage` batch (--batch-size): a file is a few batches. */
const BATCH_SIZE = 3;

interface CliFile {
  path: string;
  events: GeneratedEvent[];
  batch: StagedBatch;
}

export class SimulatedCliStage {
  private readonly files = new Map<number, CliFile>();
  private readonly random: () => number;
  private dir: string | undefined;

  constructor(
    private readonly ctx: SimContext,
    private readonly stager: SimulatedStager,
    private readonly ports: { ledger: StagingLedger; store: StagingStore },
    private readonly apps: readonly string[],
    /** The CLI's router (SimulationOptions.cli); none: no CLI stage runs. */
    private readonly cli: CliEntryPoint | undefined,
  ) {
    // Its own generator: the world and the faults of a seed stay what they were without it.
    this.random = seededRandom(ctx.settings.seed * 4099 + 11);
  }

  /** One interrupted run a simulated day (at least one a run), in the first 60% of each day. */
  plan(agenda: Agenda): void {
    const { start, end, faultRate } = this.ctx.settings;
    if (faultRate <= 0 || !this.cli) return;
    for (let day = 0, from = start; from < end; day += 1, from += DAY) {
      const span = Math.min(DAY, end - from);
      agenda.add(from + between(this.random, span / 10, span * 0.6), {
        kind: 'cli-stage',
        run: day,
        rerun: false,
      });
    }
  }

  /** The first (interrupted) run of file `run`, or its re-run. */
  async perform(run: number, rerun: boolean): Promise<void> {
    if (rerun) return this.rerun(run);
    const { ctx } = this;
    const now = ctx.clock.now().getTime();
    const file = await this.writeFile(run, now);
    const batches = Math.ceil(file.events.length / BATCH_SIZE);
    // The crash comes with the Nth batch's segment (N >= 2: the re-run finds some batches staged).
    const attempt = ctx.faults.forcedAttempt(
      pickOne(this.random, ['object-before', 'object-after'] as const),
    );
    attempt.at = 2 + Math.floor(this.random() * (batches - 1));
    const { code, stderr } = await ctx.faults.run(attempt, () => this.stage(file.path));
    if (code !== 0 && attempt.fired && stderr.includes('crashed')) ctx.tally.fired('cli-stage-interrupted');
    else ctx.tally.problem(`cli stage of file ${run} was not interrupted as drawn (exit ${code}): ${stderr}`);
    ctx.schedule(now + between(this.random, 10 * MINUTE, 180 * MINUTE), {
      kind: 'cli-stage',
      run,
      rerun: true,
    });
  }

  /** Remove the files written. */
  async cleanUp(): Promise<void> {
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  /** The same file again: exit 0, each line staged once over both runs. */
  private async rerun(run: number): Promise<void> {
    const { ctx } = this;
    const file = this.files.get(run)!;
    const { code, stdout, stderr } = await this.stage(file.path, '--json');
    if (code !== 0) {
      ctx.tally.problem(`cli stage re-run of file ${run} failed (exit ${code}): ${stderr}`);
      return;
    }
    const totals = JSON.parse(stdout) as { records: number; alreadyStagedRecords: number };
    if (totals.records !== file.events.length || totals.alreadyStagedRecords === 0)
      ctx.tally.problem(`cli stage re-run of file ${run} staged nothing again? ${stdout}`);
    file.batch.stagedAt = ctx.clock.now().getTime();
    ctx.tally.fired('cli-stage-rerun');
  }

  /** An NDJSON file of new events of the apps, one `{"app_id", "event"}` per line, registered as generated. */
  private async writeFile(run: number, now: number): Promise<CliFile> {
    this.dir ??= await mkdtemp(join(tmpdir(), `sim-${this.ctx.settings.runId}-`));
    const apps = this.apps.map((appId, i) =>
      createEventGenerator({ appId, seed: this.ctx.settings.seed * 8191 + run * 17 + i }),
    );
    const count = 2 * BATCH_SIZE + Math.floor(this.random() * 2 * BATCH_SIZE);
    const events = Array.from({ length: count }, () => pickOne(this.random, apps)(new Date(now)));
    const path = join(this.dir, `events-${run}.ndjson`);
    await writeFile(path, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const batch: StagedBatch = { records: [], events, arrivedAt: now, firstAttemptAt: now, failures: 0 };
    this.stager.register(events, batch);
    const file = { path, events, batch };
    this.files.set(run, file);
    return file;
  }

  /** `s3-event-export stage FILE --batch-size 3 [--json]` through the CLI's router. */
  private async stage(
    path: string,
    ...flags: string[]
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const { ctx } = this;
    const config = ctx.driver.runtime.config;
    let stdout = '';
    let stderr = '';
    const code = await this.cli!(['stage', path, '--batch-size', String(BATCH_SIZE), ...flags], {
      env: {
        AWS_REGION: 'us-east-1',
        SETTLE_DELAY_MINUTES: String(config.settleDelayMinutes),
        STAGING_RETENTION_DAYS: String(config.stagingRetentionDays),
      },
      clock: ctx.clock,
      io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
      overrides: { stagingLedger: async () => this.ports.ledger, stagingStore: async () => this.ports.store },
    });
    return { code, stdout, stderr };
  }
}
