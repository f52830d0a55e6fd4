/**
 * Streaming of one window's records: staged objects → gunzip → lines →
 * (pass-through | parse → select → project → serialize) → record lines.
 * Output is produced as large string chunks; nothing holds a whole object.
 */
import type { Readable } from 'node:stream';
import { createGunzip, gzip } from 'node:zlib';
import {
  ALWAYS_KEPT_DEVICE_ATTRIBUTE,
  ALWAYS_KEPT_USER_ATTRIBUTE,
  CorruptStagedLineError,
  compileShaper,
  eventDefect,
  isPassThrough,
  type ReceivedEvent,
  type RecordFrame,
  type Selection,
} from '../domain/export-record.ts';

export interface RecordWriterStats {
  records: number;
}

/**
 * Turns staged lines into output record lines for one connection and window.
 * Returns, per batch of lines, the output text (may be empty) and how many records it holds.
 */
export function compileRecordWriter(
  selection: Selection,
  frame: RecordFrame,
): (stagedKey: string, firstLineNumber: number, lines: string[]) => { text: string; records: number } {
  if (isPassThrough(selection)) {
    // Staged lines are our own JSON.stringify output of validated events: copy them verbatim.
    return (_key, _first, lines) => {
      if (lines.length === 0) return { text: '', records: 0 };
      const joiner = `${frame.tail}\n${frame.head}`;
      return { text: `${frame.head}${lines.join(joiner)}${frame.tail}\n`, records: lines.length };
    };
  }
  const shaper = compileShaper(selection);
  return (stagedKey, firstLineNumber, lines) => {
    let text = '';
    let records = 0;
    for (let i = 0; i < lines.length; i++) {
      let event: unknown;
      try {
        event = JSON.parse(lines[i]!);
      } catch {
        throw new CorruptStagedLineError(stagedKey, firstLineNumber + i, 'not valid JSON');
      }
      const defect = eventDefect(event);
      if (defect) throw new CorruptStagedLineError(stagedKey, firstLineNumber + i, defect);
      const shaped = shaper.shape(event as ReceivedEvent);
      if (!shaped) continue;
      text += `${frame.head}${JSON.stringify(shaped)}${frame.tail}\n`;
      records++;
    }
    return { text, records };
  };
}

// ---------------------------------------------------------------- byte-level records (the exporter's hot path)
//
// The exporter works on the staged bytes: no UTF-8 decoding, no strings, and no JSON.parse of a
// line. Staged lines are events as received, without whitespace (big integers, `1.50`, any valid
// escape), so every kept byte is copied as staged. One pass over the line finds the top-level keys
// the selection needs (an escaped key or event name is decoded to be compared); the attribute
// objects are rewritten in place. A line that is not whitespace-free JSON with one of each acted-on
// key (whitespace between tokens, an invalid escape, a raw control character, unbalanced brackets,
// a duplicated key among those acted on, a kept `__proto__`, a missing or mistyped event_uuid /
// event_name / event_time) takes the parse path of compileRecordWriter, so its record (re-serialized)
// or its CorruptStagedLineError is exactly that path's.
// What is not checked, like pass-through does not check it: the grammar of values copied
// verbatim (numbers, literals, commas) and duplicated keys inside them — the stager validated them,
// and a copied value is copied as staged.

/** Output chunks are handed on at about this many bytes. */
const CHUNK_BYTES = 256 * 1024;

const QUOTE = 0x22;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const NEWLINE = 0x0a;

/** Growable output of whole records; `take()` hands the bytes written so far on. */
export class RecordBytes {
  private buffer: Buffer;
  /** Bytes written into `buffer`. */
  length = 0;

  /** `chunkBytes`: about how much is taken at a time; room for twice that is kept so growing is rare. */
  constructor(private readonly chunkBytes = CHUNK_BYTES) {
    this.buffer = Buffer.allocUnsafe(2 * chunkBytes);
  }

