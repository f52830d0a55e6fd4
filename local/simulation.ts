/**
 * The exactly-once simulation (docs/simulation.md, docs/product.md#exactly-once-windows).
 *
 * A seeded, deterministic run of N simulated days on the real local engines,
 * driven by a ManualClock through a LocalDriver: several connections (two apps,
 * every frequency, ALL and SELECTED events, attribute projection, one created
 * mid-run), random Kinesis batches on two shards (offline events with old
 * event_time, re-delivered batches, stager crashes at every step and retries
 * before and after the horizon guard), every schedule tick at boundary + settle
 * delay (some delayed, some fired twice), random frequency changes, pauses and
 * resumes, group jobs (the connections of one app due at one tick, exported together with
 * shared staged reads, a failed member retried alone), SQS-style duplicate deliveries (two
 * exporters racing on one job) and
 * failures injected into every exporter step: S3 503 SlowDown mid-upload or
 * after it, DynamoDB throttling before or after the write, conditional checks
 * failing, crashes before and after the commit and at any other call, a time
 * budget running out between parts, a slow exporter whose lease expires while
 * a rival finishes its window. Failed attempts are retried as Lambda and SQS
 * would, until they succeed.
 *
 * At the end every connection is caught up by fault-free ticks, and everything
 * is checked from the stored objects: the staging bucket holds every generated
 * event exactly once (with a stage time `T` within its batch's attempts); each
 * connection's data files hold exactly the events of its app that match its
 * selection with `createdAt <= T < final watermark`, projected as configured;
 * manifests are numbered 1..n without gap or repeat, tile [createdAt, final
 * watermark), and their counts, sizes and SHA-256 match the stored objects;
 * usage counters and window history agree with the files.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  DeleteTableCommand,
  DynamoDBClient,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-dynamodb';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { FREQUENCIES, type Frequency, TABLES } from '../lambdas/definitions.ts';
import { type Connection, type ConnectionInput, parseConnection } from '../lambdas/domain/connection.ts';
import type { WindowManifest } from '../lambdas/domain/manifest.ts';
import { connectionPrefix, exportDayFolder } from '../lambdas/domain/object-keys.ts';
import { SLOT_MS, slotStartOf } from '../lambdas/domain/staging-layout.ts';
import { boundariesBetween, boundaryAtOrBefore } from '../lambdas/domain/windows.ts';
import type {
  ExportJob,
  ExportSink,
  ExportStateStore,
  StagingLedger,
  StagingStore,
} from '../lambdas/ports/index.ts';
import { jobConnectionIds } from '../lambdas/ports/index.ts';
import { dispatchTick } from '../lambdas/usecases/dispatch-tick.ts';
import type { ExportJobRun } from '../lambdas/usecases/export-job.ts';
import { type IncomingRecord, stageBatch } from '../lambdas/usecases/stage-batch.ts';
import { ManualClock } from './clock.ts';
import { isBucketRefusal, withCustomerBuckets } from './customer-buckets.ts';
import type { LocalDriver } from './driver.ts';
import { createTable, type LocalEngines } from './engines.ts';
import { createEventGenerator, type GeneratedEvent, seededRandom } from './events.ts';
import {
  createHarness,
  gzipRecords,
  isDataKey,
  isManifestKey,
  readBucket,
  type StoredFile,
} from './harness.ts';
import { DRILL_KMS_KEY, type DrillStep, drillBucket, planOperatorDrills } from './operator-drills.ts';
import { readStagedLines } from './staged-segments.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface SimulationOptions {
  engines: LocalEngines;
  seed: number;
  days: number;
  /**
   * Distinguishes this run's apps, connections, shards and bucket from other runs on the same
   * engines (lowercase letters, digits, '-'); default `s<seed>`.
   */
  runId?: string;
  /** Called after each scheduled tick: ticks run of the total scheduled, events generated so far. */
  onProgress?: (update: { done: number; total: number; events: number }) => void;
  /** Start of the simulated time (default: Sunday 2026-11-01 plus `seed % 24` hours). */
  start?: Date;
  /** Mean minutes between two Kinesis batches of one app (default 20). */
  batchIntervalMinutes?: number;
  /** Largest number of events in one batch (default 25). */
  maxBatchEvents?: number;
  /** Probability that a step (stager attempt, tick, export attempt) has a failure injected (default 0.3). */
  faultRate?: number;
  /** Mean hours between two frequency changes of one connection (default 20). */
  frequencyChangeEveryHours?: number;
  /** Mean hours between two pauses of one connection (default 36). */
  pauseEveryHours?: number;
  /** Uncompressed size at which data parts are split (default 48 KiB, so windows have several parts). */
  partSizeBytes?: number;
  /** Operator drills: every row field wrong for a while, then fixed (local/operator-drills.ts; default on). */
  operatorDrills?: boolean;
  /** Progress lines (one per simulated day, and the injected faults at the end). */
  log?: (line: string) => void;
}

export interface SimulationSummary {
  connections: number;
  /** Distinct events generated and staged. */
  events: number;
  /** Data files in the customer bucket. */
  files: number;
  /** Extra copies of expected events, plus exported events that were not expected at all. */
  duplicates: number;
  /** Expected events found in no data file. */
  missing: number;
}

export interface ConnectionOutcome {
  connectionId: string;
  frequency: Frequency;
  expected: number;
  exported: number;
  duplicates: number;
  unexpected: number;
  missing: number;
  files: number;
  manifests: number;
  watermark: string;
}

export interface SimulationResult extends SimulationSummary {
  /** Manifests read back (all connections). */
  manifests: number;
  /** Every violated check, in words (manifest, staging, record shape, catch-up, usage); empty when all hold. */
  problems: string[];
  /** How many failures of each kind were injected and actually fired. */
  injected: Record<string, number>;
  perConnection: ConnectionOutcome[];
  stagerAttempts: number;
  exportAttempts: number;
  /** Simulated time at the end. */
  end: Date;
}

// ---------------------------------------------------------------- injected errors

