/**
 * The stager as Kinesis and Lambda run it in the simulation: each shard's batches staged in
 * order, a failed batch blocking its shard and retried with the same records (usually soon,
 * sometimes past the horizon guard), a staged batch sometimes delivered again. The event source
 * also gives up, as Lambda's does (docs/simulation.md, "Stager"): a batch whose retries ran out,
 * and batches older than maxRecordAge after an outage, are dropped and described in the failure
 * queue; a failing batch is sometimes split in halves (BisectBatchOnFunctionError).
 */
import {
  compareSequenceNumbers,
  SLOT_MS,
  slotEndOf,
  slotStartOf,
} from '../../lambdas/domain/staging-layout.ts';
import type { StageBatchDeps } from '../../lambdas/usecases/stage-batch.ts';
import {
  type IncomingRecord,
  StagingSlotSettlingError,
  stageBatch,
} from '../../lambdas/usecases/stage-batch.ts';
import { type GeneratedEvent, seededRandom } from '../events.ts';
import type { SimContext } from './context.ts';
import type { StagerAttempt } from './faults.ts';
import { isInjected, SimulatedCrash } from './injected-errors.ts';
import { HOUR, MINUTE } from './options.ts';
import { between } from './random.ts';

export interface StagedBatch {
  records: IncomingRecord[];
  /** The records' events, one per record (in the same order). */
  events: GeneratedEvent[];
  /** When its records were put into the stream (for a replay: when the operator put them again). */
  arrivedAt: number;
  /** When the stager first tried it, and when it succeeded: the event's stage time lies between. */
  firstAttemptAt?: number;
  stagedAt?: number;
  failures: number;
  /** The event-source condition forced on this batch (its first attempt drew it), if any. */
  forced?: ForcedCondition;
}

/**
 * Conditions each run forces once (at a seeded time in the first part of the run) so that every
 * kind of give-up happens in every run, not only when the draws happen to produce it: a batch
 * given up on after its segment was written, one given up on with its unit in flight (abandoned,
 * then replayed), one whose every attempt failed before its first ledger write (DynamoDB down),
 * a bisected batch, an outage that outlasts maxRecordAge, an attempt that runs past its
 * timeout with its segment PUT in flight (the PUT lands later, before or during the retry), and
 * one such attempt just before its slot closes, its PUT landing after the close and after a retry
 * (`timeout-at-slot-end`: the retry must wait for the slot to be final, not re-time the unit).
 */
export type ForcedCondition =
  | 'give-up-staged'
  | 'give-up-in-flight'
  | 'ledger-down'
  | 'bisect'
  | 'outage'
  | 'timeout'
  | 'timeout-at-slot-end';

const FORCED: readonly ForcedCondition[] = [
  'give-up-staged',
  'give-up-in-flight',
  'ledger-down',
  'bisect',
  'outage',
  'timeout',
  'timeout-at-slot-end',
];

/** The first failing attempt of a forced batch: which stager fault it crashes with. */
const FORCED_FAULT = {
  'give-up-staged': 'object-after',
  'give-up-in-flight': 'object-before',
  bisect: 'ledger-before',
  outage: 'ledger-before',
  timeout: 'timeout',
  'timeout-at-slot-end': 'timeout',
} as const;

/** `timeout-at-slot-end`: its attempt comes 5–40 s before a slot closes, its retry 1–15 s after. */
const SLOT_END_ATTEMPT_MS = { earliest: 40_000, latest: 5_000 };
const SLOT_END_RETRY_MS = { earliest: 1000, latest: 15_000 };

/** The end of the staging slot holding instant `at` (epoch ms). */
const endOfSlotAt = (at: number): number => slotEndOf(slotStartOf(new Date(at))).getTime();

/** An event generated in the run, with its app and the batch it was (last) put into the stream in. */
export interface GeneratedRecord {
  app: string;
  event: Record<string, unknown>;
  batch: StagedBatch;
}