  /** Make room for `n` more bytes (the chunk handed on by `take` never splits a record). */
  reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    // Doubling: a chunk that is taken late costs one copy, not one per record.
    const next = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, this.length + n));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }

  /** Copy bytes [start, end) of `source`; room must have been reserved. */
  put(source: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n < 64) {
      // Keys and small values: a loop is cheaper than a subarray view per copy.
      const buffer = this.buffer;
      const at = this.length - start;
      for (let i = start; i < end; i++) buffer[at + i] = source[i]!;
    } else {
      this.buffer.set(source.subarray(start, end), this.length);
    }
    this.length += n;
  }

  putAll(source: Uint8Array): void {
    this.buffer.set(source, this.length);
    this.length += source.length;
  }

  putByte(byte: number): void {
    this.buffer[this.length++] = byte;
  }

  /** Write `text` as UTF-8; room for its byte length must have been reserved. */
  putString(text: string): void {
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** The bytes written so far (a fresh buffer is used from now on). */
  take(): Buffer {
    const out = this.buffer.subarray(0, this.length);
    this.buffer = Buffer.allocUnsafe(2 * this.chunkBytes);
    this.length = 0;
    return out;
  }

  /**
   * The bytes written so far, as a view of the buffer, which is written over from the next write on:
   * for a consumer that is done with them before that (no allocation per chunk).
   */
  view(): Buffer {
    const out = this.buffer.subarray(0, this.length);
    this.length = 0;
    return out;
  }
}

/**
 * Appends the record of one staged line (bytes [start, end) of `line`, without its newline) to `out`.
 * Returns 1 when a record was written, 0 when the event is not selected; throws CorruptStagedLineError.
 */
export type RecordBytesWriter = (
  out: RecordBytes,
  stagedKey: string,
  lineNumber: number,
  line: Buffer,
  start: number,
  end: number,
) => 0 | 1;

/**
 * End of the JSON string whose opening quote is at `i` (the index after its closing quote), or -1
 * when it is unterminated, holds a raw control character or an invalid escape (RFC 8259 §7).
 * Every valid escape is accepted: staged events keep the producer's bytes, so `\/`, `\u0041` or a
 * lone `\ud83d` are as they were received, and are copied as they are.
 */