/** What the SDK throws for an S3 503 SlowDown. */
export function slowDownError(): S3ServiceException {
  return new S3ServiceException({
    name: 'SlowDown',
    $fault: 'server',
    $metadata: { httpStatusCode: 503 },
    message: 'Please reduce your request rate.',
  });
}

/** What the SDK throws when DynamoDB throttles. */
export function throttlingError(): ProvisionedThroughputExceededException {
  return new ProvisionedThroughputExceededException({
    message: 'The level of configured provisioned throughput for the table was exceeded.',
    $metadata: { httpStatusCode: 400 },
  });
}

/** A crash: the process is gone; nothing after this point of the attempt runs. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

/** Read part of a body, as an upload that fails midway does, and stop reading it. */
export async function consumePartly(body: Readable, chunks = 1): Promise<number> {
  let bytes = 0;
  let seen = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    seen += 1;
    if (seen >= chunks) break;
  }
  return bytes;
}

// ---------------------------------------------------------------- fault plans

type StagerFault = 'ledger-before' | 'ledger-after' | 'object-before' | 'object-after' | 'exists-503';

const STAGER_FAULTS: readonly StagerFault[] = [
  'ledger-before',
  'ledger-after',
  'object-before',
  'object-after',
  'exists-503',
];

type ExportFault =
  | 's3-503-mid-upload'
  | 's3-503-after-upload'
  | 'dynamo-throttle'
  | 'dynamo-lost-response'
  | 'dynamo-condition-fails'
  | 'crash-before-commit'
  | 'crash-after-commit'
  | 'crash-at-step'
  | 'budget-runs-out'
  | 'slow-lease-expiry';

const EXPORT_FAULTS: readonly ExportFault[] = [
  's3-503-mid-upload',
  's3-503-after-upload',
  'dynamo-throttle',
  'dynamo-lost-response',
  'dynamo-condition-fails',
  'crash-before-commit',
  'crash-after-commit',
  'crash-at-step',
  'budget-runs-out',
  'slow-lease-expiry',
];

interface StagerAttempt {
  kind: 'stager';
  fault?: StagerFault;
  /** The fault fires on this call of its kind (1-based). */
  at: number;
  calls: { ledger: number; object: number; exists: number };
  fired: boolean;
}

interface ExportAttempt {
  kind: 'export';
  job: ExportJob;
  fault?: ExportFault;
  at: number;
  /** Calls to the state store and the sink so far. */
  calls: number;
  sinkCalls: number;
  commitCalls: number;
  dataParts: number;
  /** Drawn when the attempt starts, so racing attempts never draw from the generator mid-flight. */
  chunksBeforeFailure: number;
  stallMs: number;
  dead: boolean;
  fired: boolean;
}

type Attempt = StagerAttempt | ExportAttempt;

// ---------------------------------------------------------------- the agenda

type Action =
  | { kind: 'arrival'; shard: number; events: GeneratedEvent[] }
  | { kind: 'stage'; shard: string }
  | { kind: 'redeliver'; shard: string; records: IncomingRecord[] }
  | { kind: 'tick'; frequency: Frequency; scheduledTime: Date; duplicate: boolean }
  | { kind: 'job'; job: ExportJob; failures: number }
  | { kind: 'create'; connectionId: string }
  | { kind: 'change-frequency'; connectionId: string; step: 1 | 2 }
  | { kind: 'pause'; connectionId: string }
  | { kind: 'resume'; connectionId: string }
  | { kind: 'operator'; step: DrillStep };

interface Scheduled {
  at: number;
  order: number;
  action: Action;
}

class Agenda {
  private readonly items: Scheduled[] = [];
  private order = 0;

  add(at: number, action: Action): void {
    const item = { at, order: this.order++, action };
    // Binary search for the insertion point: (at, order) ascending.
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = this.items[mid]!;
      if (other.at < at || (other.at === at && other.order < item.order)) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, item);
  }

  next(): Scheduled | undefined {
    return this.items.shift();
  }

  get size(): number {
    return this.items.length;
  }
}

// ---------------------------------------------------------------- the simulated platform

interface ShardState {
  shardId: string;
  batches: StagedBatch[];
  busy: boolean;
}

interface StagedBatch {
  records: IncomingRecord[];
  events: GeneratedEvent[];
  firstAttemptAt?: number;
  stagedAt?: number;
  failures: number;
}

interface SimConnection {
  input: ConnectionInput;
  /** Put into the table at this time (createdAt). */
  createAt: number;
}

const SELECTED_SHOP = ['PURCHASE', 'ADD_TO_CART', 'MOE_EMAIL_SENT', 'Email Opened'];
const SELECTED_CAMPAIGNS = ['MOE_EMAIL_SENT', 'Email Opened', 'NOTIFICATION_CLICKED_MOE'];
const SELECTED_NEWS = ['NOTIFICATION_RECEIVED_MOE', 'Notification Clicked', 'SEARCH', 'BREAKING_NEWS_READ'];

function simConnections(runId: string, start: number, random: () => number): SimConnection[] {
  const shop = `sim-${runId}-shop`;
  const news = `sim-${runId}-news`;
  const common = {
    bucketName: bucketOf(runId),
    bucketRegion: 'us-east-1',
    createdAt: new Date(start).toISOString(),
  };
  const later = start + Math.floor((2 + random() * 14) * HOUR);
  return [
    {
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-all-quarter`,
        appId: shop,
        appName: 'Sim Shop',
        dbName: 'MoEngage Sim Shop',
        connectionName: 'all-events',
        folderPath: 'raw/events',
        events: { mode: 'ALL' },
        frequency: 'FIFTEEN_MINUTES',
      },
    },
    {
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-selected-daily`,
        appId: shop,
        appName: 'Sim Shop',
        dbName: 'MoEngage Sim Shop',
        connectionName: 'purchases',
        events: { mode: 'SELECTED', names: SELECTED_SHOP },
        userAttributes: ['city', 'plan'],
        deviceAttributes: ['os'],
        frequency: 'DAILY',
      },
    },
    {
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-news-weekly`,
        appId: news,
        appName: 'Sim News',
        dbName: 'MoEngage Sim News',
        connectionName: 'news-archive',
        events: { mode: 'ALL' },
        frequency: 'WEEKLY',
      },
    },
    {
      // A second shop connection every 15 minutes: on time, it shares a group job (and one read
      // of the staged data) with all-quarter.
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-shop-campaigns`,
        appId: shop,
        appName: 'Sim Shop',
        dbName: 'MoEngage Sim Shop',
        connectionName: 'campaigns',
        events: { mode: 'SELECTED', names: SELECTED_CAMPAIGNS },
        deviceAttributes: [],
        frequency: 'FIFTEEN_MINUTES',
      },
    },
    {
      createAt: later,
      input: {
        ...common,
        createdAt: new Date(later).toISOString(),
        connectionId: `conn_${runId}-news-push`,
        appId: news,
        appName: 'Sim News',
        dbName: 'MoEngage Sim News',
        connectionName: 'push-engagement',
        folderPath: 'crm',
        events: { mode: 'SELECTED', names: SELECTED_NEWS },
        userAttributes: [],
        deviceAttributes: ['os', 'app_version'],
        frequency: 'FIFTEEN_MINUTES',
      },
    },
  ];
}

