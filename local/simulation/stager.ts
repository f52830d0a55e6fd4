/**
 * The stager as Kinesis and Lambda run it in the simulation: each shard's batches staged in
 * order, a failed batch blocking its shard and retried with the same records (usually soon,
 * sometimes past the horizon guard), a staged batch sometimes delivered again.
 */
import type { StageBatchDeps } from '../../lambdas/usecases/stage-batch.ts';
import { type IncomingRecord, stageBatch } from '../../lambdas/usecases/stage-batch.ts';
import type { GeneratedEvent } from '../events.ts';
import type { SimContext } from './context.ts';
import { isInjected, SimulatedCrash } from './injected-errors.ts';
import { MINUTE } from './options.ts';
import { between } from './random.ts';

export interface StagedBatch {
  records: IncomingRecord[];
  events: GeneratedEvent[];
  /** When the stager first tried it, and when it succeeded: the event's stage time lies between. */
  firstAttemptAt?: number;
  stagedAt?: number;
  failures: number;
}

/** An event generated in the run, with its app and the batch it arrived in. */
export interface GeneratedRecord {
  app: string;
  event: Record<string, unknown>;
  batch: StagedBatch;
}

interface ShardState {
  shardId: string;
  batches: StagedBatch[];
  busy: boolean;
}

export class SimulatedStager {
  /** Every event generated, by `event_uuid`. */
  readonly generated = new Map<string, GeneratedRecord>();
  readonly shards: ShardState[];
  attempts = 0;

  constructor(
    private readonly ctx: SimContext,
    private readonly deps: StageBatchDeps,
  ) {
    this.shards = [0, 1].map((n) => ({
      shardId: `shardId-${ctx.settings.runId}-${String(n).padStart(3, '0')}`,
      batches: [],
      busy: false,
    }));
  }

  /** Sequence numbers go on from where earlier runs on the same engines left them. */
  async resumeShards(): Promise<void> {
    for (const shard of this.shards) await this.ctx.driver.resumeSequence(shard.shardId);
  }

  /** A Kinesis batch arrives on shard number `shard`; staged now unless the shard is busy. */
  async arrive(shard: number, events: GeneratedEvent[]): Promise<void> {
    const state = this.shards[shard]!;
    const batch: StagedBatch = {
      records: this.ctx.driver.kinesisRecords(events, state.shardId),
      events,
      failures: 0,
    };
    for (const e of events) {
      const uuid = String(e.event.event_uuid);
      if (this.generated.has(uuid)) this.ctx.tally.problem(`generator repeated event_uuid ${uuid}`);
      this.generated.set(uuid, { app: e.app_id, event: e.event, batch });
    }
    state.batches.push(batch);
    if (!state.busy) await this.stageHead(state);
  }

  /** Stage the shard's next batch (its head), if any. */
  stageNext(shardId: string): Promise<void> {
    return this.stageHead(this.shards.find((s) => s.shardId === shardId)!);
  }

  /** The same Kinesis batch handed to the stager again (Lambda retry after a timeout): nothing more is staged. */
  async redeliver(shardId: string, records: IncomingRecord[]): Promise<void> {
    this.ctx.tally.fired('stager-batch-delivered-twice');
    const again = await this.ctx.driver.stageRecords(records, shardId);
    if (again.stagedEvents > 0 || again.objectsCreated.length > 0) {
      this.ctx.tally.problem(`a re-delivered batch on ${shardId} staged ${again.stagedEvents} events again`);
    }
  }

  private async stageHead(shard: ShardState): Promise<void> {
    const { clock, faults, random, tally } = this.ctx;
    const batch = shard.batches[0];
    if (!batch) {
      shard.busy = false;
      return;
    }
    shard.busy = true;
    this.attempts += 1;
    batch.firstAttemptAt ??= clock.now().getTime();
    const attempt = faults.stagerAttempt(batch.failures);
    try {
      await faults.run(attempt, () =>
        stageBatch({ shardId: shard.shardId, records: batch.records }, this.deps),
      );
    } catch (error) {
      if (!(error instanceof SimulatedCrash) && !isInjected(error)) {
        tally.problem(`stager ${shard.shardId}: unexpected error ${String(error)}`);
      }
      batch.failures += 1;
      // Lambda retries the same batch: usually soon, sometimes after the horizon guard (a fresh T).
      const delay = random() < 0.7 ? between(random, 1000, 90_000) : between(random, 3 * MINUTE, 45 * MINUTE);
      this.ctx.schedule(clock.now().getTime() + delay, { kind: 'stage', shard: shard.shardId });
      return;
    }
    batch.stagedAt = clock.now().getTime();
    shard.batches.shift();
    if (faults.enabled && random() < this.ctx.settings.faultRate / 3) {
      this.ctx.schedule(clock.now().getTime() + between(random, 0, 30 * MINUTE), {
        kind: 'redeliver',
        shard: shard.shardId,
        records: batch.records,
      });
    }
    this.ctx.schedule(clock.now().getTime() + 1000, { kind: 'stage', shard: shard.shardId });
  }
}