function scanString(b: Uint8Array, i: number, end: number): number {
  for (let j = i + 1; j < end; j++) {
    const c = b[j]!;
    if (c === QUOTE) return j + 1;
    if (c < 0x20) return -1;
    if (c === BACKSLASH) {
      const n = b[j + 1];
      // The short escapes: \" \\ \/ \b \f \n \r \t
      if (
        n === QUOTE ||
        n === BACKSLASH ||
        n === SLASH ||
        n === 0x62 ||
        n === 0x66 ||
        n === 0x6e ||
        n === 0x72 ||
        n === 0x74
      ) {
        j++;
        continue;
      }
      if (
        n === 0x75 &&
        j + 5 < end &&
        isHex(b[j + 2]!) &&
        isHex(b[j + 3]!) &&
        isHex(b[j + 4]!) &&
        isHex(b[j + 5]!)
      ) {
        j += 5;
        continue;
      }
      return -1;
    }
  }
  return -1;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hasBackslash(b: Uint8Array, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (b[k] === BACKSLASH) return true;
  return false;
}

/** The value of the JSON string token [start, end) of `b` (scanned already), decoding its escapes. */
function decodeString(b: Uint8Array, start: number, end: number): string {
  return JSON.parse(Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8')) as string;
}

/** JSON-encoded strings (with their quotes, as JSON.stringify writes them), looked up by byte length. */
class EncodedNames {
  private readonly byLength = new Map<number, Uint8Array[]>();
  private readonly byName = new Map<string, Uint8Array>();
  constructor(names: Iterable<string>) {
    for (const name of names) {
      const encoded = Buffer.from(JSON.stringify(name), 'utf8');
      const list = this.byLength.get(encoded.length) ?? [];
      list.push(encoded);
      this.byLength.set(encoded.length, list);
      this.byName.set(name, encoded);
    }
  }

  /**
   * The encoded name whose value equals the string token [start, end) of `b`, or undefined. A token
   * written with other escapes than JSON.stringify's (`"\u0041ge"` for "Age") is decoded first.
   */
  find(b: Uint8Array, start: number, end: number): Uint8Array | undefined {
    const candidates = this.byLength.get(end - start);
    if (candidates) for (const candidate of candidates) if (bytesEqual(b, start, candidate)) return candidate;
    return hasBackslash(b, start + 1, end - 1) ? this.byName.get(decodeString(b, start, end)) : undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && bytesEqual(a, 0, b);
}

function bytesEqual(b: Uint8Array, start: number, expected: Uint8Array): boolean {
  for (let k = 0; k < expected.length; k++) if (b[start + k] !== expected[k]) return false;
  return true;
}

const KEY_EVENT_NAME = Buffer.from('"event_name"');
const KEY_EVENT_CODE = Buffer.from('"event_code"');
const KEY_EVENT_UUID = Buffer.from('"event_uuid"');
const KEY_EVENT_TIME = Buffer.from('"event_time"');
const KEY_USER_ATTRIBUTES = Buffer.from('"user_attributes"');
const KEY_DEVICE_ATTRIBUTES = Buffer.from('"device_attributes"');
const KEY_PROTO = Buffer.from('"__proto__"');
/** The top-level keys the fast path acts on, found by their value however the key is escaped. */
const ACTED_ON_KEYS = new EncodedNames([
  'event_name',
  'event_code',
  'event_uuid',
  'event_time',
  'user_attributes',
  'device_attributes',
]);

const FALLBACK = -1;
const SKIP = 0;
const WRITTEN = 1;

/**
 * Write the kept members of the attribute value [start, end) (scanned already); a value that is not
 * an object is kept as it is, like projectAttributes does. FALLBACK (with `out` to be rolled back)
 * on a kept key seen twice or a kept `__proto__`, which JSON.parse + assignment would not keep.
 */
function putProjected(
  out: RecordBytes,
  b: Uint8Array,
  start: number,
  end: number,
  keep: EncodedNames,
): number {
  if (b[start] !== LBRACE) {
    out.put(b, start, end);
    return WRITTEN;
  }
  out.putByte(LBRACE);
  let kept: Uint8Array[] | undefined;
  let memberStart = -1;
  let depth = 0;
  for (let j = start; j < end; j++) {
    const c = b[j]!;
    if (c === QUOTE) {
      const stringEnd = scanString(b, j, end);
      if (depth === 1 && b[stringEnd] === COLON) {
        const name = keep.find(b, j, stringEnd);
        if (name) {
          if (kept?.includes(name) || (name.length === KEY_PROTO.length && bytesEqual(name, 0, KEY_PROTO)))
            return FALLBACK;
          if (kept) out.putByte(COMMA);
          else kept = [];
          kept.push(name);
          memberStart = j;
        }
      }
      j = stringEnd - 1;
    } else if (c === LBRACE || c === LBRACKET) {
      depth++;
    } else if (depth === 1 && (c === COMMA || c === RBRACE)) {
      // The end of a member (or of the object).
      if (memberStart >= 0) out.put(b, memberStart, j);
      memberStart = -1;
      if (c === RBRACE) depth--;
    } else if (c === RBRACE || c === RBRACKET) {
      depth--;
    }
  }
  out.putByte(RBRACE);
  return WRITTEN;
}

/**
 * The byte-level counterpart of compileRecordWriter: the same record bytes for every stager-written
 * line (and, through the parse path, for every line that shows it is not canonical).
 */
export function compileRecordBytesWriter(selection: Selection, frame: RecordFrame): RecordBytesWriter {
  const head = Buffer.from(frame.head, 'utf8');
  const tail = Buffer.from(`${frame.tail}\n`, 'utf8');
  const frameBytes = head.length + tail.length;
  if (isPassThrough(selection)) {
    // Staged lines are our own JSON.stringify output of validated events: copy them verbatim.
    return (out, _key, _line, line, start, end) => {
      out.reserve(frameBytes + end - start);
      out.putAll(head);
      out.put(line, start, end);
      out.putAll(tail);
      return WRITTEN;
    };
  }

  const parsePath = compileRecordWriter(selection, frame);
  const names = selection.events.mode === 'SELECTED' ? new EncodedNames(selection.events.names) : undefined;
  const keepOf = (keep: 'ALL' | readonly string[], alwaysKept: string) =>
    keep === 'ALL' ? undefined : new EncodedNames(new Set([...keep, alwaysKept]));
  const keepUser = keepOf(selection.userAttributes, ALWAYS_KEPT_USER_ATTRIBUTE);
  const keepDevice = keepOf(selection.deviceAttributes, ALWAYS_KEPT_DEVICE_ATTRIBUTE);

  /** SKIP, WRITTEN, or FALLBACK (nothing left in `out`). */
  const fastPath = (out: RecordBytes, b: Buffer, start: number, end: number): number => {
    if (b[start] !== LBRACE || b[end - 1] !== RBRACE) return FALLBACK;
    let nameStart = -1;
    let nameEnd = -1;
    let codeStart = -1;
    let codeEnd = -1;
    let userStart = -1;
    let userEnd = -1;
    let deviceStart = -1;
    let deviceEnd = -1;
    let uuid = false;
    let time = false;
    /** Which attribute value is open until the next top-level comma: 1 user, 2 device. */
    let open = 0;
    let depth = 0;
    for (let j = start; j < end; j++) {
      const c = b[j]!;
      if (c === QUOTE) {
        const stringEnd = scanString(b, j, end);
        if (stringEnd < 0) return FALLBACK;
        if (depth === 1 && b[stringEnd] === COLON) {
          // A top-level key; its value starts after the colon.
          const value = stringEnd + 1;
          const key = ACTED_ON_KEYS.find(b, j, stringEnd);
          if (key === undefined) {
            // Any other key: its value is copied as staged.
          } else if (sameBytes(key, KEY_EVENT_NAME)) {
            if (nameStart >= 0 || b[value] !== QUOTE) return FALLBACK;
            nameStart = value;
            nameEnd = scanString(b, value, end);
            if (nameEnd < value + 3) return FALLBACK; // empty (or unterminated)
          } else if (sameBytes(key, KEY_EVENT_CODE)) {
            if (codeStart >= 0) return FALLBACK;
            codeStart = value;
            codeEnd = b[value] === QUOTE ? scanString(b, value, end) : -1;
          } else if (sameBytes(key, KEY_EVENT_UUID)) {
            if (uuid || b[value] !== QUOTE || b[value + 1] === QUOTE) return FALLBACK;
            uuid = true;
          } else if (sameBytes(key, KEY_EVENT_TIME)) {
            const first = b[value]!;
            if (time || !(first === MINUS || (first >= ZERO && first <= NINE))) return FALLBACK;
            time = true;
          } else if (sameBytes(key, KEY_USER_ATTRIBUTES)) {
            if (userStart >= 0) return FALLBACK;
            userStart = value;
            open = 1;
          } else if (sameBytes(key, KEY_DEVICE_ATTRIBUTES)) {
            if (deviceStart >= 0) return FALLBACK;
            deviceStart = value;
            open = 2;
          }
        }
        j = stringEnd - 1;
      } else if (c === LBRACE || c === LBRACKET) {
        depth++;
      } else if (c === RBRACE || c === RBRACKET || c === COMMA) {
        if (depth === 1 && open !== 0) {
          // The end of the open attribute value.
          if (open === 1) userEnd = j;
          else deviceEnd = j;
          open = 0;
        }
        if (c !== COMMA) {
          depth--;
          if (depth <= 0 && j !== end - 1) return FALLBACK;
        }
      } else if (c <= 0x20) {
        return FALLBACK;
      }
    }
    // A defect is reported by the parse path, in its words.
    if (depth !== 0 || !uuid || !time || nameStart < 0) return FALLBACK;
    if (names && !names.find(b, nameStart, nameEnd) && !(codeEnd > 0 && names.find(b, codeStart, codeEnd))) {
      return SKIP;
    }

    out.reserve(frameBytes + end - start);
    const mark = out.length;
    out.putAll(head);
    let from = start;
    const userFirst = userStart < deviceStart;
    for (let k = 0; k < 2; k++) {
      const user = userFirst === (k === 0);
      const keep = user ? keepUser : keepDevice;
      const spanStart = user ? userStart : deviceStart;
      if (spanStart < 0 || !keep) continue;
      out.put(b, from, spanStart);
      if (putProjected(out, b, spanStart, user ? userEnd : deviceEnd, keep) === FALLBACK) {
        out.length = mark;
        return FALLBACK;
      }
      from = user ? userEnd : deviceEnd;
    }
    out.put(b, from, end);
    out.putAll(tail);
    return WRITTEN;
  };

  return (out, stagedKey, lineNumber, line, start, end) => {
    const fast = fastPath(out, line, start, end);
    if (fast !== FALLBACK) return fast as 0 | 1;
    const { text, records } = parsePath(stagedKey, lineNumber, [line.toString('utf8', start, end)]);
    if (records === 0) return 0;
    out.reserve(Buffer.byteLength(text, 'utf8'));
    out.putString(text);
    return 1;
  };
}

/** Yields the records of one staged object as byte chunks of about `chunkBytes` (cut after the record that fills one). */
export async function* objectRecordBytes(
  stagedKey: string,
  gzipped: Readable,
  write: RecordBytesWriter,
  stats: RecordWriterStats,
  chunkBytes = CHUNK_BYTES,
  /** Write into this buffer and yield views of it: each chunk is valid only until the next is asked for. */
  scratch?: RecordBytes,
): AsyncGenerator<Buffer> {
  const gunzip = gzipped.pipe(createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }));
  gzipped.on('error', (err) => gunzip.destroy(err));
  const out = scratch ?? new RecordBytes(chunkBytes);
  out.length = 0;
  const take = () => (scratch ? out.view() : out.take());
  // The start of a line that continues in the next chunk.
  let carry: Buffer[] = [];
  let lineNumber = 1;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let pos = 0;
      if (carry.length > 0) {
        const newline = chunk.indexOf(NEWLINE);
        if (newline < 0) {
          carry.push(chunk);
          continue;
        }
        carry.push(chunk.subarray(0, newline));
        const line = Buffer.concat(carry);
        carry = [];
        if (line.length > 0) stats.records += write(out, stagedKey, lineNumber++, line, 0, line.length);
        pos = newline + 1;
        if (out.length >= chunkBytes) yield take();
      }
      for (;;) {
        const newline = chunk.indexOf(NEWLINE, pos);
        if (newline < 0) break;
        if (newline > pos) stats.records += write(out, stagedKey, lineNumber++, chunk, pos, newline);
        pos = newline + 1;
        // Cut after the record that fills a chunk: where chunks end depends on the records only,
        // not on how the staged bytes arrived (gzip members are cut here: same input, same bytes).
        if (out.length >= chunkBytes) yield take();
      }
      if (pos < chunk.length) carry.push(chunk.subarray(pos));
    }
    if (carry.length > 0) {
      const line = Buffer.concat(carry);
      stats.records += write(out, stagedKey, lineNumber, line, 0, line.length);
    }
    if (out.length > 0) yield take();
  } finally {
    // Stopped early (a failure downstream): release the staged object's connection.
    if (!gzipped.readableEnded) gzipped.destroy();
  }
}