/** A record in a shard, as the operator reads it back (get-records) to put it again. */
export interface StreamedRecord {
  record: IncomingRecord;
  event: GeneratedEvent;
}

/**
 * What the ledger and the staging bucket held of a batch when the event source dropped it: its
 * segment written (or its records past `stagedThrough`), its unit in flight but not written, or
 * nothing of it (no attempt got as far as recording its unit).
 */
export type DroppedState = 'staged' | 'in-flight' | 'unseen';

/** A message of the on-failure destination (Lambda's `requestContext.condition` and the range). */
export interface FailureMessage {
  shardId: string;
  condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded';
  firstSequence: string;
  lastSequence: string;
  /** approximateArrivalOfFirstRecord (epoch ms). */
  firstArrival: number;
  at: number;
  batch: StagedBatch;
  state: DroppedState;
}

interface ShardState {
  shardId: string;
  batches: StagedBatch[];
  busy: boolean;
  /** Every record put into the shard, by sequence number (the stream, as long as the run lasts). */
  stream: Map<string, StreamedRecord>;
}

/** Failures after which the event source gives up on a batch (retryAttempts, compressed). */
const RETRY_ATTEMPTS = 3;
/**
 * Batches are dropped only this long before the run ends (or with a later batch already queued):
 * the runbook waits for the shard's next batch to settle a drop, and arrivals stop at the end.
 */
const SETTLE_MARGIN_MS = 6 * HOUR;
/** No drawn outage on a shard this long after a drop on it: the runbook settles the drop first. */
const QUIET_AFTER_DROP_MS = 3 * HOUR;

export class SimulatedStager {
  /** Every event generated, by `event_uuid` (a replayed record carries the same event). */
  readonly generated = new Map<string, GeneratedRecord>();
  readonly shards: ShardState[];
  /** The on-failure destination: every batch the event source dropped. */
  readonly failureQueue: FailureMessage[] = [];
  attempts = 0;
  /** Called when a batch was dropped (the StagerFailureQueueNotEmpty alarm). */
  onDropped: (shardId: string) => void = () => undefined;
  /** The forced conditions still to come, earliest first, each for a shard (by index). */
  private readonly forced: Forced[];
  /** When each shard last had a batch dropped (no drawn outage soon after: the runbook settles it first). */
  private readonly lastDrop = new Map<string, number>();
  /** The attempt under way is the forced one at a slot's end: its late PUT lands at its deadline. */
  private landAtDeadline = false;

  constructor(
    private readonly ctx: SimContext,
    private readonly deps: StageBatchDeps,
  ) {
    this.shards = [0, 1].map((n) => ({
      shardId: `shardId-${ctx.settings.runId}-${String(n).padStart(3, '0')}`,
      batches: [],
      busy: false,
      stream: new Map(),
    }));
    this.forced = planForced(ctx);
    // A timed-out attempt's PUT lands within a minute, by the attempt's deadline (its timeout):
    // possibly after its slot closed, while a retry waits for the slot to be final.
    // The forced one at a slot's end lands at its deadline, after its retry.
    ctx.faults.onLateWrite = (key, latest) => {
      const at = this.landAtDeadline
        ? latest
        : Math.min(ctx.clock.now().getTime() + between(ctx.random, 0, MINUTE), latest);
      ctx.schedule(at, { kind: 'late-write', key });
    };
  }

  /** Sequence numbers go on from where earlier runs on the same engines left them. */
  async resumeShards(): Promise<void> {
    for (const shard of this.shards) await this.ctx.driver.resumeSequence(shard.shardId);
  }

  /** A Kinesis batch arrives on shard number `shard`; staged now unless the shard is busy. */
  async arrive(shard: number, events: GeneratedEvent[]): Promise<void> {
    const state = this.shards[shard]!;
    const batch = this.put(state, this.ctx.driver.kinesisRecords(events, state.shardId), events);
    this.register(events, batch);
    if (state.busy) return;
    const slotEndAttempt = this.slotEndAttempt(shard);
    if (slotEndAttempt === undefined) return this.stageHead(state);
    // The event source's polling and batching window: this batch is first attempted just before
    // its slot closes, where the forced `timeout-at-slot-end` meets it.
    state.busy = true;
    this.ctx.schedule(slotEndAttempt, { kind: 'stage', shard: state.shardId });
  }

