/**
 * The byte formats of staged data (docs/staging-layout.md): a segment (one stager unit, every
 * app), a slot index (which bytes of a compacted slot hold which app), and the opaque ref keys
 * the exporter reads by. Sections are whole gzip members, so they can be cut and concatenated
 * without recompressing (RFC 1952 §2.2: a gzip file is a series of members).
 */
import { DomainError } from './errors.ts';

/** Section of a segment holding the unit's refused records instead of an app's events. */
export const QUARANTINE_SECTION = '$quarantine';

const SEGMENT_MAGIC = 'S3EXSEG1 ';
const HEADER_DIGITS = 10;
/** Bytes before a segment's header: the magic and the header's length. */
export const SEGMENT_PREAMBLE_BYTES = SEGMENT_MAGIC.length + HEADER_DIGITS + 1;
const INDEX_MAGIC = 'S3EXIDX1';

/** One section of a segment, or one entry of a slot index: `length` bytes at `offset` of the data. */
export interface SectionEntry {
  section: string;
  offset: number;
  length: number;
  /** Events (or quarantined items) in these bytes. */
  count: number;
}

export class CorruptStagedDataError extends DomainError {
  override readonly name = 'CorruptStagedDataError';
  constructor(
    readonly objectKey: string,
    reason: string,
  ) {
    super(
      `staged object ${objectKey} is corrupt (${reason}); nothing was exported from it. ` +
        'Restore it from a backup or move it aside, then the next attempt retries.',
    );
  }
}

function entryLines(entries: readonly SectionEntry[]): string {
  return entries.map((e) => `${e.section}\t${e.offset}\t${e.length}\t${e.count}\n`).join('');
}

function parseEntryLine(objectKey: string, line: string): SectionEntry {
  const [section, offset, length, count] = line.split('\t');
  const numbers = [offset, length, count].map(Number);
  if (!section || numbers.some((n) => !Number.isSafeInteger(n) || n < 0))
    throw new CorruptStagedDataError(objectKey, `bad index line "${line.slice(0, 80)}"`);
  return { section, offset: numbers[0]!, length: numbers[1]!, count: numbers[2]! };
}

/** Sections in the order every reader relies on: by name (code-unit order), quarantine first. */
export function compareSections(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A segment: preamble, header (one entry line per section, by name), then the sections' bytes. */
export function encodeSegment(
  sections: readonly { section: string; gzip: Uint8Array; count: number }[],
): Buffer {
  const sorted = [...sections].sort((a, b) => compareSections(a.section, b.section));
  const entries: SectionEntry[] = [];
  let offset = 0;
  for (const s of sorted) {
    entries.push({ section: s.section, offset, length: s.gzip.byteLength, count: s.count });
    offset += s.gzip.byteLength;
  }
  const header = Buffer.from(entryLines(entries), 'utf8');
  const preamble = Buffer.from(`${SEGMENT_MAGIC}${String(header.length).padStart(HEADER_DIGITS, '0')}\n`);
  return Buffer.concat([preamble, header, ...sorted.map((s) => s.gzip)]);
}

/** Where a segment's header ends (= where its data starts), from its first bytes. */
export function segmentDataStart(objectKey: string, head: Uint8Array): number {
  const preamble = Buffer.from(head.subarray(0, SEGMENT_PREAMBLE_BYTES)).toString('latin1');
  if (!preamble.startsWith(SEGMENT_MAGIC) || preamble.length < SEGMENT_PREAMBLE_BYTES)
    throw new CorruptStagedDataError(objectKey, 'not a segment');
  const headerLength = Number(preamble.slice(SEGMENT_MAGIC.length, SEGMENT_MAGIC.length + HEADER_DIGITS));
  if (!Number.isSafeInteger(headerLength)) throw new CorruptStagedDataError(objectKey, 'bad header length');
  return SEGMENT_PREAMBLE_BYTES + headerLength;
}

/** The sections of a segment, from bytes holding at least its preamble and header. */
export function decodeSegmentHeader(objectKey: string, head: Uint8Array): SectionEntry[] {
  const dataStart = segmentDataStart(objectKey, head);
  if (head.byteLength < dataStart) throw new CorruptStagedDataError(objectKey, 'header truncated');
  const text = Buffer.from(head.subarray(SEGMENT_PREAMBLE_BYTES, dataStart)).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => parseEntryLine(objectKey, line));
}

/** A slot index: a first line naming the slot, then one entry line per app chunk, by app. */
export function encodeSlotIndex(slotStartMs: number, entries: readonly SectionEntry[]): string {
  return `${INDEX_MAGIC}\t${slotStartMs}\t${entries.length}\n${entryLines(entries)}`;
}

/** The entries of `app` in a slot index (several when its data was cut into chunks), in order. */
export function findInSlotIndex(indexKey: string, text: string, app: string): SectionEntry[] {
  if (!text.startsWith(`${INDEX_MAGIC}\t`)) throw new CorruptStagedDataError(indexKey, 'not a slot index');
  const found: SectionEntry[] = [];
  const at = text.indexOf(`\n${app}\t`);
  if (at < 0) return found;
  // An app's chunks are consecutive lines.
  let lineStart = at + 1;
  while (lineStart < text.length && text.startsWith(`${app}\t`, lineStart)) {
    const end = text.indexOf('\n', lineStart);
    const stop = end < 0 ? text.length : end;
    found.push(parseEntryLine(indexKey, text.slice(lineStart, stop)));
    lineStart = stop + 1;
  }
  return found;
}

