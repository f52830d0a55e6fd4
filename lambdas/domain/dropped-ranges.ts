/**
 * What became of a sequence range of one shard that the event source gave up on (a message of the
 * stager's failure queue): which of its records are in staged segments, which are in ranges the
 * stager recorded as abandoned, and which are in neither — the records to put into the stream
 * again. Sequence numbers are integers (decimal strings, longer than 2^53), so a range's records are
 * exactly the integers between its bounds: parts are inclusive, and a part's bounds need not be
 * sequence numbers of records (a part that ends where a staged unit starts ends one before it).
 */
import { DomainError } from './errors.ts';

export interface SequenceRange {
  firstSequence: string;
  lastSequence: string;
}

/** A range the stager recorded as abandoned, as on the ledger row. */
export interface AbandonedSequenceRange extends SequenceRange {
  at: string;
}

export type DroppedRangeVerdict = 'staged' | 'abandoned' | 'not staged' | 'partly staged' | 'not settled yet';

export interface DroppedRangeClassification {
  verdict: DroppedRangeVerdict;
  range: SequenceRange;
  /** The shard's checkpoint when classified. */
  stagedThrough?: string;
  /** Parts of the range in staged segments: never to be put again. */
  staged: SequenceRange[];
  /**
   * Abandoned ranges of the ledger row holding records of the range that are in no staged segment,
   * each with its records in no staged segment and in no earlier abandoned range of the row: the
   * StagingRangesAbandoned runbook puts those again, once per abandoned range.
   */
  abandoned: { range: AbandonedSequenceRange; replay: SequenceRange[] }[];
  /** Parts of the range in no staged segment and no abandoned range: put them again, once. */
  replay: SequenceRange[];
  /**
   * Not settled yet only because an abandoned range holding its records was recorded too recently
   * (its unit's segment may still appear): when to ask again.
   */
  settlesAt?: string;
}

/** What the classification reads: the shard's staged units (from segment keys) and its ledger row. */
export interface DroppedRangeEvidence {
  units: readonly SequenceRange[];
  stagedThrough?: string | undefined;
  abandoned: readonly AbandonedSequenceRange[];
  /**
   * When the evidence was read, and how long after an abandoned range was recorded its unit's
   * segment may still appear (a PUT of an attempt that timed out, landing by that attempt's
   * deadline: the stager's timeout plus a clock margin). Until then a range holding its records is
   * not settled. The use case passes both; without them the ranges are taken as settled.
   */
  now?: Date;
  abandonedSettleMs?: number;
}

/** A sequence range whose bounds are not decimal integers, or whose first is after its last. */
export class InvalidSequenceRangeError extends DomainError {
  override readonly name = 'InvalidSequenceRangeError';
}

interface Span {
  lo: bigint;
  hi: bigint;
}

function sequence(value: string, what: string): bigint {
  if (!/^\d{1,80}$/.test(value))
    throw new InvalidSequenceRangeError(
      `${what} "${value}" is not a Kinesis sequence number (a decimal integer): copy it from the failure message`,
    );
  return BigInt(value);
}

function spanOf(range: SequenceRange, what: string): Span {
  const span = {
    lo: sequence(range.firstSequence, `${what} first`),
    hi: sequence(range.lastSequence, `${what} last`),
  };
  if (span.lo > span.hi)
    throw new InvalidSequenceRangeError(
      `${what} ${range.firstSequence}-${range.lastSequence} ends before it starts: give the first sequence number first`,
    );
  return span;
}

const rangeOf = (s: Span): SequenceRange => ({ firstSequence: String(s.lo), lastSequence: String(s.hi) });
const overlap = (a: Span, b: Span) => a.lo <= b.hi && b.lo <= a.hi;

/** `spans` without the integers of `cut`. */
function subtract(spans: readonly Span[], cut: Span): Span[] {
  const out: Span[] = [];
  for (const s of spans) {
    if (!overlap(s, cut)) {
      out.push(s);
      continue;
    }
    if (s.lo < cut.lo) out.push({ lo: s.lo, hi: cut.lo - 1n });
    if (s.hi > cut.hi) out.push({ lo: cut.hi + 1n, hi: s.hi });
  }
  return out;
}

function subtractAll(spans: readonly Span[], cuts: readonly Span[]): Span[] {
  return cuts.reduce((rest, cut) => subtract(rest, cut), [...spans]);
}

/** The parts of `span` that are in `spans` (in order, merged). */
function intersect(span: Span, spans: readonly Span[]): Span[] {
  return subtractAll([span], subtractAll([span], spans));
}

/**
 * Classify `range` of a shard. It is settled only once the shard has staged past it and past every
 * abandoned range holding its records, and those ranges were recorded `abandonedSettleMs` ago;
 * before that, the unit in flight may still be written.
 */
export function classifyDroppedRange(
  range: SequenceRange,
  evidence: DroppedRangeEvidence,
): DroppedRangeClassification {
  const whole = spanOf(range, 'range');
  const units = evidence.units.map((u) => spanOf(u, 'staged unit'));
  const staged = intersect(whole, units);
  const uncovered = subtractAll([whole], units);
  // Abandoned ranges may overlap (a unit abandoned, then a later one over its end): a record is
  // put again for the earliest range on the row that holds it, so never twice.
  const rows = evidence.abandoned.map((a) => ({ range: a, span: spanOf(a, 'abandoned range') }));
  const abandoned = rows
    .map((a, i) => ({
      ...a,
      replay: subtractAll([a.span], [...units, ...rows.slice(0, i).map((r) => r.span)]),
    }))
    .filter((a) => uncovered.some((u) => overlap(u, a.span)));
  const replay = subtractAll(
    uncovered,
    abandoned.map((a) => a.span),
  );
  const through =
    evidence.stagedThrough === undefined ? undefined : sequence(evidence.stagedThrough, 'stagedThrough');
  let needed = whole.hi;
  for (const a of abandoned) if (a.span.hi > needed) needed = a.span.hi;
  const base = {
    range,
    ...(evidence.stagedThrough === undefined ? {} : { stagedThrough: evidence.stagedThrough }),
    staged: staged.map(rangeOf),
  };
  if (through === undefined || through < needed)
    return { ...base, verdict: 'not settled yet', abandoned: [], replay: [] };
  const settles = Math.max(
    0,
    ...abandoned.map((a) => Date.parse(a.range.at) + (evidence.abandonedSettleMs ?? 0)),
  );
  if (evidence.now !== undefined && settles > evidence.now.getTime())
    return {
      ...base,
      verdict: 'not settled yet',
      abandoned: [],
      replay: [],
      settlesAt: new Date(settles).toISOString(),
    };
  const verdict: DroppedRangeVerdict =
    uncovered.length === 0
      ? 'staged'
      : replay.length === 0
        ? 'abandoned'
        : staged.length === 0 && abandoned.length === 0
          ? 'not staged'
          : 'partly staged';
  return {
    ...base,
    verdict,
    abandoned: abandoned.map((a) => ({ range: a.range, replay: a.replay.map(rangeOf) })),
    replay: replay.map(rangeOf),
  };
}