  /** When the next attempt on shard number `shard` comes, if the forced slot-end timeout is due on it. */
  private slotEndAttempt(shard: number): number | undefined {
    const now = this.ctx.clock.now().getTime();
    if (!this.ctx.faults.enabled) return undefined;
    if (!this.forced.some((f) => f.condition === 'timeout-at-slot-end' && f.shard === shard && f.at <= now))
      return undefined;
    let slotEnd = endOfSlotAt(now);
    if (slotEnd - SLOT_END_ATTEMPT_MS.latest <= now) slotEnd += SLOT_MS;
    return Math.max(
      now,
      slotEnd - between(this.ctx.random, SLOT_END_ATTEMPT_MS.latest, SLOT_END_ATTEMPT_MS.earliest),
    );
  }

  /** Events generated in the run, staged with `batch` (a Kinesis batch, or a CLI run's file). */
  register(events: readonly GeneratedEvent[], batch: StagedBatch): void {
    for (const e of events) {
      const uuid = String(e.event.event_uuid);
      if (this.generated.has(uuid)) this.ctx.tally.problem(`generator repeated event_uuid ${uuid}`);
      this.generated.set(uuid, { app: e.app_id, event: e.event, batch });
    }
  }

  /** The PUT of `key` a timed-out attempt left in flight lands now (if a retry has not raced it). */
  landLateWrite(key: string): Promise<void> {
    return this.ctx.faults.landLateWrite(key);
  }

  /** The records of `shardId` from `first` to `last` (inclusive), as get-records returns them. */
  read(shardId: string, first: string, last: string): StreamedRecord[] {
    return [...this.shard(shardId).stream.values()].filter(
      ({ record }) =>
        compareSequenceNumbers(record.sequenceNumber, first) >= 0 &&
        compareSequenceNumbers(record.sequenceNumber, last) <= 0,
    );
  }

  /**
   * The operator puts records read from the stream again (put-records): new Kinesis records with
   * new sequence numbers, carrying the same events, which are now the replay's to stage.
   */
  async putAgain(shardId: string, records: readonly StreamedRecord[]): Promise<void> {
    const state = this.shard(shardId);
    const events = records.map((r) => r.event);
    const again = this.ctx.driver.kinesisRecords(
      records.map((r) => r.record.data),
      shardId,
    );
    const batch = this.put(state, again, events);
    for (const e of events) this.generated.get(String(e.event.event_uuid))!.batch = batch;
    if (!state.busy) await this.stageHead(state);
  }

  /** Stage the shard's next batch (its head), if any. */
  stageNext(shardId: string): Promise<void> {
    return this.stageHead(this.shard(shardId));
  }

  /** The same Kinesis batch handed to the stager again (Lambda retry after a timeout): nothing more is staged. */
  async redeliver(shardId: string, records: IncomingRecord[]): Promise<void> {
    this.ctx.tally.fired('stager-batch-delivered-twice');
    const again = await this.ctx.driver.stageRecords(records, shardId);
    if (again.stagedEvents > 0 || again.objectsCreated.length > 0) {
      this.ctx.tally.problem(`a re-delivered batch on ${shardId} staged ${again.stagedEvents} events again`);
    }
  }

  private shard(shardId: string): ShardState {
    return this.shards.find((s) => s.shardId === shardId)!;
  }

  private put(state: ShardState, records: IncomingRecord[], events: GeneratedEvent[]): StagedBatch {
    const batch: StagedBatch = { records, events, arrivedAt: this.ctx.clock.now().getTime(), failures: 0 };
    for (const [i, record] of records.entries())
      state.stream.set(record.sequenceNumber, { record, event: events[i]! });
    state.batches.push(batch);
    return batch;
  }

