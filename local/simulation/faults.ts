/**
 * The failures the simulation injects (docs/simulation.md, "Stager" and "Exporter failures"): the
 * errors the SDKs throw, and wrappers of the product's ports that throw them — or crash — at the
 * call an attempt drew. An attempt (one stager run of a batch, one exporter run of a job) is
 * carried through the product's code in an AsyncLocalStorage, so each wrapper knows whose call
 * it sees; calls outside an attempt (the checks, the catch-up) pass through.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { STAGER_TIMEOUT_SECONDS } from '../../lambdas/definitions.ts';
import type {
  ExportJob,
  ExportSink,
  ExportStateStore,
  JobQueue,
  StagingLedger,
  StagingStore,
} from '../../lambdas/ports/index.ts';
import type { ManualClock } from '../clock.ts';
import { isDataKey } from '../harness.ts';
import { consumePartly, SimulatedCrash, slowDownError, throttlingError } from './injected-errors.ts';
import { MINUTE } from './options.ts';
import { between, pickOne } from './random.ts';
import type { Tally } from './tally.ts';

export type StagerFault =
  | 'ledger-before'
  | 'ledger-after'
  | 'object-before'
  | 'object-after'
  | 'exists-503'
  | 'timeout';

const STAGER_FAULTS: readonly StagerFault[] = [
  'ledger-before',
  'ledger-after',
  'object-before',
  'object-after',
  'exists-503',
  'timeout',
];

export type ExportFault =
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

export interface StagerAttempt {
  kind: 'stager';
  fault?: StagerFault;
  /** The fault fires on this call of its kind (1-based). */
  at: number;
  calls: { ledger: number; object: number; exists: number };
  fired: boolean;
  /** DynamoDB unavailable: every checkpoint write of the attempt fails, so it fails before its first. */
  ledgerDown?: boolean;
}

