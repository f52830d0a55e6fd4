/**
 * One simulation run (local/simulation.ts): the platform wired with fault-injecting ports, the
 * world and the drills put on the agenda, every action performed in time order, a fault-free
 * catch-up, then the checks.
 */
import { FREQUENCIES } from '../../lambdas/definitions.ts';
import type { Connection } from '../../lambdas/domain/connection.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import type { ExportJob } from '../../lambdas/ports/index.ts';
import { dispatchTick } from '../../lambdas/usecases/dispatch-tick.ts';
import { ManualClock } from '../clock.ts';
import { withCustomerBuckets } from '../customer-buckets.ts';
import { seededRandom } from '../events.ts';
import { createHarness, type Harness } from '../harness.ts';
import { DRILL_KMS_KEY, drillBucket } from '../operator-drills.ts';
import { type Action, Agenda } from './agenda.ts';
import { checkConnection, checkStaging } from './checks.ts';
import { SimulatedCliStage } from './cli-stage.ts';
import { planCompactions, SimulatedCompactor } from './compactor.ts';
import type { SimContext } from './context.ts';
import { SimulatedExporter } from './exporter.ts';
import { FaultInjector } from './faults.ts';
import { SimulatedOperator } from './operator.ts';
import {
  bucketOf,
  type ConnectionOutcome,
  DAY,
  MINUTE,
  type SimulationOptions,
  type SimulationResult,
  type SimulationSettings,
  simulationSettings,
} from './options.ts';
import { StagerRunbook } from './runbook.ts';
import { SimulatedStager } from './stager.ts';
import { Tally } from './tally.ts';
import { planArrivals, planEdits, planTicks, simConnections } from './world.ts';

export interface SimulationTables {
  connections: string;
  exportState: string;
  stagingLedger: string;
}

interface Actors {
  stager: SimulatedStager;
  cliStage: SimulatedCliStage;
  runbook: StagerRunbook;
  compactor: SimulatedCompactor;
  exporter: SimulatedExporter;
  operator: SimulatedOperator;
}

