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
import { createEventGenerator, seededRandom } from './events.ts';
import { createHarness, type HarnessOptions, readBucket } from './harness.ts';
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
    for (const bucket of ['acme-analytics-exports', 'acme-marketing']) await engines.createBucket(bucket);

    const connections = new Map<string, Connection>();
    for (const row of demoConnections(dayStart, options.pgpPublicKey)) {
      const connection = parseConnection(row);
      await driver.runtime.connections.put(connection);
      connections.set(connection.connectionId, connection);
      print(
        `connection ${connection.connectionId}: ${connection.frequency}, ${connection.events.mode} events → s3://${connection.bucketName}/${connection.folderPath ? `${connection.folderPath}_` : ''}${connection.connectionName}/${connection.pgpPublicKey ? ' (PGP)' : ''}`,
      );
    }

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

    const frequencyChangeAt = new Date(dayStart.getTime() + 12 * 3_600_000);
    const ticks: { at: Date; frequency: Frequency }[] = [];
    for (const frequency of ['FIFTEEN_MINUTES', 'DAILY', 'WEEKLY'] as const) {
      for (const boundary of boundariesBetween(frequency, dayStart, dayEnd)) {
        ticks.push({ at: new Date(boundary.getTime() + settleMs), frequency });
      }
    }
    ticks.sort((a, b) => a.at.getTime() - b.at.getTime());
    const totalTicks = ticks.length;

    const staged: StagedEventRecord[] = [];
    let stagedEvents = 0;
    let quarantined = 0;
    let next = 0;
    let redelivered = false;
    let changed = false;
    const refusals = new Set<string>();
    const horizon = new Date(dayEnd.getTime() + settleMs);
    for (let t = dayStart.getTime(); t <= horizon.getTime(); t += MINUTE) {
      clock.set(new Date(t));
      // Stage what arrived during the last minute, as one Kinesis batch.
      const batch: ReturnType<typeof generate>[] = [];
      while (next < arrivals.length && dayStart.getTime() + arrivals[next]! < t) {
        batch.push(generate(new Date(dayStart.getTime() + arrivals[next]!)));
        next += 1;
      }
      if (batch.length > 0) {
        const malformed =
          random() < 0.02 ? [Buffer.from('{"app_id": "acme-shop", "event": {"event_name": ')] : [];
        await driver.resumeSequence();
        const records = driver.kinesisRecords([...batch, ...malformed]);
        const result = await driver.stageRecords(records);
        stagedEvents += result.stagedEvents;
        quarantined += result.quarantinedRecords;
        // A Lambda retry delivers the same batch again: it must be staged once.
        if (!redelivered && t > dayStart.getTime() + 9 * 3_600_000) {
          const again = await driver.stageRecords(records);
          stagedEvents += again.stagedEvents;
          print(
            `re-delivered one Kinesis batch of ${records.length} records: ${again.alreadyStagedRecords} recognized as already staged`,
          );
          redelivered = true;
        }
        for (const e of batch)
          staged.push({ appId: e.app_id, event: e.event as ReceivedEvent, stageTime: new Date(t) });
      }
      if (!changed && t >= frequencyChangeAt.getTime()) {
        const switched = parseConnection({ ...connections.get('conn_demo0all0events')!, frequency: 'DAILY' });
        await driver.runtime.connections.put(switched);
        connections.set(switched.connectionId, switched);
        print(`${clock.now().toISOString()} conn_demo0all0events: frequency changed FIFTEEN_MINUTES → DAILY`);
        changed = true;
      }
      while (ticks.length > 0 && ticks[0]!.at.getTime() <= t) {
        const tick = ticks.shift()!;
        const run = await driver.tick(tick.frequency, tick.at);
        options.onProgress?.({ done: totalTicks - ticks.length, total: totalTicks, events: staged.length });
        for (const x of run.exports) {
          if (x.error) {
            print(
              `${tick.at.toISOString()} ${x.job.connectionId}: export failed: ${(x.error as Error).message}`,
            );
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
    }
    print(
      `staged ${stagedEvents} events (${quarantined} malformed records quarantined) and ran every tick of ${dayStart.toISOString().slice(0, 10)}`,
    );
    const stagingProblem =
      stagedEvents === staged.length
        ? undefined
        : `the stager reports ${stagedEvents} events staged, but ${staged.length} were sent`;

    // Copy the customer buckets to the output folder, keeping keys.
    const filesWritten: string[] = [];
    for (const bucket of ['acme-analytics-exports', 'acme-marketing']) {
      for (const file of await readBucket(s3, bucket)) {
        const path = join(options.outDir, bucket, file.key);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, file.body);
        filesWritten.push(path);
      }
    }

    const verifications: ConnectionVerification[] = [];
    for (const connection of connections.values()) {
      // Everything up to the last window end the day's ticks of its frequency stand for; not up
      // to its watermark, or a connection that exported nothing (refused) would verify as complete.
      const lastWindowEnd = boundaryAtOrBefore(connection.frequency, dayEnd);
      const due = lastWindowEnd.getTime() > dayStart.getTime() ? lastWindowEnd : dayStart;
      const expected = expectedUuids(connection, staged, dayStart, due);
      verifications.push(
        await verifyConnection(s3, connection, expected, { decrypt: options.decrypt ?? gpgDecrypt }),
      );
    }

    print('');
    print(`${'key'.padEnd(92)} ${'records'.padStart(8)} ${'bytes'.padStart(9)}`);
    for (const v of verifications) {
      print(
        `s3://${connections.get(v.connectionId)!.bucketName}  (${v.connectionId}, ${v.manifests.length} windows)`,
      );
      for (const f of v.files) {
        print(`  ${f.key.padEnd(90)} ${String(f.records).padStart(8)} ${String(f.bytes).padStart(9)}`);
      }
      for (const p of v.problems) print(`  ! ${p}`);
    }
    print(`output copied to ${options.outDir} (${filesWritten.length} objects)`);

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
  } finally {
    await engines.stop();
  }
}
