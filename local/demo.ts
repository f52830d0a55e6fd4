/**
 * The local demo: one simulated day of a small platform, end to end, on the
 * real local engines with the product's own code paths.
 *
 * Three connections (all events every 15 minutes → switched to DAILY at noon;
 * selected campaign events with attribute projection, DAILY; a WEEKLY archive),
 * realistic user and campaign events incl. offline ones days old, a few
 * malformed records (quarantined), a re-delivered Kinesis batch, every schedule
 * tick of the day; then every object of the customer buckets is copied to the
 * output folder and the export is verified from the files themselves.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Frequency } from '../lambdas/definitions.ts';
import type { Connection, ConnectionInput } from '../lambdas/domain/connection.ts';
import { parseConnection } from '../lambdas/domain/connection.ts';
import type { ReceivedEvent } from '../lambdas/domain/export-record.ts';
import { boundariesBetween, boundaryAtOrBefore } from '../lambdas/domain/windows.ts';
import { ManualClock } from './clock.ts';
import { startLocalEngines } from './engines.ts';
import { createEventGenerator, type GeneratedEvent, seededRandom } from './events.ts';
import { createHarness, type Harness, type HarnessOptions, readBucket } from './harness.ts';
import {
  type ConnectionVerification,
  type Decrypt,
  expectedUuids,
  gpgDecrypt,
  type StagedEventRecord,
  verifyConnection,
} from './verify.ts';

export interface DemoOptions {
  outDir: string;
  events: number;
  seed: number;
  /** The simulated day (UTC); default a Sunday, so the weekly export at Monday 00:00 runs too. */
  day: Date;
  pgpPublicKey?: string;
  settleDelayMinutes?: number;
  print: (line: string) => void;
  decrypt?: Decrypt;
  /** Called as ticks run: ticks done of the day's total, events staged so far. */
  onProgress?: (update: { done: number; total: number; events: number }) => void;
  /** Wrap the customer sink (fault injection: a test makes a manifest disagree with its files). */
  sink?: HarnessOptions['sink'];
}

export interface DemoResult {
  connections: ConnectionVerification[];
  /** Events the stager reports it wrote into staged objects (its own count, not the generator's). */
  staged: number;
  /** Events the connections should have exported (a selected-events connection exports fewer). */
  expected: number;
  exported: number;
  duplicates: number;
  missing: number;
  /** Problems of the exported files (manifests, listings, records) plus a staged count that differs from what was sent. */
  problems: number;
  quarantined: number;
  filesWritten: string[];
  /** 0 duplicates, 0 missing and no problem: what the CLI's exit code reports. */
  ok: boolean;
}

const APP_ID = 'acme-shop';
const MINUTE = 60_000;

function demoConnections(day: Date, pgpPublicKey: string | undefined): ConnectionInput[] {
  const common = {
    appId: APP_ID,
    appName: 'Acme Shop',
    dbName: 'MoEngage Acme Shop',
    bucketRegion: 'us-east-1',
    createdAt: day.toISOString(),
  };
  return [
    {
      ...common,
      connectionId: 'conn_demo0all0events',
      connectionName: 'all-events',
      bucketName: 'acme-analytics-exports',
      folderPath: 'moengage/raw',
      events: { mode: 'ALL' },
      frequency: 'FIFTEEN_MINUTES',
      ...(pgpPublicKey ? { pgpPublicKey } : {}),
    },
    {
      ...common,
      connectionId: 'conn_demo0campaigns',
      connectionName: 'campaign-events',
      bucketName: 'acme-marketing',
      events: {
        mode: 'SELECTED',
        names: ['MOE_EMAIL_SENT', 'Email Opened', 'NOTIFICATION_CLICKED_MOE', 'PURCHASE'],
      },
      userAttributes: ['city', 'plan'],
      deviceAttributes: ['os'],
      frequency: 'DAILY',
    },
    {
      ...common,
      connectionId: 'conn_demo0weekly0arc',
      connectionName: 'weekly-archive',
      bucketName: 'acme-analytics-exports',
      folderPath: 'archive',
      events: { mode: 'ALL' },
      frequency: 'WEEKLY',
    },
  ];
}