// ---------------------------------------------------------------- one staged object → gzip members

/** gunzip output chunk size: fewer, larger hand-offs from the zlib thread than the default 16 KiB. */
const GUNZIP_CHUNK_BYTES = 64 * 1024;

/** Uncompressed record bytes per gzip member (about; members end at record ends). */
export const DEFAULT_GZIP_BLOCK_BYTES = 1024 * 1024;

/** What a record writer is compiled from: plain data, so it can be handed to a worker thread. */
export interface RecordWriterSpec {
  selection: Selection;
  frame: RecordFrame;
}

/** One staged object's selected records, compressed. */
export interface CompressedRecords {
  /**
   * Consecutive gzip members, one per ~block of records, in order: a valid RFC 1952 file (§2.2,
   * "a series of members") that gunzip, zcat, Python's gzip, Java's GZIPInputStream and Node's
   * zlib read as one stream, and that stays valid when appended to the members of the previous
   * object. Empty when no record was selected. Its own ArrayBuffer (transferable).
   */
  gzip: Uint8Array;
  records: number;
  /** Uncompressed bytes of those records (what a part's size counts). */
  bytes: number;
}

export type BlockCompressor = (block: Buffer, level: number) => Buffer | Promise<Buffer>;

/** gzip on libuv's threadpool: the main thread's compressor when no worker thread is used. */
const gzipOnThreadpool: BlockCompressor = (block, level) =>
  new Promise((resolve, reject) => {
    gzip(block, { level }, (error, member) => (error ? reject(error) : resolve(member)));
  });

