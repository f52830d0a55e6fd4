/**
 * Layout of the staging bucket: keys of segments, compacted slots and quarantine, and the
 * slot arithmetic that makes windows whole numbers of slots. The argument for it is in
 * docs/platform-scale.md; the keys are listed in docs/staging-layout.md.
 *
 *   segments/<slotStart>/<T>-<shardId>-<first>-<last>.seg    one per stager unit, every app
 *   slots/<YYYY-MM-DD>/<slotStart>.data                      one per slot, grouped by app
 *   slots/<YYYY-MM-DD>/<slotStart>.index                     written last: the slot is compacted
 *   quarantine/dt=<YYYY-MM-DD>/<slotStart>.ndjson.gz         refused records of the slot
 *
 * Instants are epoch milliseconds, zero-padded to 13 digits, so listings are in time order.
 */
import { COMPACTION_DELAY_SECONDS, STAGING_SLOT_MINUTES } from '../definitions.ts';

export const SLOT_MS = STAGING_SLOT_MINUTES * 60_000;
const COMPACTION_DELAY_MS = COMPACTION_DELAY_SECONDS * 1000;

function pad13(ms: number): string {
  return String(ms).padStart(13, '0');
}

/** Key-safe form of a Kinesis shard id (`-` written as `%2D` so the key splits unambiguously). */
function safeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[-]/g, '%2D');
}

/** The start of the slot holding stage time `at`. */
export function slotStartOf(at: Date): Date {
  return new Date(Math.floor(at.getTime() / SLOT_MS) * SLOT_MS);
}

export function slotEndOf(slotStart: Date): Date {
  return new Date(slotStart.getTime() + SLOT_MS);
}

export function isSlotBoundary(at: Date): boolean {
  return at.getTime() % SLOT_MS === 0;
}

/**
 * A stager attempt may (re)write a segment with stage time `stageTime` only while its slot is
 * open: the attempt then ends (Lambda timeout) before the slot's compaction starts.
 */
export function segmentWritableAt(stageTime: Date, now: Date): boolean {
  return now.getTime() < slotEndOf(slotStartOf(stageTime)).getTime();
}

/** The instant from which a slot may be compacted: no segment of it can appear after that. */
export function compactionStartOf(slotStart: Date): Date {
  return new Date(slotEndOf(slotStart).getTime() + COMPACTION_DELAY_MS);
}

/** The slots covering [start, end): `start` is floored to its slot (watermarks are slot boundaries). */
export function slotsOfWindow(start: Date, end: Date): Date[] {
  const slots: Date[] = [];
  for (let t = slotStartOf(start).getTime(); t < end.getTime(); t += SLOT_MS) slots.push(new Date(t));
  return slots;
}

/** Where the segments of the slot holding `at` are. */
export function segmentPrefix(at: Date): string {
  return `segments/${pad13(slotStartOf(at).getTime())}/`;
}

/**
 * The key of a unit's segment: it names the unit's whole sequence range, so the staging bucket
 * alone says which records of a shard are staged (usecases/classify-dropped-range.ts).
 */
export function segmentKey(
  stageTime: Date,
  shardId: string,
  firstSequence: string,
  lastSequence: string,
): string {
  const name = `${pad13(stageTime.getTime())}-${safeSegment(shardId)}-${firstSequence}-${lastSequence}`;
  return `${segmentPrefix(stageTime)}${name}.seg`;
}

/** The stage time encoded in a segment's key, or undefined when the key is not a segment. */
export function stageTimeOfSegmentKey(key: string): Date | undefined {
  const match = /^segments\/\d{13}\/(\d{13})-[^/]+\.seg$/.exec(key);
  return match ? new Date(Number(match[1])) : undefined;
}

/** The shard and sequence range a segment's key names (`last` absent in keys written before it was named). */
export interface SegmentRange {
  shardId?: string;
  first: string;
  last?: string;
}

/** The unit range of a segment's key, or undefined when the key is not a segment of a stager unit. */
export function segmentRangeOfKey(key: string): SegmentRange | undefined {
  const match = /^segments\/\d{13}\/\d{13}-([^/-]+)-(\d+)(?:-(\d+))?\.seg$/.exec(key);
  if (!match) return undefined;
  let shardId: string | undefined;
  try {
    shardId = decodeURIComponent(match[1]!);
  } catch {
    shardId = undefined;
  }
  return {
    ...(shardId === undefined ? {} : { shardId }),
    first: match[2]!,
    ...(match[3] ? { last: match[3] } : {}),
  };
}

function slotBase(slotStart: Date): string {
  return `slots/${slotStart.toISOString().slice(0, 10)}/${pad13(slotStart.getTime())}`;
}

export function slotDataKey(slotStart: Date): string {
  return `${slotBase(slotStart)}.data`;
}

export function slotIndexKey(slotStart: Date): string {
  return `${slotBase(slotStart)}.index`;
}

export function slotQuarantineKey(slotStart: Date): string {
  return `quarantine/dt=${slotStart.toISOString().slice(0, 10)}/${pad13(slotStart.getTime())}.ndjson.gz`;
}

/**
 * The order of staged refs: by stage time (a ref's slot start), then by key. `listWindow` returns a
 * window's refs in this order, the exporter's cursor counts in it, and consecutive windows of one
 * app follow each other in it (usecases/shared-staged-reads.ts relies on that).
 */
export function compareStagedObjects(
  a: { key: string; stageTime: Date },
  b: { key: string; stageTime: Date },
): number {
  return a.stageTime.getTime() - b.stageTime.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** Kinesis sequence numbers are decimal strings of up to 128 bits: compare them as integers. */
export function compareSequenceNumbers(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
