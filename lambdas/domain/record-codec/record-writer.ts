/**
 * Staged lines → output record lines for one connection and window: the parse path
 * (parse → select → project → serialize, as strings) and its byte-level counterpart, the
 * exporter's hot path. Pure: no I/O.
 */
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
} from '../export-record.ts';
import {
  bytesEqual,
  COLON,
  COMMA,
  EncodedNames,
  LBRACE,
  LBRACKET,
  MINUS,
  NINE,
  QUOTE,
  RBRACE,
  RBRACKET,
  sameBytes,
  scanString,
  ZERO,
} from './json-bytes.ts';
import type { RecordBytes } from './record-bytes.ts';

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
 * Where the acted-on top-level values of one line are (byte offsets, -1 when absent): filled by
 * scanLine, one object per writer reused for every line (no allocation per line).
 */
class LineSpans {
  nameStart = -1;
  nameEnd = -1;
  codeStart = -1;
  codeEnd = -1;
  userStart = -1;
  userEnd = -1;
  deviceStart = -1;
  deviceEnd = -1;
}

/**
 * One pass over the line [start, end) of `b`: fills `spans` and returns true when the line is
 * whitespace-free JSON with one of each acted-on key and a well-typed event_uuid / event_name /
 * event_time; false sends the line to the parse path (which reports a defect in its words).
 */
function scanLine(spans: LineSpans, b: Buffer, start: number, end: number): boolean {
  if (b[start] !== LBRACE || b[end - 1] !== RBRACE) return false;
  spans.nameStart = spans.nameEnd = spans.codeStart = spans.codeEnd = -1;
  spans.userStart = spans.userEnd = spans.deviceStart = spans.deviceEnd = -1;
  let uuid = false;
  let time = false;
  /** Which attribute value is open until the next top-level comma: 1 user, 2 device. */
  let open = 0;
  let depth = 0;
  for (let j = start; j < end; j++) {
    const c = b[j]!;
    if (c === QUOTE) {
      const stringEnd = scanString(b, j, end);
      if (stringEnd < 0) return false;
      if (depth === 1 && b[stringEnd] === COLON) {
        // A top-level key; its value starts after the colon.
        const value = stringEnd + 1;
        const key = ACTED_ON_KEYS.find(b, j, stringEnd);
        if (key === undefined) {
          // Any other key: its value is copied as staged.
        } else if (sameBytes(key, KEY_EVENT_NAME)) {
          if (spans.nameStart >= 0 || b[value] !== QUOTE) return false;
          spans.nameStart = value;
          spans.nameEnd = scanString(b, value, end);
          if (spans.nameEnd < value + 3) return false; // empty (or unterminated)
        } else if (sameBytes(key, KEY_EVENT_CODE)) {
          if (spans.codeStart >= 0) return false;
          spans.codeStart = value;
          spans.codeEnd = b[value] === QUOTE ? scanString(b, value, end) : -1;
        } else if (sameBytes(key, KEY_EVENT_UUID)) {
          if (uuid || b[value] !== QUOTE || b[value + 1] === QUOTE) return false;
          uuid = true;
        } else if (sameBytes(key, KEY_EVENT_TIME)) {
          const first = b[value]!;
          if (time || !(first === MINUS || (first >= ZERO && first <= NINE))) return false;
          time = true;
        } else if (sameBytes(key, KEY_USER_ATTRIBUTES)) {
          if (spans.userStart >= 0) return false;
          spans.userStart = value;
          open = 1;
        } else if (sameBytes(key, KEY_DEVICE_ATTRIBUTES)) {
          if (spans.deviceStart >= 0) return false;
          spans.deviceStart = value;
          open = 2;
        }
      }
      j = stringEnd - 1;
    } else if (c === LBRACE || c === LBRACKET) {
      depth++;
    } else if (c === RBRACE || c === RBRACKET || c === COMMA) {
      if (depth === 1 && open !== 0) {
        // The end of the open attribute value.
        if (open === 1) spans.userEnd = j;
        else spans.deviceEnd = j;
        open = 0;
      }
      if (c !== COMMA) {
        depth--;
        if (depth <= 0 && j !== end - 1) return false;
      }
    } else if (c <= 0x20) {
      return false;
    }
  }
  return depth === 0 && uuid && time && spans.nameStart >= 0;
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
  const spans = new LineSpans();

  /** SKIP, WRITTEN, or FALLBACK (nothing left in `out`). */
  const fastPath = (out: RecordBytes, b: Buffer, start: number, end: number): number => {
    // A defect is reported by the parse path, in its words.
    if (!scanLine(spans, b, start, end)) return FALLBACK;
    const { nameStart, nameEnd, codeStart, codeEnd, userStart, userEnd, deviceStart, deviceEnd } = spans;
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

/** What a record writer is compiled from: plain data, so it can be handed to a worker thread. */
export interface RecordWriterSpec {
  selection: Selection;
  frame: RecordFrame;
}

/** Compiled writers by spec, so a window's objects do not recompile theirs (a few per process). */
export class WriterCache {
  private readonly writers = new Map<string, RecordBytesWriter>();

  get(spec: RecordWriterSpec): RecordBytesWriter {
    const key = JSON.stringify(spec);
    let writer = this.writers.get(key);
    if (!writer) {
      if (this.writers.size >= 32) this.writers.clear();
      writer = compileRecordBytesWriter(spec.selection, spec.frame);
      this.writers.set(key, writer);
    }
    return writer;
  }
}