  private async stageHead(shard: ShardState): Promise<void> {
    const { clock, faults, random, tally } = this.ctx;
    await this.dropAged(shard);
    const batch = shard.batches[0];
    if (!batch) {
      shard.busy = false;
      return;
    }
    shard.busy = true;
    this.attempts += 1;
    batch.firstAttemptAt ??= clock.now().getTime();
    const attempt = this.attemptOf(shard, batch);
    this.landAtDeadline = batch.forced === 'timeout-at-slot-end' && batch.failures === 0;
    try {
      await faults.run(attempt, () =>
        stageBatch({ shardId: shard.shardId, records: batch.records }, this.deps),
      );
    } catch (error) {
      // A retry that found its unit's slot closed without the segment, while a timed-out attempt's
      // PUT of it might still land: it waits for the slot to be final.
      const settling = error instanceof StagingSlotSettlingError;
      if (settling) tally.fired('stager-slot-settling');
      else if (!(error instanceof SimulatedCrash) && !isInjected(error)) {
        tally.problem(`stager ${shard.shardId}: unexpected error ${String(error)}`);
      }
      batch.failures += 1;
      await this.afterFailure(shard, batch, settling || (attempt.fault === 'timeout' && attempt.fired));
      return;
    }
    batch.stagedAt = clock.now().getTime();
    shard.batches.shift();
    // A forced condition whose batch went through after all is forced on a later batch.
    if (batch.forced && batch.failures === 0)
      this.forced.unshift({ condition: batch.forced, at: 0, shard: this.shards.indexOf(shard) });
    if (faults.enabled && random() < this.ctx.settings.faultRate / 3) {
      this.ctx.schedule(clock.now().getTime() + between(random, 0, 30 * MINUTE), {
        kind: 'redeliver',
        shard: shard.shardId,
        records: batch.records,
      });
    }
    this.ctx.schedule(clock.now().getTime() + 1000, { kind: 'stage', shard: shard.shardId });
  }

  /**
   * The attempt of `batch`: its forced condition's (drawn on its first attempt, when one is due),
   * or one whose fault is drawn now.
   */
  private attemptOf(shard: ShardState, batch: StagedBatch): StagerAttempt {
    const { clock, faults } = this.ctx;
    const now = clock.now().getTime();
    const due = this.forced.findIndex((f) => f.shard === this.shards.indexOf(shard) && f.at <= now);
    if (!batch.forced && batch.failures === 0 && faults.enabled && due >= 0) {
      const { condition } = this.forced[due]!;
      // A bisected batch needs two records; an abandoned range is replayed only while the stream holds it.
      const toSlotEnd = endOfSlotAt(now) - now;
      const fits =
        (condition !== 'bisect' || batch.records.length > 1) &&
        (condition !== 'give-up-in-flight' || batch.arrivedAt > now - HOUR) &&
        (condition !== 'timeout-at-slot-end' ||
          (toSlotEnd >= SLOT_END_ATTEMPT_MS.latest && toSlotEnd <= SLOT_END_ATTEMPT_MS.earliest));
      if (fits) batch.forced = this.forced.splice(due, 1)[0]!.condition;
    }
    if (batch.forced === 'ledger-down') return faults.ledgerDownAttempt();
    if (batch.forced && batch.failures === 0) return faults.forcedAttempt(FORCED_FAULT[batch.forced]);
    return faults.stagerAttempt(batch.failures);
  }

