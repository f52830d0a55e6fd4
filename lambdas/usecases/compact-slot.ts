/**
 * Compact one staging slot: every segment staged in it becomes one data object grouped by app,
 * plus an index written last (docs/platform-scale.md). Sections are copied as whole gzip
 * members, never recompressed. The output depends only on the slot's segments, which cannot
 * change once the slot's compaction may start (docs/exactly-once.md §2), so a repeated or
 * concurrent run writes the same bytes: compaction is idempotent.
 */

import { COMPACTION_DELAY_SECONDS } from '../definitions.ts';
import { mapBounded } from '../domain/bounded.ts';
import {
  compareSections,
  decodeSegmentHeader,
  encodeSlotIndex,
  QUARANTINE_SECTION,
  SEGMENT_PREAMBLE_BYTES,
  type SectionEntry,
  SLOT_CHUNK_BYTES,
  segmentDataStart,
} from '../domain/staged-segment.ts';
import {
  compactionStartOf,
  isSlotBoundary,
  SLOT_MS,
  segmentPrefix,
  slotDataKey,
  slotIndexKey,
  slotQuarantineKey,
  slotStartOf,
  stageTimeOfSegmentKey,
} from '../domain/staging-layout.ts';
import {
  type Clock,
  SlotsNotCompactedError,
  type StagedObjectRef,
  type StagingStore,
  type StoredKey,
} from '../ports/index.ts';
import { UseCaseError } from './errors.ts';

export interface CompactSlotDeps {
  store: StagingStore;
  clock: Clock;
  /** Stored bytes read from segments at once (the compactor's memory bound). */
  readChunkBytes?: number;
}

export type CompactOutcome =
  | { status: 'compacted'; segments: number; events: number; quarantined: number; bytes: number }
  | { status: 'already-compacted' }
  | { status: 'not-settled'; compactableAt: Date };

/**
 * First bytes read of each segment: its header, and the whole segment when it is small. Kept for
 * the whole compaction, so it bounds memory too (segments per slot x this).
 */
const HEAD_READ_BYTES = 128 * 1024;
const DEFAULT_READ_CHUNK_BYTES = 64 * 1024 * 1024;
/** Share of the function's memory the app groups may use (the rest: heads, upload buffers, runtime). */
const READ_BUDGET_SHARE = 0.4;

/**
 * The read budget for a compactor of `memoryMb`: the compaction's S3 GETs are about segments x
 * (slot bytes / budget), so the budget is as large as memory allows (docs/platform-scale.md).
 */
export function readBudgetForMemory(memoryMb: number | undefined): number {
  if (!memoryMb || !Number.isFinite(memoryMb) || memoryMb <= 0) return DEFAULT_READ_CHUNK_BYTES;
  return Math.max(DEFAULT_READ_CHUNK_BYTES, Math.floor(memoryMb * READ_BUDGET_SHARE) * 1024 * 1024);
}

interface Segment {
  key: string;
  size: number;
  /** The segment's bytes from 0, at least through its header (all of it when small). */
  head: Uint8Array;
  dataStart: number;
  sections: SectionEntry[];
  bySection: Map<string, SectionEntry>;
}

export async function compactSlot(slotStart: Date, deps: CompactSlotDeps): Promise<CompactOutcome> {
  if (!isSlotBoundary(slotStart)) throw new RangeError(`${slotStart.toISOString()} is not a slot start`);
  const compactableAt = compactionStartOf(slotStart);
  if (deps.clock.now().getTime() < compactableAt.getTime()) return { status: 'not-settled', compactableAt };
  if (await deps.store.exists(slotIndexKey(slotStart))) return { status: 'already-compacted' };

  const listed = (await deps.store.listPrefix(segmentPrefix(slotStart))).filter(
    (object) => stageTimeOfSegmentKey(object.key) !== undefined,
  );
  const segments = await mapBounded(listed, 16, (object) => readHeader(object, deps.store));
  const apps = appsOf(segments);

  const index: SectionEntry[] = [];
  let bytes = 0;
  if (apps.length > 0) {
    const data = slotData(segments, apps, deps, index);
    await deps.store.writeStream(slotDataKey(slotStart), data);
    bytes = index.reduce((n, e) => n + e.length, 0);
  }
  const quarantined = await writeQuarantine(slotStart, segments, deps.store);
  // The index is the commit point: once it exists the slot is compacted.
  await deps.store.createObject(
    slotIndexKey(slotStart),
    Buffer.from(encodeSlotIndex(slotStart.getTime(), index), 'utf8'),
  );
  return {
    status: 'compacted',
    segments: segments.length,
    events: index.reduce((n, e) => n + e.count, 0),
    quarantined,
    bytes,
  };
}