/** The simulated day: its bounds, the settle delay, the connections as stored, and how to print. */
interface DemoDay {
  options: DemoOptions;
  dayStart: Date;
  dayEnd: Date;
  settleMs: number;
  clock: ManualClock;
  driver: Harness['driver'];
  connections: Map<string, Connection>;
}

/** What the day staged: the events sent (for the expected sets) and the stager's own counts. */
interface DemoStaging {
  staged: StagedEventRecord[];
  stagedEvents: number;
  quarantined: number;
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { print } = options;
  const dayStart = new Date(Math.floor(options.day.getTime() / 86_400_000) * 86_400_000);
  const dayEnd = new Date(dayStart.getTime() + 86_400_000);
  const settleMs = (options.settleDelayMinutes ?? 5) * MINUTE;

  print('starting local engines (DynamoDB Local, S3 emulator) ...');
  const engines = await startLocalEngines();
  try {
    const clock = new ManualClock(dayStart);
    const { driver, s3 } = await createHarness(engines, {
      clock,
      ...(options.sink ? { sink: options.sink } : {}),
    });
    for (const bucket of DEMO_BUCKETS) await engines.createBucket(bucket);
    const connections = await putDemoConnections(driver, dayStart, options);
    const day: DemoDay = { options, dayStart, dayEnd, settleMs, clock, driver, connections };
    const staging = await runDay(day);
    print(
      `staged ${staging.stagedEvents} events (${staging.quarantined} malformed records quarantined) and ran every tick of ${dayStart.toISOString().slice(0, 10)}`,
    );
    const filesWritten = await copyBuckets(s3, options.outDir);
    const verifications: ConnectionVerification[] = [];
    for (const connection of connections.values()) {
      // Everything up to the last window end the day's ticks of its frequency stand for; not up
      // to its watermark, or a connection that exported nothing (refused) would verify as complete.
      const lastWindowEnd = boundaryAtOrBefore(connection.frequency, dayEnd);
      const due = lastWindowEnd.getTime() > dayStart.getTime() ? lastWindowEnd : dayStart;
      const expected = expectedUuids(connection, staging.staged, dayStart, due);
      verifications.push(
        await verifyConnection(s3, connection, expected, { decrypt: options.decrypt ?? gpgDecrypt }),
      );
    }
    return report(day, staging, verifications, filesWritten);
  } finally {
    await engines.stop();
  }
}

const DEMO_BUCKETS = ['acme-analytics-exports', 'acme-marketing'];

async function putDemoConnections(
  driver: Harness['driver'],
  dayStart: Date,
  options: DemoOptions,
): Promise<Map<string, Connection>> {
  const connections = new Map<string, Connection>();
  for (const row of demoConnections(dayStart, options.pgpPublicKey)) {
    const connection = parseConnection(row);
    await driver.runtime.connections.put(connection);
    connections.set(connection.connectionId, connection);
    options.print(
      `connection ${connection.connectionId}: ${connection.frequency}, ${connection.events.mode} events → s3://${connection.bucketName}/${connection.folderPath ? `${connection.folderPath}_` : ''}${connection.connectionName}/${connection.pgpPublicKey ? ' (PGP)' : ''}`,
    );
  }
  return connections;
}