  /**
   * What the event source does with a batch that failed: give up on it (its retries ran out, or a
   * 5xx/throttling burst lasts through them), split it in halves, stall the shard in an outage
   * that outlasts maxRecordAge, or — most often — retry it. A forced batch meets its condition;
   * a timed-out attempt, or one waiting for its unit's slot to be final, is retried (a late PUT
   * lands meanwhile or races the retry).
   */
  private async afterFailure(shard: ShardState, batch: StagedBatch, retried: boolean): Promise<void> {
    const { clock, random, settings } = this.ctx;
    const now = clock.now().getTime();
    const forced = batch.failures === 1 || batch.forced === 'ledger-down' ? batch.forced : undefined;
    if (forced === 'give-up-staged' || forced === 'give-up-in-flight')
      return this.giveUp(shard, batch, await this.observe(shard.shardId, batch));
    if (forced === 'ledger-down' && batch.failures > RETRY_ATTEMPTS)
      return this.giveUp(shard, batch, await this.observe(shard.shardId, batch));
    if (forced === 'bisect') return this.bisect(shard, batch);
    const outageEnds = batch.arrivedAt + settings.maxRecordAgeMs + between(random, MINUTE, 10 * MINUTE);
    if (forced === 'outage') return this.outage(shard, outageEnds);
    if (forced === 'timeout-at-slot-end') {
      // Lambda retries just after the slot closed, before the timed-out attempt's PUT lands.
      const slotEnd = endOfSlotAt(now);
      const retry = slotEnd + between(random, SLOT_END_RETRY_MS.earliest, SLOT_END_RETRY_MS.latest);
      this.ctx.schedule(retry, { kind: 'stage', shard: shard.shardId });
      return;
    }
    const drawn = !forced && !retried && this.ctx.faults.enabled;
    if (drawn && (shard.batches.length > 1 || now < settings.end - SETTLE_MARGIN_MS)) {
      if (batch.failures > RETRY_ATTEMPTS || random() < settings.faultRate / 4)
        return this.giveUp(shard, batch, await this.observe(shard.shardId, batch));
    }
    if (drawn && batch.records.length > 1 && random() < settings.faultRate / 6)
      return this.bisect(shard, batch);
    if (
      drawn &&
      outageEnds < settings.end - SETTLE_MARGIN_MS &&
      now > (this.lastDrop.get(shard.shardId) ?? 0) + QUIET_AFTER_DROP_MS &&
      random() < settings.faultRate / 10
    )
      return this.outage(shard, outageEnds);
    // Lambda retries the same batch: usually soon, sometimes after the horizon guard (a fresh T).
    const delay = random() < 0.7 ? between(random, 1000, 90_000) : between(random, 3 * MINUTE, 45 * MINUTE);
    this.ctx.schedule(now + delay, { kind: 'stage', shard: shard.shardId });
  }

  /** The event source gives up on the head batch (RetryAttemptsExhausted) and goes on with the next. */
  private giveUp(shard: ShardState, batch: StagedBatch, state: DroppedState): void {
    this.drop(shard, 'RetryAttemptsExhausted', state);
    this.ctx.tally.fired('event-source-gave-up');
    if (state === 'staged') this.ctx.tally.fired('gave-up-after-segment-written');
    // Every attempt failed before its first ledger write (DynamoDB unavailable through the retries).
    if (state === 'unseen') this.ctx.tally.fired('gave-up-before-ledger-write');
    if (batch.forced === 'ledger-down' && state !== 'unseen')
      this.ctx.tally.problem(`${shard.shardId}: a batch no attempt could record is ${state} in the ledger`);
    this.ctx.schedule(this.ctx.clock.now().getTime() + 1000, { kind: 'stage', shard: shard.shardId });
  }

  /** The stager fails on every attempt until the batch is older than maxRecordAge. */
  private outage(shard: ShardState, outageEnds: number): void {
    this.ctx.tally.fired('stager-outage');
    this.ctx.schedule(outageEnds, { kind: 'stage', shard: shard.shardId });
  }