async function readHeader(object: StoredKey, store: StagingStore): Promise<Segment> {
  let head = await mustRead(store, object.key, { offset: 0, length: Math.min(object.size, HEAD_READ_BYTES) });
  const dataStart = segmentDataStart(object.key, head.subarray(0, SEGMENT_PREAMBLE_BYTES));
  if (head.byteLength < dataStart) head = await mustRead(store, object.key, { offset: 0, length: dataStart });
  const sections = decodeSegmentHeader(object.key, head);
  return { ...object, head, dataStart, sections, bySection: new Map(sections.map((s) => [s.section, s])) };
}

async function mustRead(
  store: StagingStore,
  key: string,
  range: { offset: number; length: number },
): Promise<Uint8Array> {
  const bytes = await store.readBytes(key, range);
  // Listed a moment ago and never deleted before it expires: a missing segment is a real fault.
  if (!bytes) throw new Error(`segment ${key} was listed but cannot be read`);
  return bytes;
}

function appsOf(segments: readonly Segment[]): string[] {
  const apps = new Set<string>();
  for (const segment of segments)
    for (const section of segment.sections)
      if (section.section !== QUARANTINE_SECTION) apps.add(section.section);
  return [...apps].sort(compareSections);
}

/**
 * The slot's data: apps in order, each app's sections in segment order. Apps are taken in groups
 * of about `readChunkBytes` stored bytes, read with one ranged GET per segment and group, so
 * memory stays bounded whatever the slot's size. Fills `index` as the bytes go out.
 */
async function* slotData(
  segments: readonly Segment[],
  apps: readonly string[],
  deps: CompactSlotDeps,
  index: SectionEntry[],
): AsyncGenerator<Uint8Array> {
  let offset = 0;
  for (const group of appGroups(segments, apps, deps.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES)) {
    const spans = await mapBounded(segments, 16, (segment) => readSpan(segment, group, deps.store));
    for (const app of group) {
      let chunk: SectionEntry | undefined;
      for (const [i, segment] of segments.entries()) {
        const section = segment.bySection.get(app);
        if (!section) continue;
        const span = spans[i]!;
        if (chunk && chunk.length > 0 && chunk.length + section.length > SLOT_CHUNK_BYTES) chunk = undefined;
        if (!chunk) {
          chunk = { section: app, offset, length: 0, count: 0 };
          index.push(chunk);
        }
        chunk.length += section.length;
        chunk.count += section.count;
        offset += section.length;
        yield span.bytes.subarray(section.offset - span.from, section.offset - span.from + section.length);
      }
    }
  }
}