/** The day minute by minute: stage what arrived, change a frequency at noon, run the due ticks. */
async function runDay(day: DemoDay): Promise<DemoStaging> {
  const { options, dayStart, dayEnd, settleMs, clock } = day;
  // Arrivals: N events spread over the day, denser in the evening.
  const random = seededRandom(options.seed);
  const generate = createEventGenerator({
    appId: APP_ID,
    seed: options.seed,
    newNames: ['SUBSCRIPTION_RENEWED'],
    newNamesFrom: new Date(dayStart.getTime() + 15 * 3_600_000),
  });
  const arrivals = Array.from({ length: options.events }, () => {
    const u = random();
    return Math.floor((Math.sqrt(u) * 0.7 + u * 0.3) * (86_400_000 - 1));
  }).sort((a, b) => a - b);
  const ticks = dayTicks(dayStart, dayEnd, settleMs);
  const totalTicks = ticks.length;
  const frequencyChangeAt = dayStart.getTime() + 12 * 3_600_000;
  const staging: DemoStaging = { staged: [], stagedEvents: 0, quarantined: 0 };
  const refusals = new Set<string>();
  let next = 0;
  let redelivered = false;
  let changed = false;
  for (let t = dayStart.getTime(); t <= dayEnd.getTime() + settleMs; t += MINUTE) {
    clock.set(new Date(t));
    // Stage what arrived during the last minute, as one Kinesis batch.
    const batch: ReturnType<typeof generate>[] = [];
    while (next < arrivals.length && dayStart.getTime() + arrivals[next]! < t) {
      batch.push(generate(new Date(dayStart.getTime() + arrivals[next]!)));
      next += 1;
    }
    if (batch.length > 0) {
      // A Lambda retry delivers the same batch again (once, after 09:00): it must be staged once.
      const redeliver: boolean = !redelivered && t > dayStart.getTime() + 9 * 3_600_000;
      await stageMinute(day, staging, batch, random() < 0.02, redeliver);
      redelivered ||= redeliver;
    }
    if (!changed && t >= frequencyChangeAt) {
      await switchToDaily(day);
      changed = true;
    }
    while (ticks.length > 0 && ticks[0]!.at.getTime() <= t) {
      await runTick(day, ticks.shift()!, refusals);
      options.onProgress?.({
        done: totalTicks - ticks.length,
        total: totalTicks,
        events: staging.staged.length,
      });
    }
  }
  return staging;
}

/** Every tick of the day, in time order: each boundary of each frequency plus the settle delay. */
function dayTicks(dayStart: Date, dayEnd: Date, settleMs: number): { at: Date; frequency: Frequency }[] {
  const ticks: { at: Date; frequency: Frequency }[] = [];
  for (const frequency of ['FIFTEEN_MINUTES', 'DAILY', 'WEEKLY'] as const) {
    for (const boundary of boundariesBetween(frequency, dayStart, dayEnd)) {
      ticks.push({ at: new Date(boundary.getTime() + settleMs), frequency });
    }
  }
  return ticks.sort((a, b) => a.at.getTime() - b.at.getTime());
}

/** One minute's arrivals as one Kinesis batch (plus a malformed record now and then). */
async function stageMinute(
  day: DemoDay,
  staging: DemoStaging,
  batch: GeneratedEvent[],
  withMalformed: boolean,
  redeliver: boolean,
): Promise<void> {
  const { driver, clock } = day;
  const malformed = withMalformed ? [Buffer.from('{"app_id": "acme-shop", "event": {"event_name": ')] : [];
  await driver.resumeSequence();
  const records = driver.kinesisRecords([...batch, ...malformed]);
  const result = await driver.stageRecords(records);
  staging.stagedEvents += result.stagedEvents;
  staging.quarantined += result.quarantinedRecords;
  if (redeliver) {
    const again = await driver.stageRecords(records);
    staging.stagedEvents += again.stagedEvents;
    day.options.print(
      `re-delivered one Kinesis batch of ${records.length} records: ${again.alreadyStagedRecords} recognized as already staged`,
    );
  }
  for (const e of batch)
    staging.staged.push({ appId: e.app_id, event: e.event as ReceivedEvent, stageTime: clock.now() });
}

async function switchToDaily(day: DemoDay): Promise<void> {
  const switched = parseConnection({ ...day.connections.get('conn_demo0all0events')!, frequency: 'DAILY' });
  await day.driver.runtime.connections.put(switched);
  day.connections.set(switched.connectionId, switched);
  day.options.print(
    `${day.clock.now().toISOString()} conn_demo0all0events: frequency changed FIFTEEN_MINUTES → DAILY`,
  );
}

