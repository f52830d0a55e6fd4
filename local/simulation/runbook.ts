/**
 * The operator following the stager's runbooks (docs/operations.md, `StagerFailureQueueNotEmpty`
 * and `StagingRangesAbandoned`) when the event source drops a batch: wait until the shard has
 * staged past the failure queue's range, read the shard's ledger row (the real adapter on
 * DynamoDB Local), put again exactly the records of each range its `abandoned` lists — once, and
 * only while the stream still holds them — and never a failure-queue range as such. At the end,
 * the dropped batches are checked against what the ledger recorded.
 */
import { compareSequenceNumbers } from '../../lambdas/domain/staging-layout.ts';
import type { AbandonedRange } from '../../lambdas/ports/index.ts';
import type { SimContext } from './context.ts';
import { MINUTE } from './options.ts';
import { between } from './random.ts';
import type { FailureMessage, SimulatedStager } from './stager.ts';

interface ReadRange {
  shardId: string;
  range: AbandonedRange;
}

const rangeKey = (shardId: string, r: { firstSequence: string; lastSequence: string }) =>
  `${shardId} ${r.firstSequence}-${r.lastSequence}`;

const overlaps = (a: ReadRange, m: FailureMessage) =>
  a.shardId === m.shardId &&
  compareSequenceNumbers(a.range.firstSequence, m.lastSequence) <= 0 &&
  compareSequenceNumbers(m.firstSequence, a.range.lastSequence) <= 0;

export class StagerRunbook {
  /** Every abandoned range read on a ledger row (the row keeps the last ten), by rangeKey. */
  private readonly abandoned = new Map<string, ReadRange>();
  /** The operator's note: ranges put again, and ranges already past the stream's retention. */
  private readonly replayed = new Set<string>();
  private readonly expired = new Map<string, string[]>();
  /** Failure-queue messages dealt with (deleted). */
  private readonly deleted = new Set<FailureMessage>();

  constructor(
    private readonly ctx: SimContext,
    private readonly stager: SimulatedStager,
  ) {
    // The StagerFailureQueueNotEmpty alarm: the operator looks within half an hour.
    stager.onDropped = (shardId) => this.lookAgain(shardId, between(ctx.random, 5 * MINUTE, 30 * MINUTE));
  }

  /** One look at the shard's failure messages and ledger row, as the two runbooks say. */
  async follow(shardId: string): Promise<void> {
    const { clock, settings, tally } = this.ctx;
    const messages = this.stager.failureQueue.filter((m) => m.shardId === shardId && !this.deleted.has(m));
    if (messages.length === 0) return;
    const row = await this.ctx.driver.runtime.ledger.getCheckpoint(shardId);
    for (const range of row.abandoned ?? []) this.abandoned.set(rangeKey(shardId, range), { shardId, range });
    // Step 1: only a message the shard has staged past is settled.
    const settled = messages.filter(
      (m) =>
        row.stagedThrough !== undefined && compareSequenceNumbers(row.stagedThrough, m.lastSequence) >= 0,
    );
    // Step 2: the abandoned ranges, each once (StagingRangesAbandoned).
    for (const range of row.abandoned ?? []) await this.replay(shardId, range);
    // Step 3: the settled messages are deleted; the others are looked at again later.
    for (const m of settled) this.deleted.add(m);
    if (settled.length === messages.length) return;
    if (clock.now().getTime() > settings.end + settings.maxRecordAgeMs) {
      tally.problem(`${shardId}: ${messages.length - settled.length} dropped batches never settled`);
      return;
    }
    this.lookAgain(shardId, 30 * MINUTE);
  }

  /** Put the range's records again unless done before or the stream no longer holds them. */
  private async replay(shardId: string, range: AbandonedRange): Promise<void> {
    const key = rangeKey(shardId, range);
    if (this.replayed.has(key) || this.expired.has(key)) return;
    const records = this.stager.read(shardId, range.firstSequence, range.lastSequence);
    const arrived = Math.min(...records.map((r) => (r.record.approximateArrivalTimestamp ?? 0) * 1000));
    if (records.length === 0 || arrived < this.ctx.clock.now().getTime() - this.ctx.settings.maxRecordAgeMs) {
      // Older than the stream's retention (maxRecordAge is set to it): lost, as the runbook says.
      this.expired.set(
        key,
        records.map((r) => String(r.event.event.event_uuid)),
      );
      this.ctx.tally.fired('abandoned-range-expired');
      return;
    }
    this.replayed.add(key);
    this.ctx.tally.fired('abandoned-range-replayed');
    await this.stager.putAgain(shardId, records);
  }

  private lookAgain(shardId: string, afterMs: number): void {
    this.ctx.schedule(this.ctx.clock.now().getTime() + afterMs, { kind: 'stager-runbook', shard: shardId });
  }

  /**
   * The events no one can stage any more: those of batches that aged out before any attempt
   * recorded them, and those of abandoned ranges past the stream's retention.
   */
  lostEvents(): Set<string> {
    const lost = new Set<string>();
    for (const m of this.stager.failureQueue)
      if (m.state === 'unseen') for (const e of m.batch.events) lost.add(String(e.event.event_uuid));
    for (const uuids of this.expired.values()) for (const uuid of uuids) lost.add(uuid);
    return lost;
  }

  /**
   * Each dropped batch is staged or abandoned, never both — so the runbook replays no staged
   * record — and an abandoned one was recorded as such; nothing the event source did not drop is
   * abandoned; every failure message was settled.
   */
  checkRanges(): void {
    const { tally } = this.ctx;
    const abandoned = [...this.abandoned.values()];
    for (const m of this.stager.failureQueue) {
      const where = `${m.condition} ${rangeKey(m.shardId, m)}`;
      const listed = abandoned.some((a) => overlaps(a, m));
      if (m.state === 'staged' && listed) tally.problem(`${where} is staged and listed as abandoned`);
      if (m.state === 'in-flight' && !listed) tally.problem(`${where} is neither staged nor abandoned`);
      if (m.state === 'unseen' && (listed || m.condition !== 'RecordAgeExceeded'))
        tally.problem(`${where}: no attempt recorded its unit, yet it is ${listed ? 'listed' : 'given up'}`);
      if (!this.deleted.has(m)) tally.problem(`${where} was never settled`);
    }
    for (const a of abandoned)
      if (!this.stager.failureQueue.some((m) => overlaps(a, m)))
        tally.problem(`${rangeKey(a.shardId, a.range)} is abandoned but was never dropped`);
  }
}