function appGroups(segments: readonly Segment[], apps: readonly string[], budget: number): string[][] {
  const sizes = new Map<string, number>();
  for (const segment of segments)
    for (const s of segment.sections) sizes.set(s.section, (sizes.get(s.section) ?? 0) + s.length);
  const groups: string[][] = [];
  let group: string[] = [];
  let size = 0;
  for (const app of apps) {
    const appSize = sizes.get(app) ?? 0;
    if (group.length > 0 && size + appSize > budget) {
      groups.push(group);
      group = [];
      size = 0;
    }
    group.push(app);
    size += appSize;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** The bytes of `segment`'s data covering the sections of `group` (contiguous: sections are sorted). */
async function readSpan(
  segment: Segment,
  group: readonly string[],
  store: StagingStore,
): Promise<{ from: number; bytes: Uint8Array }> {
  let from = Number.POSITIVE_INFINITY;
  let to = 0;
  for (const app of group) {
    const section = segment.bySection.get(app);
    if (!section) continue;
    from = Math.min(from, section.offset);
    to = Math.max(to, section.offset + section.length);
  }
  if (to === 0) return { from: 0, bytes: new Uint8Array(0) };
  const start = segment.dataStart + from;
  if (start + (to - from) <= segment.head.byteLength)
    return { from, bytes: segment.head.subarray(start, start + (to - from)) };
  return { from, bytes: await mustRead(store, segment.key, { offset: start, length: to - from }) };
}

/** The slot's refused records, one gzip file (members concatenated); returns their number. */
async function writeQuarantine(slotStart: Date, segments: readonly Segment[], store: StagingStore) {
  const members: Uint8Array[] = [];
  let count = 0;
  for (const segment of segments) {
    const section = segment.bySection.get(QUARANTINE_SECTION);
    if (!section) continue;
    const span = await readSpan(segment, [QUARANTINE_SECTION], store);
    members.push(span.bytes);
    count += section.count;
  }
  if (members.length > 0) await store.createObject(slotQuarantineKey(slotStart), Buffer.concat(members));
  return count;
}

/** A window whose last slots cannot be compacted yet: it must not be exported before. */
export class WindowNotSettledError extends UseCaseError {
  override readonly name = 'WindowNotSettledError';
}

/**
 * A window's refs, compacting on the spot any slot the compactor has not reached yet (it is
 * scheduled, but an export must never wait for it nor read a slot as empty because it is late).
 */
export async function listSettledWindow(
  store: StagingStore,
  clock: Clock,
  appId: string,
  start: Date,
  end: Date,
  groupBytes?: number,
): Promise<StagedObjectRef[]> {
  // First round: compactions shared with concurrent callers; second (rare): the slots are still
  // missing (another bucket's slot of the same name was compacted), compacted by this caller.
  for (const compact of [compactOnce, compactSlot]) {
    try {
      return await store.listWindow(appId, start, end, groupBytes);
    } catch (error) {
      if (!(error instanceof SlotsNotCompactedError)) throw error;
      const outcomes = await mapBounded(error.slotStarts, 4, (slot) => compact(slot, { store, clock }));
      for (const outcome of outcomes)
        if (outcome.status === 'not-settled')
          throw new WindowNotSettledError(
            `the window ending ${end.toISOString()} cannot be read before ${outcome.compactableAt.toISOString()} ` +
              '(its last staging slot may still receive events)',
            { cause: error },
          );
    }
  }
  return store.listWindow(appId, start, end, groupBytes);
}

/** On-demand compactions running in this process, by slot index key. */
const compacting = new Map<string, Promise<CompactOutcome>>();

/**
 * `compactSlot`, once at a time per slot in this process: the members of a batch job run
 * concurrently and often need the same missing slots. A caller that finds the slot being
 * compacted shares that run's outcome (listSettledWindow checks the listing afterwards).
 */
async function compactOnce(slotStart: Date, deps: CompactSlotDeps): Promise<CompactOutcome> {
  const key = slotIndexKey(slotStart);
  const running = compacting.get(key);
  if (running) return running;
  const run = compactSlot(slotStart, deps);
  compacting.set(key, run);
  try {
    return await run;
  } finally {
    compacting.delete(key);
  }
}

/** Slots a scheduled run looks back over: a missed run (an outage) is caught up by the next ones. */
export const COMPACTION_LOOKBACK_SLOTS = 8;

export interface DueCompaction {
  slotStart: Date;
  outcome: CompactOutcome;
}

/**
 * What the compaction schedule does at `at`: compact every slot whose compaction may start by
 * then, oldest first, looking back `lookbackSlots` slots; slots already compacted cost one HEAD.
 */
export async function compactDueSlots(
  at: Date,
  deps: CompactSlotDeps,
  lookbackSlots = COMPACTION_LOOKBACK_SLOTS,
): Promise<DueCompaction[]> {
  const latest = slotStartOf(new Date(at.getTime() - COMPACTION_DELAY_SECONDS * 1000 - SLOT_MS));
  const done: DueCompaction[] = [];
  for (let i = lookbackSlots - 1; i >= 0; i--) {
    const slotStart = new Date(latest.getTime() - i * SLOT_MS);
    done.push({ slotStart, outcome: await compactSlot(slotStart, { ...deps, clock: { now: () => at } }) });
  }
  return done;
}
