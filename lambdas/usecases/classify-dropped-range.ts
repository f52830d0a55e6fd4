/**
 * The StagerFailureQueueNotEmpty runbook's question, answered from the staging bucket and the
 * ledger (docs/operations.md): for a range of a shard the event source gave up on, which records
 * are staged, which are abandoned, and which must be put into the stream again.
 *
 * Segment keys name their unit's sequence range (domain/staging-layout.ts). Every unit holding a
 * record of the range was fixed by an attempt made after that record arrived, so its segment is in
 * a slot from the range's first arrival on; the slots are listed from there to now. Segments are
 * kept for the staging retention, so an older range cannot be answered.
 */
import { COMPACTION_DELAY_SECONDS, STAGER_TIMEOUT_SECONDS } from '../definitions.ts';
import {
  classifyDroppedRange as classify,
  type DroppedRangeClassification,
  type SequenceRange,
} from '../domain/dropped-ranges.ts';
import { SLOT_MS, segmentPrefix, segmentRangeOfKey, slotsOfWindow } from '../domain/staging-layout.ts';
import type { Clock, StagingLedger, StagingStore } from '../ports/index.ts';
import { UseCaseError } from './errors.ts';

export interface ClassifyDroppedRangeInput extends SequenceRange {
  shardId: string;
  /** The failure message's approximateArrivalOfFirstRecord. */
  firstArrival: Date;
}

export interface ClassifyDroppedRangeDeps {
  ledger: StagingLedger;
  store: Pick<StagingStore, 'listPrefix'>;
  clock: Clock;
  /** How long segments are kept (the deployment's StagingRetentionDays). */
  stagingRetentionDays: number;
}

/** The range's segments may be gone (older than the staging retention) or cannot be read from their keys. */
export class DroppedRangeUnanswerableError extends UseCaseError {
  override readonly name = 'DroppedRangeUnanswerableError';
}

/** Approximate arrival times and the stager's clock differ by a little: one slot either side. */
const MARGIN_MS = SLOT_MS + STAGER_TIMEOUT_SECONDS * 1000;
const DAY_MS = 86_400_000;

/** The unit ranges of `shardId`'s segments staged from `from` to now. */
async function stagedUnits(
  shardId: string,
  from: Date,
  deps: ClassifyDroppedRangeDeps,
  range: SequenceRange,
): Promise<SequenceRange[]> {
  const units: SequenceRange[] = [];
  const until = new Date(deps.clock.now().getTime() + MARGIN_MS);
  for (const slot of slotsOfWindow(from, until)) {
    for (const { key } of await deps.store.listPrefix(segmentPrefix(slot))) {
      const unit = segmentRangeOfKey(key);
      if (!unit || unit.shardId !== shardId) continue;
      if (unit.last === undefined) {
        if (BigInt(unit.first) > BigInt(range.lastSequence)) continue;
        throw new DroppedRangeUnanswerableError(
          `segment ${key} of ${shardId} was written before segment keys named their unit's last sequence number, so which of ${range.firstSequence}-${range.lastSequence} it holds is unknown; do not replay the range before checking its events in that segment`,
        );
      }
      units.push({ firstSequence: unit.first, lastSequence: unit.last });
    }
  }
  return units;
}

export async function classifyDroppedRange(
  input: ClassifyDroppedRangeInput,
  deps: ClassifyDroppedRangeDeps,
): Promise<DroppedRangeClassification> {
  const range = { firstSequence: input.firstSequence, lastSequence: input.lastSequence };
  // Validates the range before anything is read.
  classify(range, { units: [], abandoned: [] });
  const from = new Date(input.firstArrival.getTime() - MARGIN_MS);
  const kept = deps.clock.now().getTime() - deps.stagingRetentionDays * DAY_MS;
  if (from.getTime() < kept)
    throw new DroppedRangeUnanswerableError(
      `records of ${input.shardId} that arrived at ${input.firstArrival.toISOString()} are older than the staging retention (${deps.stagingRetentionDays} days): their segments may be deleted, so what was staged cannot be told; the stream no longer holds them either`,
    );
  const row = await deps.ledger.getCheckpoint(input.shardId);
  const units = await stagedUnits(input.shardId, from, deps, range);
  return classify(range, {
    units,
    stagedThrough: row.stagedThrough,
    abandoned: row.abandoned ?? [],
    now: deps.clock.now(),
    abandonedSettleMs: COMPACTION_DELAY_SECONDS * 1000,
  });
}
