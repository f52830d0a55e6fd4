/**
 * The operator following the stager's runbooks (docs/operations.md, `StagerFailureQueueNotEmpty`
 * and `StagingRangesAbandoned`) when the event source drops a batch: classify each failure-queue
 * range with the `staging classify` use case (on the real adapters: DynamoDB Local and s3rver),
 * wait while it is not settled, and put again exactly the parts it names — those of its abandoned
 * ranges once per abandoned range, the others once — only while the stream still holds them. The
 * operator decides from the command's answer alone; the simulation's own knowledge of each dropped
 * batch only checks that answer, and at the end the ledger's record.
 */
import type { DroppedRangeClassification, SequenceRange } from '../../lambdas/domain/dropped-ranges.ts';
import { compareSequenceNumbers } from '../../lambdas/domain/staging-layout.ts';
import type { AbandonedRange } from '../../lambdas/ports/index.ts';
import { classifyDroppedRange } from '../../lambdas/usecases/classify-dropped-range.ts';
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

  /** One look at the shard's failure messages: each classified, settled ones dealt with. */
  async follow(shardId: string): Promise<void> {
    const { clock, settings, tally, driver } = this.ctx;
    const messages = this.stager.failureQueue.filter((m) => m.shardId === shardId && !this.deleted.has(m));
    if (messages.length === 0) return;
    // Read for the final checks only (every abandoned range must have been dropped), as are the
    // abandoned ranges the answers name.
    const row = await driver.runtime.ledger.getCheckpoint(shardId);
    for (const range of row.abandoned ?? []) this.abandoned.set(rangeKey(shardId, range), { shardId, range });
    let open = 0;
    for (const m of messages) {
      const answer = await classifyDroppedRange(
        {
          shardId,
          firstSequence: m.firstSequence,
          lastSequence: m.lastSequence,
          firstArrival: new Date(m.firstArrival),
        },
        {
          ledger: driver.runtime.ledger,
          store: driver.runtime.staging,
          clock,
          stagingRetentionDays: driver.runtime.config.stagingRetentionDays,
        },
      );
      if (answer.verdict === 'not settled yet') {
        open += 1;
        continue;
      }
      this.checkAnswer(m, answer);
      tally.fired(`failure-range-${answer.verdict.replaceAll(' ', '-')}`);
      // StagingRangesAbandoned: each abandoned range's parts once; then the range's own parts.
      for (const a of answer.abandoned) {
        // Replays stage as they are put, so the row read above may predate this range.
        this.abandoned.set(rangeKey(shardId, a.range), { shardId, range: a.range });
        await this.replay(shardId, rangeKey(shardId, a.range), a.replay, true);
      }
      if (answer.replay.length > 0)
        await this.replay(shardId, `${rangeKey(shardId, m)} message`, answer.replay, false);
      this.deleted.add(m);
    }
    if (open === 0) return;
    if (clock.now().getTime() > settings.end + settings.maxRecordAgeMs) {
      tally.problem(`${shardId}: ${open} dropped batches never settled`);
      return;
    }
    this.lookAgain(shardId, 30 * MINUTE);
  }

  /** The command's answer against what the simulation knows of the dropped batch. */
  private checkAnswer(m: FailureMessage, answer: DroppedRangeClassification): void {
    const where = `${m.condition} ${rangeKey(m.shardId, m)} (${m.state})`;
    if ((m.state === 'staged') !== (answer.verdict === 'staged'))
      this.ctx.tally.problem(`${where} was classified ${answer.verdict}`);
  }

  /** Put the parts' records again unless done before (`key`) or the stream no longer holds them. */
  private async replay(
    shardId: string,
    key: string,
    parts: readonly SequenceRange[],
    abandoned: boolean,
  ): Promise<void> {
    if (this.replayed.has(key) || this.expired.has(key)) return;
    const records = parts.flatMap((p) => this.stager.read(shardId, p.firstSequence, p.lastSequence));
    if (records.length === 0) return;
    const arrived = Math.min(...records.map((r) => (r.record.approximateArrivalTimestamp ?? 0) * 1000));
    if (arrived < this.ctx.clock.now().getTime() - this.ctx.settings.maxRecordAgeMs) {
      // Older than the stream's retention (maxRecordAge is set to it): lost, as the runbook says.
      this.expired.set(
        key,
        records.map((r) => String(r.event.event.event_uuid)),
      );
      this.ctx.tally.fired(abandoned ? 'abandoned-range-expired' : 'dropped-range-expired');
      return;
    }
    this.replayed.add(key);
    this.ctx.tally.fired(abandoned ? 'abandoned-range-replayed' : 'dropped-range-replayed');
    await this.stager.putAgain(shardId, records);
  }

  private lookAgain(shardId: string, afterMs: number): void {
    this.ctx.schedule(this.ctx.clock.now().getTime() + afterMs, { kind: 'stager-runbook', shard: shardId });
  }

  /**
   * The events no one can stage any more: those the runbook was told to put again when the stream
   * no longer held them (batches that aged out before any attempt recorded them, ranges replayed late).
   */
  lostEvents(): Set<string> {
    const lost = new Set<string>();
    for (const uuids of this.expired.values()) for (const uuid of uuids) lost.add(uuid);
    return lost;
  }

  /**
   * Each dropped batch is staged, abandoned, or unseen (no attempt recorded its unit), never two of
   * them, and an abandoned one was recorded as such; nothing the event source did not drop is
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
      if (m.state === 'unseen' && listed)
        tally.problem(`${where}: no attempt recorded its unit, yet it is listed`);
      if (!this.deleted.has(m)) tally.problem(`${where} was never settled`);
    }
    for (const a of abandoned)
      if (!this.stager.failureQueue.some((m) => overlaps(a, m)))
        tally.problem(`${rangeKey(a.shardId, a.range)} is abandoned but was never dropped`);
  }
}