/** Run one simulation on tables made for it (runSimulation makes and deletes them). */
export async function simulate(
  options: SimulationOptions,
  runId: string,
  tables: SimulationTables,
): Promise<SimulationResult> {
  const settings = simulationSettings(options, runId);
  // The world (events, arrivals, ticks, edits) comes from one generator and is the same on every run of
  // a seed; faults come from another, whose draws also depend on how racing exporters interleave.
  const world = seededRandom(settings.seed * 104_729 + 3);
  const random = seededRandom(settings.seed * 7919 + 17);
  const clock = new ManualClock(new Date(settings.start));
  const tally = new Tally();
  const faults = new FaultInjector(tally, clock, random, settings.faultRate);
  const agenda = new Agenda();
  let exporter: SimulatedExporter | undefined;
  const harness = await wire(settings, tables, clock, faults, (job) =>
    exporter!.runExport(job, undefined, 'rival of a stalled exporter'),
  );
  const { driver } = harness;
  const ctx: SimContext = {
    settings,
    tally,
    faults,
    clock,
    random,
    driver,
    settleMs: harness.config.settleDelayMinutes * MINUTE,
    schedule: (at: number, action: Action) => agenda.add(Math.max(at, clock.now().getTime()), action),
  };
  // The stager's ports, and the CLI's `stage` command's: both fail as an attempt drew.
  const stagerPorts = {
    ledger: faults.ledger(driver.runtime.ledger),
    store: faults.staging(driver.runtime.staging),
  };
  const stager = new SimulatedStager(ctx, { ...driver.runtime.stagerDeps(), ...stagerPorts });

  await settings.engines.createBucket(bucketOf(runId));
  const connections = simConnections(runId, settings.start, world);
  await stager.resumeShards();
  const operator = new SimulatedOperator(ctx, connections);
  exporter = new SimulatedExporter(ctx, (id) => operator.drilledField(id));
  const compactor = new SimulatedCompactor(ctx);
  const runbook = new StagerRunbook(ctx, stager);
  const apps = [...new Set(connections.map((c) => c.input.appId))];
  const cliStage = new SimulatedCliStage(ctx, stager, stagerPorts, apps, options.cli);
  const actors = { stager, cliStage, runbook, compactor, exporter, operator };

  planArrivals(agenda, settings, world, apps, stager.shards.length);
  const scheduledTicks = planTicks(agenda, settings, world, ctx.settleMs, tally);
  planEdits(agenda, settings, world, connections);
  // Its own generator: the world of a seed stays what it was before compaction runs were simulated.
  planCompactions(agenda, settings, seededRandom(settings.seed * 31 + 5), tally);
  if (settings.operatorDrills) await operator.planDrills(agenda);
  cliStage.plan(agenda);

  await runAgenda(ctx, agenda, actors, scheduledTicks).finally(() => cliStage.cleanUp());
  const finalTime = await catchUp(ctx, actors);

  runbook.checkRanges();
  const lost = runbook.lostEvents();
  const stageTimes = await checkStaging(driver.runtime.staging, stager.generated, lost, tally);
  const { s3 } = harness;
  const prefixesLeft = (c: Connection) => operator.prefixesLeft(c);
  const input = { ctx, s3, generated: stager.generated, stageTimes, finalTime, prefixesLeft };
  const perConnection: ConnectionOutcome[] = [];
  for (const c of connections)
    perConnection.push(await checkConnection(input, c.input.connectionId, c.input.createdAt));

  settings.log(`sim ${runId}: injected ${tally.summary()}`);
  if (lost.size > 0) settings.log(`sim ${runId}: ${lost.size} events lost to the stream's retention`);
  return {
    connections: connections.length,
    events: stager.generated.size,
    files: perConnection.reduce((n, c) => n + c.files, 0),
    duplicates: perConnection.reduce((n, c) => n + c.duplicates + c.unexpected, 0),
    missing: perConnection.reduce((n, c) => n + c.missing, 0),
    manifests: perConnection.reduce((n, c) => n + c.manifests, 0),
    problems: tally.problems,
    injected: tally.injected,
    perConnection,
    stagerAttempts: stager.attempts,
    exportAttempts: exporter.attempts,
    lost: lost.size,
    end: finalTime,
  };
}

/**
 * The local platform with the faults' ports: the state store, the customer sink (which refuses a
 * row that names the bucket's region, owner or role wrongly, as AWS does), the job queue and the
 * time budget. `rival` runs the job of an exporter that stalls past its lease.
 */
async function wire(
  settings: SimulationSettings,
  tables: SimulationTables,
  clock: ManualClock,
  faults: FaultInjector,
  rival: (job: ExportJob) => Promise<unknown>,
): Promise<Harness> {
  // Its own staging bucket too: listing a window's hours stays as fast as in a fresh deployment.
  const stagingBucket = `${bucketOf(settings.runId)}-staging`;
  await settings.engines.createBucket(stagingBucket);
  let harness: Harness | undefined;
  const runtime = () => harness!.driver.runtime;
  harness = await createHarness(settings.engines, {
    clock,
    config: {
      tables,
      stagingBucket,
      partSizeBytes: settings.partSizeBytes,
      kmsKeyAllowlist: [DRILL_KMS_KEY],
    },
    sink: (real) =>
      faults.sink(withCustomerBuckets(real, [drillBucket(bucketOf(settings.runId))]), {
        leaseMs: () => runtime().exportDeps().settings.leaseMs,
        rival,
      }),
    exportOverrides: {
      state: faults.state(() => runtime().state),
      jobs: faults.jobs(() => harness!.driver.queue),
      remainingTimeMs: () => faults.remainingTimeMs(),
      reserveMs: 60_000,
    },
  });
  return harness;
}

/** Every action in time order; time only moves forward (an action due while an exporter stalled runs late). */
/** Far more than a run's retries after its end take (a few hundred): past this, something loops. */
const MAX_ACTIONS_AFTER_END = 20_000;