/**
 * Select, project and compress one staged object: its records are cut into blocks of about
 * `blockBytes` at record ends and each block becomes one gzip member. The blocks depend only on
 * the object's bytes and the writer, so the same object always gives the same bytes (a retried part
 * rewrites the same object), whichever thread or compressor runs it.
 */
export async function compressObjectRecords(
  stagedKey: string,
  gzipped: Readable,
  write: RecordBytesWriter,
  options: { level: number; blockBytes?: number; scratch?: RecordBytes },
  compress: BlockCompressor = gzipOnThreadpool,
): Promise<CompressedRecords> {
  const stats: RecordWriterStats = { records: 0 };
  const members: Buffer[] = [];
  let bytes = 0;
  let size = 0;
  const blockBytes = options.blockBytes ?? DEFAULT_GZIP_BLOCK_BYTES;
  // A block is compressed before the next is written, so one scratch buffer can hold them all.
  const scratch = options.scratch ?? new RecordBytes(blockBytes);
  for await (const block of objectRecordBytes(stagedKey, gzipped, write, stats, blockBytes, scratch)) {
    bytes += block.length;
    const member = await compress(block, options.level);
    size += member.length;
    members.push(member);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const member of members) {
    out.set(member, at);
    at += member.length;
  }
  return { gzip: out, records: stats.records, bytes };
}