function bucketOf(runId: string): string {
  return `sim-${runId}`.slice(0, 63);
}

/** The selection and projection a connection must apply, written independently of the exporter's code. */
function expectedRecordEvent(
  connection: Connection,
  event: Record<string, unknown>,
): Record<string, unknown> | undefined {
  if (connection.events.mode === 'SELECTED') {
    const names = connection.events.names;
    if (!names.includes(String(event.event_name)) && !names.includes(String(event.event_code))) {
      return undefined;
    }
  }
  const project = (value: unknown, keep: 'ALL' | readonly string[], id: string): unknown => {
    if (keep === 'ALL' || value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).filter(([k]) => k === id || keep.includes(k)),
    );
  };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (key === 'user_attributes') out[key] = project(value, connection.userAttributes, 'moengage_user_id');
    else if (key === 'device_attributes')
      out[key] = project(value, connection.deviceAttributes, 'moengage_device_id');
    else out[key] = value;
  }
  return out;
}

function pickOne<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min));
}

/** Exponentially distributed delay with the given mean (a Poisson process). */
function exponential(random: () => number, mean: number): number {
  return Math.max(1000, Math.floor(-Math.log(1 - random()) * mean));
}

/**
 * Run one simulation. It creates its own three tables on the engines (named after the run), so
 * runs never see each other's connections — a dispatcher lists every connection of its table —
 * and several runs may share one engines instance, even concurrently; the tables are deleted at
 * the end.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  const runId = options.runId ?? `s${options.seed}`;
  if (!/^[a-z0-9-]{1,40}$/.test(runId)) throw new Error('runId must be 1-40 of a-z, 0-9 and "-"');
  const { engines } = options;
  const tables = {
    connections: `${engines.tables.connections}-${runId}`,
    exportState: `${engines.tables.exportState}-${runId}`,
    stagingLedger: `${engines.tables.stagingLedger}-${runId}`,
  };
  const dynamo = new DynamoDBClient({
    region: engines.region,
    endpoint: engines.dynamoEndpoint,
    credentials: engines.credentials,
  });
  try {
    await Promise.all([
      createTable(dynamo, TABLES[0], tables.connections),
      createTable(dynamo, TABLES[1], tables.exportState),
      createTable(dynamo, TABLES[2], tables.stagingLedger),
    ]);
    return await simulate(options, runId, tables);
  } finally {
    for (const name of Object.values(tables)) {
      await dynamo.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
    }
    dynamo.destroy();
  }
}

async function simulate(
  options: SimulationOptions,
  runId: string,
  tables: { connections: string; exportState: string; stagingLedger: string },
): Promise<SimulationResult> {
  // Its own staging bucket too: listing a window's hours stays as fast as in a fresh deployment.
  const stagingBucket = `${bucketOf(runId)}-staging`;
  await options.engines.createBucket(stagingBucket);
  // The world (events, arrivals, ticks, edits) comes from one generator and is the same on every run of
  // a seed; faults come from another, whose draws also depend on how racing exporters interleave.
  const world = seededRandom(options.seed * 104_729 + 3);
  const random = seededRandom(options.seed * 7919 + 17);
  const faultRate = options.faultRate ?? 0.3;
  // A Sunday plus up to a day: even a one-day run crosses a Monday 00:00 (daily and weekly windows).
  const start = options.start?.getTime() ?? Date.parse('2026-11-01T00:00:00Z') + (options.seed % 24) * HOUR;
  const end = start + options.days * DAY;
  const clock = new ManualClock(new Date(start));
  const log = options.log ?? (() => undefined);
  const injected: Record<string, number> = {};
  const problems: string[] = [];
  const fired = (name: string) => {
    injected[name] = (injected[name] ?? 0) + 1;
  };

  // ------------------------------------------------------------ fault-injecting wrappers
  const attempts = new AsyncLocalStorage<Attempt>();
  let faultsEnabled = true;
  const exportAttempt = (): ExportAttempt | undefined => {
    const a = attempts.getStore();
    return a?.kind === 'export' ? a : undefined;
  };
  const stagerAttempt = (): StagerAttempt | undefined => {
    const a = attempts.getStore();
    return a?.kind === 'stager' ? a : undefined;
  };

  let realState: ExportStateStore | undefined;
  const stateMethods = [
    'get',
    'initialize',
    'acquireLease',
    'renewLease',
    'saveCursor',
    'commitWindow',
    'releaseLease',
    'recordError',
    'resetWatermark',
    'repinWindow',
    'getCommittedWindow',
    'nextCommittedWindowEnd',
  ] as const;
  const conditional = new Set(['acquireLease', 'renewLease', 'saveCursor', 'commitWindow', 'repinWindow']);
  const faultyState = {} as ExportStateStore;
  for (const method of stateMethods) {
    (faultyState as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      const real = realState!;
      const call = () => (real[method] as (...a: unknown[]) => Promise<unknown>).apply(real, args);
      const a = exportAttempt();
      if (!a) return call();
      if (a.dead) throw new SimulatedCrash(`exporter already crashed (${method} not reached)`);
      a.calls += 1;
      if (method === 'commitWindow') a.commitCalls += 1;
      const fault = a.fired ? undefined : a.fault;
      if (fault === 'crash-before-commit' && method === 'commitWindow') {
        a.fired = true;
        a.dead = true;
        fired(fault);
        throw new SimulatedCrash('crash after upload, before commit');
      }
      if (fault === 'crash-after-commit' && method === 'commitWindow') {
        a.fired = true;
        await call();
        a.dead = true;
        fired(fault);
        throw new SimulatedCrash('crash after commit, before the job was acknowledged');
      }
      if (a.calls === a.at) {
        if (fault === 'dynamo-throttle') {
          a.fired = true;
          fired(fault);
          throw throttlingError();
        }
        if (fault === 'dynamo-lost-response') {
          a.fired = true;
          await call();
          fired(fault);
          throw throttlingError();
        }
        if (fault === 'crash-at-step') {
          a.fired = true;
          a.dead = true;
          fired(fault);
          throw new SimulatedCrash(`crash before ${method}`);
        }
      }
      if (fault === 'dynamo-condition-fails' && conditional.has(method) && a.calls >= a.at) {
        a.fired = true;
        fired(fault);
        return method === 'acquireLease' ? undefined : false;
      }
      return call();
    };
  }

  let leaseMs = 5 * MINUTE;
  let driver!: LocalDriver;
  const faultySink = (real: ExportSink): ExportSink => ({
    exists: (target, key) => real.exists?.(target, key) ?? Promise.resolve(false),
    async putObject(target, key, body, contentType, options) {
      const a = exportAttempt();
      if (!a) return real.putObject(target, key, body, contentType, options);
      if (a.dead) throw new SimulatedCrash('exporter already crashed (upload not reached)');
      a.calls += 1;
      a.sinkCalls += 1;
      const fault = a.fired ? undefined : a.fault;
      if (fault === 's3-503-mid-upload' && a.sinkCalls === a.at) {
        a.fired = true;
        fired(fault);
        await consumePartly(body, a.chunksBeforeFailure);
        throw slowDownError();
      }
      if (fault === 's3-503-after-upload' && a.sinkCalls === a.at) {
        a.fired = true;
        await real.putObject(target, key, body, contentType, options);
        fired(fault);
        throw slowDownError();
      }
      if (fault === 'crash-at-step' && a.calls === a.at) {
        a.fired = true;
        a.dead = true;
        fired(fault);
        throw new SimulatedCrash(`crash before writing ${key}`);
      }
      if (fault === 'slow-lease-expiry' && a.sinkCalls === a.at) {
        // This exporter stalls past its lease; a redelivered copy of its job takes over meanwhile.
        a.fired = true;
        fired(fault);
        clock.advance(leaseMs + a.stallMs);
        await runExport(a.job, undefined, 'rival of a stalled exporter');
      }
      // A stalled exporter's upload is abandoned once its lease's deadline passed (the fence).
      const stored = await real.putObject(target, key, body, contentType, options);
      if (isDataKey(key)) a.dataParts += 1;
      return stored;
    },
  });

  const harness = await createHarness(options.engines, {
    clock,
    config: {
      tables,
      stagingBucket,
      partSizeBytes: options.partSizeBytes ?? 48 * 1024,
      kmsKeyAllowlist: [DRILL_KMS_KEY],
    },
    // The customer's bucket refuses a row that names its region, owner or role wrongly, as AWS does.
    sink: (real) => faultySink(withCustomerBuckets(real, [drillBucket(bucketOf(runId))])),
    exportOverrides: {
      state: faultyState,
      // A crashed exporter enqueues nothing (no continuation, no retry of a group's failed member).
      jobs: {
        async enqueue(jobs) {
          if (exportAttempt()?.dead)
            throw new SimulatedCrash('exporter already crashed (enqueue not reached)');
          await driver.queue.enqueue(jobs);
        },
      },
      // The budget fault: time runs out after the first part, so the window continues in another job.
      remainingTimeMs: () => {
        const a = exportAttempt();
        if (!a || a.fired || a.fault !== 'budget-runs-out' || a.dataParts < a.at) return 15 * MINUTE;
        a.fired = true;
        fired('budget-runs-out');
        return 0;
      },
      reserveMs: 60_000,
    },
  });
  driver = harness.driver;
  realState = driver.runtime.state;
  leaseMs = driver.runtime.exportDeps().settings.leaseMs;
  const { s3, config } = harness;
  const settleMs = config.settleDelayMinutes * MINUTE;

  const realLedger = driver.runtime.ledger;
  const realStaging = driver.runtime.staging;
  const faultyLedger: StagingLedger = {
    getCheckpoint: (shardId) => realLedger.getCheckpoint(shardId),
    async putCheckpoint(next, expectedVersion) {
      const a = stagerAttempt();
      if (a) a.calls.ledger += 1;
      if (a?.fault === 'ledger-before' && a.calls.ledger === a.at) {
        a.fired = true;
        fired(`stager-${a.fault}`);
        throw new SimulatedCrash('stager crashed before a checkpoint write');
      }
      const ok = await realLedger.putCheckpoint(next, expectedVersion);
      if (a?.fault === 'ledger-after' && a.calls.ledger === a.at) {
        a.fired = true;
        fired(`stager-${a.fault}`);
        throw new SimulatedCrash('stager crashed after a checkpoint write');
      }
      return ok;
    },
  };
  const faultyStaging: StagingStore = {
    async createObject(key, body) {
      const a = stagerAttempt();
      if (a) a.calls.object += 1;
      if (a?.fault === 'object-before' && a.calls.object === a.at) {
        a.fired = true;
        fired(`stager-${a.fault}`);
        throw new SimulatedCrash('stager crashed before writing a staged object');
      }
      const outcome = await realStaging.createObject(key, body);
      if (a?.fault === 'object-after' && a.calls.object === a.at) {
        a.fired = true;
        fired(`stager-${a.fault}`);
        throw new SimulatedCrash('stager crashed after writing objects, before the checkpoint');
      }
      return outcome;
    },
    async exists(key) {
      const a = stagerAttempt();
      if (a) a.calls.exists += 1;
      if (a?.fault === 'exists-503' && a.calls.exists === a.at) {
        a.fired = true;
        fired(`stager-${a.fault}`);
        throw slowDownError();
      }
      return realStaging.exists(key);
    },
    listPrefix: (prefix) => realStaging.listPrefix(prefix),
    readBytes: (key, range) => realStaging.readBytes(key, range),
    writeStream: (key, body) => realStaging.writeStream(key, body),
    listWindow: (appId, from, to, groupBytes) => realStaging.listWindow(appId, from, to, groupBytes),
    openObject: (key) => realStaging.openObject(key),
  };
  const stagerDeps = { ...driver.runtime.stagerDeps(), ledger: faultyLedger, store: faultyStaging };

  // ------------------------------------------------------------ the world
  const bucket = bucketOf(runId);
  await options.engines.createBucket(bucket);
  const connections = simConnections(runId, start, world);
  const apps = [...new Set(connections.map((c) => c.input.appId))];
  const generators = new Map(
    apps.map((app, i) => [
      app,
      createEventGenerator({
        appId: app,
        seed: options.seed * 31 + i,
        offlineShare: 0.1,
        newNames: ['BREAKING_NEWS_READ'],
        newNamesFrom: new Date(start + DAY / 2),
      }),
    ]),
  );
  const generated = new Map<string, { app: string; event: Record<string, unknown>; batch: StagedBatch }>();
  const shards: ShardState[] = [0, 1].map((n) => ({
    shardId: `shardId-${runId}-${String(n).padStart(3, '0')}`,
    batches: [],
    busy: false,
  }));
  for (const shard of shards) await driver.resumeSequence(shard.shardId);
  const paused = new Set<string>();
  let stagerAttempts = 0;
  let exportAttempts = 0;

  const agenda = new Agenda();
  const batchMean = (options.batchIntervalMinutes ?? 20) * MINUTE;
  for (const app of apps) {
    const generate = generators.get(app)!;
    for (let t = start + exponential(world, batchMean); t < end; t += exponential(world, batchMean)) {
      const count = 1 + Math.floor(world() * (options.maxBatchEvents ?? 25));
      const events = Array.from({ length: count }, () => generate(new Date(t)));
      agenda.add(t, { kind: 'arrival', shard: Math.floor(world() * shards.length), events });
    }
  }
  let scheduledTicks = 0;
  let ticksRun = 0;
  for (const frequency of FREQUENCIES) {
    for (const boundary of boundariesBetween(frequency, new Date(start), new Date(end))) {
      const scheduled = boundary.getTime() + settleMs;
      let runAt = scheduled;
      if (world() < faultRate / 4) {
        runAt += between(world, MINUTE, 40 * MINUTE); // the invocation is late
        fired('tick-delayed');
      }
      agenda.add(runAt, { kind: 'tick', frequency, scheduledTime: new Date(scheduled), duplicate: false });
      scheduledTicks += 1;
      if (world() < faultRate / 4) {
        agenda.add(runAt + between(world, 10_000, 3 * HOUR), {
          kind: 'tick',
          frequency,
          scheduledTime: new Date(scheduled),
          duplicate: true,
        });
      }
    }
  }
  const changeMean = (options.frequencyChangeEveryHours ?? 20) * HOUR;
  const pauseMean = (options.pauseEveryHours ?? 36) * HOUR;
  for (const c of connections) {
    const id = c.input.connectionId;
    agenda.add(c.createAt, { kind: 'create', connectionId: id });
    for (let t = c.createAt + exponential(world, changeMean); t < end; t += exponential(world, changeMean)) {
      agenda.add(t, { kind: 'change-frequency', connectionId: id, step: world() < 0.5 ? 1 : 2 });
    }
    for (let t = c.createAt + exponential(world, pauseMean); t < end; t += exponential(world, pauseMean)) {
      const resumeAt = t + between(world, 30 * MINUTE, 30 * HOUR);
      agenda.add(t, { kind: 'pause', connectionId: id });
      agenda.add(Math.min(resumeAt, end), { kind: 'resume', connectionId: id });
      t = resumeAt;
    }
  }

  if (options.operatorDrills ?? true) {
    const drills = await planOperatorDrills({
      random: seededRandom(options.seed * 6151 + 5),
      connectionIds: connections.filter((c) => c.createAt === start).map((c) => c.input.connectionId),
      bucketName: bucket,
      start,
      end,
    });
    for (const step of drills) agenda.add(step.at, { kind: 'operator', step });
  }

  // ------------------------------------------------------------ actors
  const repository = driver.runtime.connections;

  async function updateConnection(id: string, change: (c: Connection) => Partial<ConnectionInput>) {
    const raw = await repository.getRaw(id);
    if (!raw) return undefined;
    const current = parseConnection(raw);
    const next = parseConnection({ ...current, ...change(current), updatedAt: clock.now().toISOString() });
    await repository.put(next);
    return next;
  }

  function schedule(at: number, action: Action) {
    agenda.add(Math.max(at, clock.now().getTime()), action);
  }

  /** Move what the exporter or the dispatcher enqueued into the agenda: SQS delivers it shortly. */
  async function collectJobs() {
    await driver.queue.drain(async (job) => {
      const at = clock.now().getTime() + between(random, 1000, 90_000);
      schedule(at, { kind: 'job', job, failures: 0 });
      if (faultsEnabled && random() < faultRate / 6) {
        // At-least-once delivery: the same message again, later.
        fired('job-delivered-twice');
        schedule(at + between(random, 1000, 2 * HOUR), { kind: 'job', job, failures: 0 });
      }
    });
  }

  function exportPlan(failures: number): ExportAttempt['fault'] {
    // A job that failed often goes through eventually (SQS would move it to the DLQ; here it must succeed).
    if (!faultsEnabled || failures >= 6 || random() >= faultRate) return undefined;
    // Half the time a kind that has not fired yet in this run: some only can where a window has
    // several parts (budget-runs-out), and a group job is one attempt for several connections,
    // so uniform draws alone leave rare kinds out of many runs.
    const unfired = EXPORT_FAULTS.filter((fault) => !injected[fault]);
    return unfired.length > 0 && random() < 0.5 ? pickOne(random, unfired) : pickOne(random, EXPORT_FAULTS);
  }

  async function runExport(
    job: ExportJob,
    fault: ExportAttempt['fault'],
    label: string,
  ): Promise<{ run?: ExportJobRun; error?: unknown }> {
    exportAttempts += 1;
    const attempt: ExportAttempt = {
      kind: 'export',
      job,
      fault,
      at:
        !fault || fault === 'budget-runs-out'
          ? 1
          : 1 + Math.floor(random() * (fault === 'crash-at-step' ? 12 : 3)),
      calls: 0,
      sinkCalls: 0,
      commitCalls: 0,
      dataParts: 0,
      chunksBeforeFailure: fault === 's3-503-mid-upload' ? 1 + Math.floor(random() * 3) : 1,
      stallMs: fault === 'slow-lease-expiry' ? between(random, MINUTE, 5 * MINUTE) : MINUTE,
      dead: false,
      fired: false,
    };
    if (job.connectionIds) fired('group-job');
    try {
      // As the exporter Lambda runs it: a group's members concurrently, with shared staged reads.
      const run = await attempts.run(attempt, () => driver.runJob(job));
      for (const member of run.members) {
        if (
          member.error !== undefined &&
          !(member.error instanceof SimulatedCrash) &&
          !isInjected(member.error) &&
          !isBucketRefusal(member.error)
        ) {
          problems.push(
            `${label} ${member.connectionId} ${job.windowEnd}: unexpected error ${String(member.error)}`,
          );
        }
      }
      if (run.retried.length > 0) fired('group-member-retried-alone');
      return { run };
    } catch (error) {
      problems.push(
        `${label} ${jobConnectionIds(job).join(',')} ${job.windowEnd}: job threw ${String(error)}`,
      );
      return { error };
    }
  }

  async function runJob(job: ExportJob, failures: number) {
    const race = faultsEnabled && random() < faultRate / 5;
    const runs = race
      ? await Promise.all([
          runExport(job, exportPlan(failures), 'racing exporter'),
          runExport(job, exportPlan(failures), 'racing exporter'),
        ])
      : [await runExport(job, exportPlan(failures), 'exporter')];
    if (race) fired('two-exporters-racing');
    await collectJobs();
    if (runs.some((r) => r.error !== undefined || r.run?.redeliver)) {
      // Not acknowledged: SQS redelivers after the visibility timeout.
      const delay = random() < 0.1 ? between(random, HOUR, 6 * HOUR) : between(random, MINUTE, 20 * MINUTE);
      schedule(clock.now().getTime() + delay, { kind: 'job', job, failures: failures + 1 });
    }
  }

  async function stageHead(shard: ShardState) {
    const batch = shard.batches[0];
    if (!batch) {
      shard.busy = false;
      return;
    }
    shard.busy = true;
    stagerAttempts += 1;
    batch.firstAttemptAt ??= clock.now().getTime();
    const fault =
      faultsEnabled && batch.failures < 6 && random() < faultRate
        ? pickOne(random, STAGER_FAULTS)
        : undefined;
    const attempt: StagerAttempt = {
      kind: 'stager',
      fault,
      at: 1 + Math.floor(random() * 2),
      calls: { ledger: 0, object: 0, exists: 0 },
      fired: false,
    };
    try {
      await attempts.run(attempt, () =>
        stageBatch({ shardId: shard.shardId, records: batch.records }, stagerDeps),
      );
    } catch (error) {
      if (!(error instanceof SimulatedCrash) && !isInjected(error)) {
        problems.push(`stager ${shard.shardId}: unexpected error ${String(error)}`);
      }
      batch.failures += 1;
      // Lambda retries the same batch: usually soon, sometimes after the horizon guard (a fresh T).
      const delay = random() < 0.7 ? between(random, 1000, 90_000) : between(random, 3 * MINUTE, 45 * MINUTE);
      schedule(clock.now().getTime() + delay, { kind: 'stage', shard: shard.shardId });
      return;
    }
    batch.stagedAt = clock.now().getTime();
    shard.batches.shift();
    if (faultsEnabled && random() < faultRate / 3) {
      schedule(clock.now().getTime() + between(random, 0, 30 * MINUTE), {
        kind: 'redeliver',
        shard: shard.shardId,
        records: batch.records,
      });
    }
    schedule(clock.now().getTime() + 1000, { kind: 'stage', shard: shard.shardId });
  }

  async function perform(action: Action) {
    switch (action.kind) {
      case 'arrival': {
        const shard = shards[action.shard]!;
        const batch: StagedBatch = {
          records: driver.kinesisRecords(action.events, shard.shardId),
          events: action.events,
          failures: 0,
        };
        for (const e of action.events) {
          const uuid = String(e.event.event_uuid);
          if (generated.has(uuid)) problems.push(`generator repeated event_uuid ${uuid}`);
          generated.set(uuid, { app: e.app_id, event: e.event, batch });
        }
        shard.batches.push(batch);
        if (!shard.busy) await stageHead(shard);
        return;
      }
      case 'stage':
        return stageHead(shards.find((s) => s.shardId === action.shard)!);
      case 'redeliver': {
        // The same Kinesis batch handed to the stager again (Lambda retry after a timeout).
        fired('stager-batch-delivered-twice');
        const again = await driver.stageRecords(action.records, action.shard);
        if (again.stagedEvents > 0 || again.objectsCreated.length > 0) {
          problems.push(`a re-delivered batch on ${action.shard} staged ${again.stagedEvents} events again`);
        }
        return;
      }
      case 'tick': {
        const tick = await dispatchTick(
          { frequency: action.frequency, scheduledTime: action.scheduledTime },
          driver.runtime.dispatchDeps(),
          settleMs,
        );
        if (tick.invalidConnections.length > 0) {
          problems.push(`invalid connection rows: ${tick.invalidConnections.join(', ')}`);
        }
        await collectJobs();
        return;
      }
      case 'job':
        return runJob(action.job, action.failures);
      case 'create': {
        const c = connections.find((x) => x.input.connectionId === action.connectionId)!;
        await repository.put(parseConnection(c.input));
        return;
      }
      case 'change-frequency': {
        const next = await updateConnection(action.connectionId, (c) => ({
          frequency: FREQUENCIES[(FREQUENCIES.indexOf(c.frequency) + action.step) % FREQUENCIES.length]!,
        }));
        if (next) fired('frequency-change');
        return;
      }
      case 'pause':
        paused.add(action.connectionId);
        fired('pause');
        await updateConnection(action.connectionId, () => ({ status: 'PAUSED' }));
        return;
      case 'resume':
        if (!paused.delete(action.connectionId)) return;
        await updateConnection(action.connectionId, () => ({ status: 'ACTIVE' }));
        return;
      case 'operator':
        fired(action.step.label);
        await updateConnection(action.step.connectionId, () => action.step.patch);
        return;
    }
  }

  // ------------------------------------------------------------ run
  let nextDayLog = start + DAY;
  for (let item = agenda.next(); item; item = agenda.next()) {
    if (faultsEnabled && item.at >= end) {
      // Arrivals and ticks stop at the end; retries still in flight complete without new faults.
      faultsEnabled = false;
    }
    // Time only moves forward: an action due while an exporter stalled runs late (a delayed action).
    if (item.at > clock.now().getTime()) clock.set(new Date(item.at));
    while (clock.now().getTime() >= nextDayLog && nextDayLog <= end) {
      log(
        `sim ${runId}: day ${Math.round((nextDayLog - start) / DAY)} of ${options.days} done (${generated.size} events, ${exportAttempts} export attempts)`,
      );
      nextDayLog += DAY;
    }
    await perform(item.action);
    if (item.action.kind === 'tick' && !item.action.duplicate) {
      ticksRun += 1;
      options.onProgress?.({ done: ticksRun, total: scheduledTicks, events: generated.size });
    }
  }
  faultsEnabled = false;

  // ------------------------------------------------------------ catch up without faults
  for (const id of [...paused]) {
    paused.delete(id);
    await updateConnection(id, () => ({ status: 'ACTIVE' }));
  }
  // Leases of crashed exporters expire; then every frequency ticks once more.
  clock.advance(leaseMs + MINUTE);
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
          problems.push(`catch-up export of ${run.job.connectionId} failed: ${String(run.error)}`);
      }
    }
  }
  const finalTime = clock.now();

  // ------------------------------------------------------------ check what was staged
  const stageTimes = new Map<string, number>();
  const slots = new Set<number>();
  for (const { batch } of generated.values())
    if (batch.firstAttemptAt !== undefined && batch.stagedAt !== undefined)
      for (let t = slotStartOf(new Date(batch.firstAttemptAt)).getTime(); t <= batch.stagedAt; t += SLOT_MS)
        slots.add(t);
  const staged = await readStagedLines(
    realStaging,
    [...slots].sort((a, b) => a - b).map((t) => new Date(t)),
  );
  for (const { line, stageTime, segmentKey: key } of staged) {
    const t = stageTime.getTime();
    const uuid = (JSON.parse(line) as { event_uuid: string }).event_uuid;
    const source = generated.get(uuid);
    if (!source) problems.push(`staged object ${key} holds an event never generated: ${uuid}`);
    else if (stageTimes.has(uuid)) problems.push(`event ${uuid} is staged twice (${key})`);
    else if (
      source.batch.firstAttemptAt === undefined ||
      source.batch.stagedAt === undefined ||
      t < source.batch.firstAttemptAt ||
      t > source.batch.stagedAt
    ) {
      problems.push(`event ${uuid} has stage time ${new Date(t).toISOString()} outside its batch's attempts`);
    }
    stageTimes.set(uuid, t);
  }
  for (const uuid of generated.keys())
    if (!stageTimes.has(uuid)) problems.push(`event ${uuid} was never staged`);

  // ------------------------------------------------------------ check every connection's files
  const perConnection: ConnectionOutcome[] = [];
  let manifestsRead = 0;
  for (const c of connections) {
    const id = c.input.connectionId;
    const connection = parseConnection((await repository.getRaw(id))!);
    const state = await realState.get(id);
    // A connection starts at the staging slot holding its creation time.
    const initial = slotStartOf(new Date(c.input.createdAt)).getTime();
    const watermark = state?.watermark.getTime() ?? initial;
    const due = boundaryAtOrBefore(connection.frequency, new Date(finalTime.getTime() - settleMs)).getTime();
    if (watermark < due) {
      problems.push(
        `${id} is not caught up: watermark ${new Date(watermark).toISOString()} < ${new Date(due).toISOString()}`,
      );
    }
    if (state?.pendingWindowEnd || state?.cursor)
      problems.push(`${id} still has a pending window after catch-up`);

    const expected = new Map<string, number>();
    for (const [uuid, source] of generated) {
      const t = stageTimes.get(uuid);
      if (source.app !== connection.appId || t === undefined || t < initial || t >= watermark) continue;
      if (expectedRecordEvent(connection, source.event)) expected.set(uuid, 0);
    }

    // Day folder by day folder: the S3 emulator fails to page through more than 1000 keys of one prefix.
    const stored: StoredFile[] = [];
    for (let day = start - DAY; day <= finalTime.getTime() + DAY; day += DAY) {
      const folder = `${connectionPrefix(connection)}export_day=${exportDayFolder(new Date(day))}/`;
      stored.push(...(await readBucket(s3, bucket, folder)));
    }
    const bodies = new Map(stored.map((f) => [f.key, f.body]));
    const dataFiles = stored.filter((f) => isDataKey(f.key));
    let exportedCount = 0;
    let unexpected = 0;
    const recordsPerFile = new Map<string, number>();
    for (const file of dataFiles) {
      const records = gzipRecords(file.body);
      recordsPerFile.set(file.key, records.length);
      const stamp = Number(/event_exports_(\d+)/.exec(file.key)?.[1]) * 1000;
      const windowEnd = new Date(stamp).toISOString();
      for (const record of records) {
        exportedCount += 1;
        const event = record.event as Record<string, unknown>;
        const uuid = String(event.event_uuid);
        const seen = expected.get(uuid);
        if (seen === undefined) {
          unexpected += 1;
          if (unexpected <= 3) problems.push(`${id}: ${file.key} holds ${uuid}, which it should not export`);
          continue;
        }
        expected.set(uuid, seen + 1);
        if (seen === 0) {
          const want = expectedRecordEvent(connection, generated.get(uuid)!.event);
          if (JSON.stringify(want) !== JSON.stringify(event)) {
            problems.push(`${id}: record ${uuid} in ${file.key} is not the event as selected/projected`);
          }
          if (
            record.export_day !== windowEnd.slice(0, 10) ||
            record.export_hour !== String(new Date(stamp).getUTCHours()) ||
            record.app_name !== connection.appName ||
            record.db_name !== connection.dbName
          ) {
            problems.push(
              `${id}: record ${uuid} in ${file.key} has a wrong frame (app/db name, export day/hour)`,
            );
          }
        }
      }
    }
    let duplicates = 0;
    let missing = 0;
    for (const n of expected.values()) {
      if (n === 0) missing += 1;
      else duplicates += n - 1;
    }

    // Manifests: 1..n, no gap, no repeat, tiling [createdAt, watermark), matching the stored files.
    const manifests = stored
      .filter((f) => isManifestKey(f.key))
      .map((f) => ({ key: f.key, manifest: JSON.parse(f.body.toString('utf8')) as WindowManifest }))
      .sort((a, b) => a.manifest.sequence - b.manifest.sequence);
    manifestsRead += manifests.length;
    const listed = new Map<string, number>();
    let previousEnd = initial;
    manifests.forEach(({ key, manifest }, i) => {
      if (manifest.sequence !== i + 1) {
        problems.push(`${id}: manifest sequence ${manifest.sequence} where ${i + 1} was expected (${key})`);
      }
      if (Date.parse(manifest.windowStart) !== previousEnd) {
        problems.push(
          `${id}: manifest ${manifest.sequence} starts at ${manifest.windowStart}, previous window ended ${new Date(previousEnd).toISOString()}`,
        );
      }
      if (Date.parse(manifest.windowEnd) <= Date.parse(manifest.windowStart)) {
        problems.push(`${id}: manifest ${manifest.sequence} has an empty or inverted window`);
      }
      previousEnd = Date.parse(manifest.windowEnd);
      let total = 0;
      for (const entry of manifest.files) {
        listed.set(entry.key, (listed.get(entry.key) ?? 0) + 1);
        total += entry.records;
        const body = bodies.get(entry.key);
        if (!body) {
          problems.push(
            `${id}: manifest ${manifest.sequence} lists ${entry.key}, which is not in the bucket`,
          );
          continue;
        }
        if (body.length !== entry.bytes || createHash('sha256').update(body).digest('hex') !== entry.sha256) {
          problems.push(
            `${id}: manifest ${manifest.sequence}: bytes or SHA-256 of ${entry.key} do not match`,
          );
        }
        if (recordsPerFile.get(entry.key) !== entry.records) {
          problems.push(`${id}: manifest ${manifest.sequence}: record count of ${entry.key} does not match`);
        }
      }
      if (total !== manifest.totalRecords)
        problems.push(`${id}: manifest ${manifest.sequence} total is wrong`);
    });
    if (previousEnd !== watermark) {
      problems.push(
        `${id}: manifests end at ${new Date(previousEnd).toISOString()}, the watermark is ${new Date(watermark).toISOString()}`,
      );
    }
    if ((state?.sequence ?? 0) !== manifests.length) {
      problems.push(`${id}: state sequence ${state?.sequence} but ${manifests.length} manifests`);
    }
    for (const file of dataFiles) {
      const n = listed.get(file.key) ?? 0;
      if (n !== 1) problems.push(`${id}: ${file.key} is listed in ${n} manifests`);
    }

    // Usage counters and window history (exact under retries).
    const usage = await driver.runtime.state.listUsage(id);
    const usageEvents = usage.reduce((n, u) => n + u.events, 0);
    const usageFiles = usage.reduce((n, u) => n + u.files, 0);
    if (usageEvents !== exportedCount || usageFiles !== dataFiles.length) {
      problems.push(
        `${id}: usage says ${usageEvents} events in ${usageFiles} files, the bucket holds ${exportedCount} in ${dataFiles.length}`,
      );
    }
    const history = await driver.runtime.state.listHistory(id);
    if (history.length !== manifests.length) {
      problems.push(`${id}: ${history.length} window history rows for ${manifests.length} manifests`);
    }

    perConnection.push({
      connectionId: id,
      frequency: connection.frequency,
      expected: expected.size,
      exported: exportedCount,
      duplicates,
      unexpected,
      missing,
      files: dataFiles.length,
      manifests: manifests.length,
      watermark: new Date(watermark).toISOString(),
    });
  }

  const injectedSummary = Object.entries(injected)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  log(`sim ${runId}: injected ${injectedSummary}`);
  return {
    connections: connections.length,
    events: generated.size,
    files: perConnection.reduce((n, c) => n + c.files, 0),
    duplicates: perConnection.reduce((n, c) => n + c.duplicates + c.unexpected, 0),
    missing: perConnection.reduce((n, c) => n + c.missing, 0),
    manifests: manifestsRead,
    problems,
    injected,
    perConnection,
    stagerAttempts,
    exportAttempts,
    end: finalTime,
  };
}

/** Errors the simulation itself injects (S3 503, DynamoDB throttling). */
function isInjected(error: unknown): boolean {
  const name = (error as { name?: unknown } | undefined)?.name;
  return name === 'SlowDown' || name === 'ProvisionedThroughputExceededException';
}

/** The one-line summary the `sim` command prints. */
export function formatSummary(summary: SimulationSummary): string {
  return `sim: ${summary.connections} connections, ${summary.events} events, ${summary.files} files, ${summary.duplicates} duplicates, ${summary.missing} missing`;
}