async function runAgenda(
  ctx: SimContext,
  agenda: Agenda,
  actors: Actors,
  scheduledTicks: number,
): Promise<void> {
  const { clock, faults, settings } = ctx;
  let nextDayLog = settings.start + DAY;
  let ticksRun = 0;
  // Retries after the end settle within hours (faults are off): a world still busy days later is a
  // loop (an action that reschedules itself forever). Stop it and say what was still scheduled.
  const settleBy = settings.end + settings.maxRecordAgeMs + 2 * DAY;
  let afterEnd = 0;
  for (let item = agenda.next(); item; item = agenda.next()) {
    if (item.at >= settings.end) afterEnd += 1;
    if (item.at > settleBy || afterEnd > MAX_ACTIONS_AFTER_END) {
      ctx.tally.problem(
        `the simulated world did not settle after the run's end (${afterEnd} actions performed since, ${agenda.size + 1} still scheduled); the next: ${JSON.stringify(item.action).slice(0, 300)}`,
      );
      break;
    }
    // Arrivals and ticks stop at the end; retries still in flight complete without new faults.
    if (faults.enabled && item.at >= settings.end) faults.enabled = false;
    if (item.at > clock.now().getTime()) clock.set(new Date(item.at));
    while (clock.now().getTime() >= nextDayLog && nextDayLog <= settings.end) {
      settings.log(
        `sim ${settings.runId}: day ${Math.round((nextDayLog - settings.start) / DAY)} of ${settings.days} done (${actors.stager.generated.size} events, ${actors.exporter.attempts} export attempts)`,
      );
      nextDayLog += DAY;
    }
    await perform(item.action, actors);
    if (item.action.kind === 'tick' && !item.action.duplicate) {
      ticksRun += 1;
      settings.onProgress({ done: ticksRun, total: scheduledTicks, events: actors.stager.generated.size });
    }
  }
  faults.enabled = false;
}

function perform(
  action: Action,
  { stager, cliStage, runbook, compactor, exporter, operator }: Actors,
): Promise<void> {
  switch (action.kind) {
    case 'late-write':
      return stager.landLateWrite(action.key);
    case 'cli-stage':
      return cliStage.perform(action.run, action.rerun);
    case 'compact':
      return compactor.compact(action.slotStart, action.duplicate);
    case 'arrival':
      return stager.arrive(action.shard, action.events);
    case 'stage':
      return stager.stageNext(action.shard);
    case 'redeliver':
      return stager.redeliver(action.shard, action.records);
    case 'stager-runbook':
      return runbook.follow(action.shard);
    case 'tick':
      return exporter.tick(action.frequency, action.scheduledTime);
    case 'job':
      return exporter.runJob(action.job, action.failures);
    case 'create':
      return operator.create(action.connectionId);
    case 'change-frequency':
      return operator.changeFrequency(action.connectionId, action.step);
    case 'pause':
      return operator.pause(action.connectionId);
    case 'resume':
      return operator.resume(action.connectionId);
    case 'operator':
      return operator.drill(action.drill, action.step);
  }
}

/**
 * Without faults: paused connections resume, the leases of crashed exporters expire, then every
 * frequency ticks (three rounds) until every connection is caught up. Returns the time at the end.
 */
async function catchUp(ctx: SimContext, { operator }: Actors): Promise<Date> {
  const { clock, driver, settleMs } = ctx;
  await operator.resumeAll();
  clock.advance(driver.runtime.exportDeps().settings.leaseMs + MINUTE);
  for (let round = 0; round < 3; round += 1) {
    for (const frequency of FREQUENCIES) {
      const boundary = boundaryAtOrBefore(frequency, new Date(clock.now().getTime() - settleMs));
      await dispatchTick(
        { frequency, scheduledTime: new Date(boundary.getTime() + settleMs) },
        driver.runtime.dispatchDeps(),
        settleMs,
      );
      for (const run of await driver.drain()) {
        if (run.error)
          ctx.tally.problem(`catch-up export of ${run.job.connectionId} failed: ${String(run.error)}`);
      }
    }
  }
  return clock.now();
}