/** Every entry of a slot index (for the quarantine and for tools). */
export function parseSlotIndex(indexKey: string, text: string): SectionEntry[] {
  if (!text.startsWith(`${INDEX_MAGIC}\t`)) throw new CorruptStagedDataError(indexKey, 'not a slot index');
  return text
    .split('\n')
    .slice(1)
    .filter((line) => line.length > 0)
    .map((line) => parseEntryLine(indexKey, line));
}

/** A byte range of one stored object. */
export interface StoredRange {
  objectKey: string;
  offset: number;
  length: number;
}

/** An opaque staged-ref key naming one or more ranges: `key#offset+length|key#offset+length…`. */
export function encodeRefKey(ranges: readonly StoredRange[]): string {
  return ranges.map((r) => `${r.objectKey}#${r.offset}+${r.length}`).join('|');
}

/** The slot start of a ref's first range (its stage time), or undefined when not a ref key. */
export function stageTimeOfRefKey(refKey: string): Date | undefined {
  const match = /^slots\/[^/]+\/(\d{13})\.data#/.exec(refKey);
  return match ? new Date(Number(match[1])) : undefined;
}

export function decodeRefKey(refKey: string): StoredRange[] {
  return refKey.split('|').map((part) => {
    const hash = part.lastIndexOf('#');
    const match = /^(\d+)\+(\d+)$/.exec(part.slice(hash + 1));
    if (hash < 0 || !match) throw new CorruptStagedDataError(refKey, 'not a staged ref key');
    return { objectKey: part.slice(0, hash), offset: Number(match[1]), length: Number(match[2]) };
  });
}

/** How a range is found among the runs of a listing (rangeRuns): its object and first byte. */
export function rangeRunKey(objectKey: string, offset: number): string {
  return `${objectKey}#${offset}`;
}

/**
 * For every chunk of every slot, where the run of contiguous chunks it belongs to ends (one
 * app's data in one compacted slot is one such run). A reader that knows the run can fetch it
 * with one ranged GET and cut it into the chunks, instead of one GET per chunk.
 */
export function rangeRuns(slots: readonly SlotEntries[]): Map<string, number> {
  const runs = new Map<string, number>();
  for (const slot of slots) {
    let first = 0;
    for (let i = 0; i < slot.entries.length; i++) {
      const entry = slot.entries[i]!;
      const next = slot.entries[i + 1];
      if (next && next.offset === entry.offset + entry.length) continue;
      const end = entry.offset + entry.length;
      for (let j = first; j <= i; j++) runs.set(rangeRunKey(slot.dataKey, slot.entries[j]!.offset), end);
      first = i + 1;
    }
  }
  return runs;
}

/**
 * The GETs a reader that continues runs (adapters/continued-range-reads.ts) issues for `refKeys`
 * read in order: a range that starts where an open read of its run stopped costs none, any other
 * range one. The bench models reads with it; a test holds the adapter to it.
 */
export function continuedReadGets(refKeys: readonly string[], runs: ReadonlyMap<string, number>): number {
  const open = new Map<string, number>();
  let gets = 0;
  for (const refKey of refKeys) {
    for (const range of decodeRefKey(refKey)) {
      const at = rangeRunKey(range.objectKey, range.offset);
      const end = range.offset + range.length;
      let runEnd = open.get(at);
      open.delete(at);
      if (runEnd === undefined) {
        gets += 1;
        runEnd = runs.get(at) ?? end;
      }
      if (runEnd > end) open.set(rangeRunKey(range.objectKey, end), runEnd);
    }
  }
  return gets;
}

/**
 * A compacted app's data is cut into chunks of about this many stored bytes (at section boundaries):
 * the exporter's unit of work, held whole by a worker thread (a few at once), so it bounds the
 * exporter's memory. A run of chunks is still read with one GET (adapters/continued-range-reads.ts).
 */
export const SLOT_CHUNK_BYTES = 2 * 1024 * 1024;
/** Consecutive small chunks of a window are read and compressed together up to this many stored bytes. */
export const REF_GROUP_BYTES = 1024 * 1024;

/** One app's entries in one compacted slot. */
export interface SlotEntries {
  slotStart: Date;
  dataKey: string;
  entries: readonly SectionEntry[];
}

/** What the exporter reads, in order: `key` is an opaque ref key (encodeRefKey). */
export interface PlannedRef {
  key: string;
  stageTime: Date;
  size: number;
}

/**
 * A window's refs: its app's chunks in slot order, consecutive small ones grouped up to
 * `groupBytes`, so a small app's window is compressed as one piece (no member per slot) while
 * a large app's is read in bounded pieces. Deterministic in the slots alone.
 */
export function planWindowRefs(slots: readonly SlotEntries[], groupBytes = REF_GROUP_BYTES): PlannedRef[] {
  const refs: PlannedRef[] = [];
  let ranges: StoredRange[] = [];
  let stageTime: Date | undefined;
  let size = 0;
  const flush = () => {
    if (ranges.length > 0 && stageTime) refs.push({ key: encodeRefKey(ranges), stageTime, size });
    ranges = [];
    stageTime = undefined;
    size = 0;
  };
  for (const slot of slots) {
    for (const entry of slot.entries) {
      if (ranges.length > 0 && size + entry.length > groupBytes) flush();
      ranges.push({ objectKey: slot.dataKey, offset: entry.offset, length: entry.length });
      stageTime ??= slot.slotStart;
      size += entry.length;
    }
  }
  flush();
  return refs;
}