  /** BisectBatchOnFunctionError: the failing batch becomes its two halves, the first delivered next. */
  private bisect(shard: ShardState, batch: StagedBatch): void {
    const half = Math.ceil(batch.records.length / 2);
    const halves = [0, 1].map(
      (i): StagedBatch => ({
        ...batch,
        records: i === 0 ? batch.records.slice(0, half) : batch.records.slice(half),
        events: i === 0 ? batch.events.slice(0, half) : batch.events.slice(half),
        forced: undefined,
      }),
    );
    shard.batches.splice(0, 1, ...halves);
    for (const h of halves)
      for (const e of h.events) this.generated.get(String(e.event.event_uuid))!.batch = h;
    this.ctx.tally.fired('batch-bisected');
    const { random } = this.ctx;
    this.ctx.schedule(this.ctx.clock.now().getTime() + between(random, 1000, 60_000), {
      kind: 'stage',
      shard: shard.shardId,
    });
  }

  /** maxRecordAge: batches at the head older than it are dropped without (another) attempt. */
  private async dropAged(shard: ShardState): Promise<void> {
    const cutoff = this.ctx.clock.now().getTime() - this.ctx.settings.maxRecordAgeMs;
    for (let head = shard.batches[0]; head && head.arrivedAt < cutoff; head = shard.batches[0]) {
      this.drop(shard, 'RecordAgeExceeded', await this.observe(shard.shardId, head));
      this.ctx.tally.fired('records-aged-out');
    }
  }

  /** The head batch is dropped and described in the failure queue. */
  private drop(shard: ShardState, condition: FailureMessage['condition'], state: DroppedState): void {
    const batch = shard.batches.shift()!;
    const now = this.ctx.clock.now().getTime();
    this.lastDrop.set(shard.shardId, now);
    // A staged batch's stage time was fixed by one of its attempts, all before now.
    if (state === 'staged') batch.stagedAt = now;
    this.failureQueue.push({
      shardId: shard.shardId,
      condition,
      firstSequence: batch.records[0]!.sequenceNumber,
      lastSequence: batch.records[batch.records.length - 1]!.sequenceNumber,
      firstArrival: (batch.records[0]!.approximateArrivalTimestamp ?? batch.arrivedAt / 1000) * 1000,
      at: now,
      batch,
      state,
    });
    this.onDropped(shard.shardId);
  }

  /** What the ledger (the real adapter) and the staging bucket hold of `batch` now. */
  private async observe(shardId: string, batch: StagedBatch): Promise<DroppedState> {
    const { ledger, staging } = this.ctx.driver.runtime;
    // Lambda's event source decides after the timed-out invocations' PUTs have landed.
    await this.ctx.faults.landLateWrites();
    const checkpoint = await ledger.getCheckpoint(shardId);
    const first = batch.records[0]!.sequenceNumber;
    const last = batch.records[batch.records.length - 1]!.sequenceNumber;
    if (checkpoint.stagedThrough !== undefined && compareSequenceNumbers(checkpoint.stagedThrough, last) >= 0)
      return 'staged';
    const unit = checkpoint.pending;
    // The unit in flight holds records of the batch (it may start before it: a bisected half).
    if (
      !unit ||
      compareSequenceNumbers(unit.lastSequence, first) < 0 ||
      compareSequenceNumbers(unit.firstSequence, last) > 0
    )
      return 'unseen';
    return (await staging.exists(unit.key)) ? 'staged' : 'in-flight';
  }
}

interface Forced {
  condition: ForcedCondition;
  at: number;
  shard: number;
}

/**
 * When each forced condition is due: a seeded time in the first 40% of the run (its own
 * generator). The outage is forced on the second shard, the give-ups on the first, so that the
 * outage never holds a dropped range back until the stream no longer has its records.
 */
function planForced(ctx: SimContext): Forced[] {
  const { settings } = ctx;
  if (settings.faultRate <= 0) return [];
  const random = seededRandom(settings.seed * 6007 + 29);
  const span = settings.end - settings.start;
  return FORCED.map((condition) => ({
    condition,
    shard: condition === 'outage' ? 1 : 0,
    at: settings.start + between(random, Math.min(HOUR, span / 10), span * 0.4),
  })).sort((a, b) => a.at - b.at);
}