export interface ExportAttempt {
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

const STATE_METHODS = [
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

type StateMethod = (typeof STATE_METHODS)[number];

const CONDITIONAL: ReadonlySet<StateMethod> = new Set([
  'acquireLease',
  'renewLease',
  'saveCursor',
  'commitWindow',
  'repinWindow',
]);

/** What a stalled exporter needs: how long a lease lasts, and a rival that runs its job meanwhile. */
export interface Stall {
  leaseMs: () => number;
  rival: (job: ExportJob) => Promise<unknown>;
}

/**
 * Draws the faults of attempts (from the run's fault generator) and injects them through wrapped
 * ports. Each kind that fires is counted in the tally under its name (`stager-<fault>` for the stager).
 */
export class FaultInjector {
  private readonly attempts = new AsyncLocalStorage<Attempt>();
  /** Faults are drawn only while on: off from the run's end (retries in flight, the catch-up). */
  enabled = true;
  /**
   * Called when a timed-out attempt left a segment PUT in flight: the owner puts its landing
   * (landLateWrite) on the agenda, by `latest` at the latest.
   */
  onLateWrite: (key: string, latest: number) => void = () => undefined;
  /** Segment PUTs of timed-out attempts that have not landed yet, by key. */
  private readonly lateWrites = new Map<string, () => Promise<'created' | 'exists'>>();

  constructor(
    private readonly tally: Tally,
    private readonly clock: ManualClock,
    private readonly random: () => number,
    private readonly faultRate: number,
  ) {}

  /** Run `work` as `attempt`: the wrapped ports see its calls. */
  run<T>(attempt: Attempt, work: () => Promise<T>): Promise<T> {
    return this.attempts.run(attempt, work);
  }

  /** The fault of an export attempt of a job that failed `failures` times before (none often). */
  drawExportFault(failures: number): ExportFault | undefined {
    // A job that failed often goes through eventually (SQS would move it to the DLQ; here it must succeed).
    if (!this.enabled || failures >= 6 || this.random() >= this.faultRate) return undefined;
    // Half the time a kind that has not fired yet in this run: some only can where a window has
    // several parts (budget-runs-out), and a group job is one attempt for several connections,
    // so uniform draws alone leave rare kinds out of many runs.
    const unfired = EXPORT_FAULTS.filter((fault) => !this.tally.injected[fault]);
    return unfired.length > 0 && this.random() < 0.5
      ? pickOne(this.random, unfired)
      : pickOne(this.random, EXPORT_FAULTS);
  }

  /** An export attempt of `job` with `fault`, the call it fires at drawn now. */
  exportAttempt(job: ExportJob, fault: ExportFault | undefined): ExportAttempt {
    const random = this.random;
    return {
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
  }

  /** A stager attempt of a batch that failed `failures` times before, its fault drawn now. */
  stagerAttempt(failures: number): StagerAttempt {
    const fault =
      this.enabled && failures < 6 && this.random() < this.faultRate
        ? pickOne(this.random, STAGER_FAULTS)
        : undefined;
    return {
      kind: 'stager',
      fault,
      at: 1 + Math.floor(this.random() * 2),
      calls: { ledger: 0, object: 0, exists: 0 },
      fired: false,
    };
  }

  /** A stager attempt that crashes with `fault` at the first call of its kind (a forced condition). */
  forcedAttempt(fault: StagerFault): StagerAttempt {
    return { kind: 'stager', fault, at: 1, calls: { ledger: 0, object: 0, exists: 0 }, fired: false };
  }

  /** A stager attempt while DynamoDB is unavailable: it fails at its first checkpoint write. */
  ledgerDownAttempt(): StagerAttempt {
    return {
      kind: 'stager',
      at: 1,
      calls: { ledger: 0, object: 0, exists: 0 },
      fired: false,
      ledgerDown: true,
    };
  }

  /** The export attempt whose call this is, if any. */
  currentExport(): ExportAttempt | undefined {
    const a = this.attempts.getStore();
    return a?.kind === 'export' ? a : undefined;
  }

  private currentStager(): StagerAttempt | undefined {
    const a = this.attempts.getStore();
    return a?.kind === 'stager' ? a : undefined;
  }

  /** The export state store (`real` is made later, by the harness this wrapper goes into). */
  state(real: () => ExportStateStore): ExportStateStore {
    const faulty = {} as ExportStateStore;
    for (const method of STATE_METHODS) {
      (faulty as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
        this.stateCall(real(), method, args);
    }
    return faulty;
  }

  private async stateCall(real: ExportStateStore, method: StateMethod, args: unknown[]): Promise<unknown> {
    const call = () => (real[method] as (...a: unknown[]) => Promise<unknown>).apply(real, args);
    const a = this.currentExport();
    if (!a) return call();
    if (a.dead) throw new SimulatedCrash(`exporter already crashed (${method} not reached)`);
    a.calls += 1;
    if (method === 'commitWindow') a.commitCalls += 1;
    const fault = a.fired ? undefined : a.fault;
    if (fault === 'crash-before-commit' && method === 'commitWindow') {
      this.fire(a, fault, true);
      throw new SimulatedCrash('crash after upload, before commit');
    }
    if (fault === 'crash-after-commit' && method === 'commitWindow') {
      a.fired = true;
      await call();
      this.fire(a, fault, true);
      throw new SimulatedCrash('crash after commit, before the job was acknowledged');
    }
    if (a.calls === a.at) {
      if (fault === 'dynamo-throttle') {
        this.fire(a, fault);
        throw throttlingError();
      }
      if (fault === 'dynamo-lost-response') {
        a.fired = true;
        await call();
        this.fire(a, fault);
        throw throttlingError();
      }
      if (fault === 'crash-at-step') {
        this.fire(a, fault, true);
        throw new SimulatedCrash(`crash before ${method}`);
      }
    }
    if (fault === 'dynamo-condition-fails' && CONDITIONAL.has(method) && a.calls >= a.at) {
      this.fire(a, fault);
      return method === 'acquireLease' ? undefined : false;
    }
    return call();
  }

  private fire(a: ExportAttempt, fault: ExportFault, dies = false): void {
    a.fired = true;
    if (dies) a.dead = true;
    this.tally.fired(fault);
  }

  /** The customer sink: 503s mid-upload or after it, a crash before a write, a stall past the lease. */
  sink(real: ExportSink, stall: Stall): ExportSink {
    return {
      exists: (target, key) => real.exists?.(target, key) ?? Promise.resolve(false),
      putObject: async (target, key, body, contentType, options) => {
        const a = this.currentExport();
        if (!a) return real.putObject(target, key, body, contentType, options);
        if (a.dead) throw new SimulatedCrash('exporter already crashed (upload not reached)');
        a.calls += 1;
        a.sinkCalls += 1;
        const fault = a.fired ? undefined : a.fault;
        if (fault === 's3-503-mid-upload' && a.sinkCalls === a.at) {
          this.fire(a, fault);
          await consumePartly(body, a.chunksBeforeFailure);
          throw slowDownError();
        }
        if (fault === 's3-503-after-upload' && a.sinkCalls === a.at) {
          a.fired = true;
          await real.putObject(target, key, body, contentType, options);
          this.fire(a, fault);
          throw slowDownError();
        }
        if (fault === 'crash-at-step' && a.calls === a.at) {
          this.fire(a, fault, true);
          throw new SimulatedCrash(`crash before writing ${key}`);
        }
        if (fault === 'slow-lease-expiry' && a.sinkCalls === a.at) {
          // This exporter stalls past its lease; a redelivered copy of its job takes over meanwhile.
          this.fire(a, fault);
          this.clock.advance(stall.leaseMs() + a.stallMs);
          await stall.rival(a.job);
        }
        // A stalled exporter's upload is abandoned once its lease's deadline passed (the fence).
        const stored = await real.putObject(target, key, body, contentType, options);
        if (isDataKey(key)) a.dataParts += 1;
        return stored;
      },
    };
  }

  /** The job queue: a crashed exporter enqueues nothing (no continuation, no retry of a group's member). */
  jobs(real: () => JobQueue): JobQueue {
    return {
      enqueue: async (jobs) => {
        if (this.currentExport()?.dead)
          throw new SimulatedCrash('exporter already crashed (enqueue not reached)');
        await real().enqueue(jobs);
      },
    };
  }

  /** The exporter's time budget: it runs out after the drawn number of parts (budget-runs-out). */
  remainingTimeMs(): number {
    const a = this.currentExport();
    if (!a || a.fired || a.fault !== 'budget-runs-out' || a.dataParts < a.at) return 15 * MINUTE;
    a.fired = true;
    this.tally.fired('budget-runs-out');
    return 0;
  }

  /** The staging ledger: a crash before or after a checkpoint write. */
  ledger(real: StagingLedger): StagingLedger {
    return {
      getCheckpoint: (shardId) => real.getCheckpoint(shardId),
      putCheckpoint: async (next, expectedVersion) => {
        const a = this.currentStager();
        if (a) a.calls.ledger += 1;
        if (a?.ledgerDown) throw throttlingError();
        if (a?.fault === 'ledger-before' && a.calls.ledger === a.at) {
          this.fireStager(a);
          throw new SimulatedCrash('stager crashed before a checkpoint write');
        }
        const ok = await real.putCheckpoint(next, expectedVersion);
        if (a?.fault === 'ledger-after' && a.calls.ledger === a.at) {
          this.fireStager(a);
          throw new SimulatedCrash('stager crashed after a checkpoint write');
        }
        return ok;
      },
    };
  }

  /** The staging store: a crash before or after writing an object, a 503 on the existence check. */
  staging(real: StagingStore): StagingStore {
    return {
      createObject: async (key, body) => {
        const a = this.currentStager();
        if (a) a.calls.object += 1;
        if (a?.fault === 'object-before' && a.calls.object === a.at) {
          this.fireStager(a);
          throw new SimulatedCrash('stager crashed before writing a staged object');
        }
        if (a?.fault === 'timeout' && a.calls.object === a.at) {
          // Lambda kills the invocation while its PUT is in flight: the PUT lands later.
          this.fireStager(a);
          this.lateWrites.set(key, () => real.createObject(key, body));
          this.onLateWrite(key, this.clock.now().getTime() + STAGER_TIMEOUT_SECONDS * 1000);
          throw new SimulatedCrash('stager timed out with its segment PUT in flight');
        }
        // A retry while the timed-out PUT is still in flight: half the time both land together,
        // otherwise the retry's lands first and the late one later finds the segment there.
        const outcome =
          this.lateWrites.has(key) && this.random() < 0.5
            ? await this.raceLateWrite(key, real.createObject(key, body))
            : await real.createObject(key, body);
        if (a?.fault === 'object-after' && a.calls.object === a.at) {
          this.fireStager(a);
          throw new SimulatedCrash('stager crashed after writing objects, before the checkpoint');
        }
        return outcome;
      },
      exists: async (key) => {
        const a = this.currentStager();
        if (a) a.calls.exists += 1;
        if (a?.fault === 'exists-503' && a.calls.exists === a.at) {
          this.fireStager(a);
          throw slowDownError();
        }
        return real.exists(key);
      },
      listPrefix: (prefix) => real.listPrefix(prefix),
      readBytes: (key, range) => real.readBytes(key, range),
      writeStream: (key, body) => real.writeStream(key, body),
      listWindow: (appId, from, to, groupBytes) => real.listWindow(appId, from, to, groupBytes),
      openObject: (key) => real.openObject(key),
    };
  }

  /**
   * The timed-out attempt's PUT of `key` lands now, if it has not yet (a retry's conditional
   * create may have raced it). Its outcome is counted: `created` when it wrote the segment,
   * `exists` when a retry had.
   */
  async landLateWrite(key: string): Promise<void> {
    const write = this.lateWrites.get(key);
    if (!write) return;
    this.lateWrites.delete(key);
    this.tally.fired(`stager-timeout-write-${await write()}`);
  }

  /** Every PUT of a timed-out attempt still in flight lands now (before the event source drops a batch). */
  async landLateWrites(): Promise<void> {
    for (const key of [...this.lateWrites.keys()]) await this.landLateWrite(key);
  }

  /** A retry creates the segment while the timed-out attempt's PUT of it lands: both conditional. */
  private async raceLateWrite(
    key: string,
    retry: Promise<'created' | 'exists'>,
  ): Promise<'created' | 'exists'> {
    this.tally.fired('stager-timeout-write-raced');
    const [, outcome] = await Promise.all([this.landLateWrite(key), retry]);
    return outcome;
  }

  private fireStager(a: StagerAttempt): void {
    a.fired = true;
    this.tally.fired(`stager-${a.fault}`);
  }
}