/** A schedule tick through the exporter; failures and refusals printed (a refusal once per reason). */
async function runTick(
  day: DemoDay,
  tick: { at: Date; frequency: Frequency },
  refusals: Set<string>,
): Promise<void> {
  const { print } = day.options;
  const run = await day.driver.tick(tick.frequency, tick.at);
  for (const x of run.exports) {
    if (x.error) {
      print(`${tick.at.toISOString()} ${x.job.connectionId}: export failed: ${(x.error as Error).message}`);
    } else if (x.outcome?.status === 'refused') {
      const { code, message } = x.outcome.diagnosis;
      // Once per connection and reason: a refused connection is refused at every tick.
      if (!refusals.has(`${x.job.connectionId} ${code}`)) {
        refusals.add(`${x.job.connectionId} ${code}`);
        print(`${tick.at.toISOString()} ${x.job.connectionId}: refused (${code}): ${message}`);
      }
    }
  }
  const committed = run.exports.filter((x) => x.outcome?.status === 'committed').length;
  if (tick.frequency !== 'FIFTEEN_MINUTES' || committed === 0) {
    print(
      `${tick.at.toISOString()} ${tick.frequency} tick: window end ${run.tick.windowEnd.toISOString()}, ${run.tick.connections} job(s), ${committed} committed`,
    );
  }
}

/** Copy the customer buckets to the output folder, keeping keys. */
async function copyBuckets(s3: Harness['s3'], outDir: string): Promise<string[]> {
  const filesWritten: string[] = [];
  for (const bucket of DEMO_BUCKETS) {
    for (const file of await readBucket(s3, bucket)) {
      const path = join(outDir, bucket, file.key);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, file.body);
      filesWritten.push(path);
    }
  }
  return filesWritten;
}

/** The files per connection, the totals, and the verdict. */
function report(
  day: DemoDay,
  staging: DemoStaging,
  verifications: ConnectionVerification[],
  filesWritten: string[],
): DemoResult {
  const { print } = day.options;
  const { stagedEvents, quarantined } = staging;
  const stagingProblem =
    stagedEvents === staging.staged.length
      ? undefined
      : `the stager reports ${stagedEvents} events staged, but ${staging.staged.length} were sent`;
  print('');
  print(`${'key'.padEnd(92)} ${'records'.padStart(8)} ${'bytes'.padStart(9)}`);
  for (const v of verifications) {
    print(
      `s3://${day.connections.get(v.connectionId)!.bucketName}  (${v.connectionId}, ${v.manifests.length} windows)`,
    );
    for (const f of v.files) {
      print(`  ${f.key.padEnd(90)} ${String(f.records).padStart(8)} ${String(f.bytes).padStart(9)}`);
    }
    for (const p of v.problems) print(`  ! ${p}`);
  }
  print(`output copied to ${day.options.outDir} (${filesWritten.length} objects)`);

  if (stagingProblem) print(`! ${stagingProblem}`);
  const total = verifications.reduce(
    (acc, v) => ({
      expected: acc.expected + v.expected,
      exported: acc.exported + v.exported,
      duplicates: acc.duplicates + v.duplicates + v.unexpected,
      missing: acc.missing + v.missing,
      problems: acc.problems + v.problems.length,
    }),
    { expected: 0, exported: 0, duplicates: 0, missing: 0, problems: stagingProblem ? 1 : 0 },
  );
  print(
    `verified: ${stagedEvents} staged, ${total.expected} expected, ${total.exported} exported, ${total.duplicates} duplicates, ${total.missing} missing, ${total.problems} problems`,
  );
  const ok = total.duplicates === 0 && total.missing === 0 && total.problems === 0;
  return { connections: verifications, staged: stagedEvents, ...total, quarantined, filesWritten, ok };
}
