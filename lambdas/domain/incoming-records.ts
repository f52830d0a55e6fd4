/**
 * Decoding of one Kinesis record's data into events, byte for byte as received
 * (docs/incoming-records.md).
 *
 * A record holds `{"app_id": "<app>", "event": {...}}` — one JSON object (pretty-printed or
 * not), or several of them as NDJSON lines, or a KPL aggregated record whose user records are
 * each one of those. Every event is validated and refused (quarantined) on its own; nothing here
 * throws. The event is kept as its received bytes minus whitespace outside strings, so number
 * and string token text (big integers, `1.50`, escapes) and key order reach the customer as sent.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { eventDefect } from './export-record.ts';

export interface DecodedEvent {
  appId: string;
  /**
   * The event JSON value's exact bytes as received, with only insignificant whitespace (outside
   * strings) removed, so it is one NDJSON line. Token text is never changed: integers above 2^53,
   * `1.50`, `1e3`, string escapes like `\u00e9`, numeric-looking keys and key order stay byte for byte.
   */
  event: Buffer;
}

export interface QuarantinedItem {
  /** In words: what is wrong, how to fix it. */
  reason: string;
  /** The exact bytes of the refused item (a line, a KPL user record, or the whole record). */
  data: Buffer;
  /**
   * Position inside the record: NDJSON line number (1-based) or KPL user-record index (0-based);
   * undefined for a whole record.
   */
  position?: { line?: number; userRecord?: number };
}

export interface DecodedRecord {
  events: DecodedEvent[];
  quarantined: QuarantinedItem[];
}

/** Deepest nesting of objects/arrays accepted in an event (the event object itself is level 1). */
export const MAX_EVENT_DEPTH = 64;
/** Largest item (one JSON object: a whole record, a line or a KPL user record) accepted. */
export const MAX_ITEM_BYTES = 1024 * 1024;

export const APP_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const APP_ID_DEFECT = 'app_id is missing or not 1-64 characters of letters, digits, "_", "." or "-"';

/** First bytes of a KPL aggregated record (https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md). */
const KPL_MAGIC = [0xf3, 0x89, 0x9a, 0xc2] as const;
const MD5_BYTES = 16;

const TAB = 0x09;
const NEWLINE = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const ZERO = 0x30;
const ONE = 0x31;
const NINE = 0x39;
const COLON = 0x3a;
const UPPER_E = 0x45;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LOWER_E = 0x65;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
const KEY_APP_ID = Buffer.from('"app_id"');
const KEY_EVENT = Buffer.from('"event"');
/**
 * The event's keys the stager checks (the first three) or the exporter acts on: each may appear once,
 * so every reader sees the same value and the exporter can keep the event's bytes.
 */
const ACTED_ON_KEYS = [
  'event_uuid',
  'event_name',
  'event_time',
  'event_code',
  'user_attributes',
  'device_attributes',
];
const ACTED_ON_TOKENS = ACTED_ON_KEYS.map((key) => Buffer.from(JSON.stringify(key)));

/** Roles of an object in the scan: the record's envelope, its event, or any other value. */
const PLAIN = 0;
const ENVELOPE = 1;
const EVENT = 2;

const FORMAT_HINT = 'send one {"app_id": ..., "event": {...}} JSON object per record or per line';

/**
 * Decode one Kinesis record's data (base64-decoded already). Never throws: whatever cannot be
 * staged comes back in `quarantined` with its exact bytes and the reason.
 */
export function decodeRecordData(data: Uint8Array): DecodedRecord {
  const out: DecodedRecord = { events: [], quarantined: [] };
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  try {
    if (isKplAggregated(bytes)) decodeAggregated(bytes, out);
    else decodeItems(bytes, undefined, out);
  } catch (error) {
    // Defence in depth (the property tests find no throwing input): one record never fails a batch.
    out.events = [];
    out.quarantined = [
      { reason: `record could not be decoded (${(error as Error).name}); ${FORMAT_HINT}`, data: copy(bytes) },
    ];
  }
  return out;
}

function isKplAggregated(b: Buffer): boolean {
  return b[0] === KPL_MAGIC[0] && b[1] === KPL_MAGIC[1] && b[2] === KPL_MAGIC[2] && b[3] === KPL_MAGIC[3];
}

function copy(b: Uint8Array): Buffer {
  return Buffer.from(b);
}

// ---------------------------------------------------------------- JSON / NDJSON items

/**
 * One record's (or one KPL user record's) data: a single JSON object, possibly across lines, or
 * NDJSON. The whole is tried first, so a pretty-printed object is one event; when it is not one
 * valid JSON value and has two or more non-blank lines, each line is an item of its own.
 */
function decodeItems(b: Buffer, userRecord: number | undefined, out: DecodedRecord): void {
  const where = userRecord === undefined ? undefined : { userRecord };
  const scanner = new JsonScanner();
  const utf8 = isUtf8(b);
  if (b.length <= MAX_ITEM_BYTES && utf8 && scanner.scan(b)) {
    decodeScanned(scanner, b, where, out);
    return;
  }
  const lines = nonBlankLines(b);
  if (lines.length < 2 || (b.length > MAX_ITEM_BYTES && utf8 && scanner.scan(b))) {
    // One item (a single line, or one pretty-printed value too large to take): refused whole.
    const reason = lines.length === 0 ? `holds no JSON object; ${FORMAT_HINT}` : itemDefect(b, utf8, scanner);
    out.quarantined.push(quarantined(reason, b, where));
    return;
  }
  for (const { line, start, end } of lines) {
    const item = b.subarray(start, end);
    const position = userRecord === undefined ? { line } : { userRecord, line };
    if (item.length <= MAX_ITEM_BYTES && (utf8 || isUtf8(item)) && scanner.scan(item)) {
      decodeScanned(scanner, item, position, out);
    } else {
      out.quarantined.push(quarantined(itemDefect(item, utf8 || isUtf8(item), scanner), item, position));
    }
  }
}

/** Why an item that did not scan is refused (the scan must have run on it when it is UTF-8 and small enough). */
function itemDefect(item: Buffer, utf8: boolean, scanner: JsonScanner): string {
  if (item.length > MAX_ITEM_BYTES)
    return `larger than ${MAX_ITEM_BYTES} bytes (${item.length} bytes); send events one per line or per record, each below that`;
  if (!utf8) return 'not valid UTF-8; producers must send UTF-8 encoded JSON';
  return scanner.error;
}

function quarantined(
  reason: string,
  data: Uint8Array,
  position: QuarantinedItem['position'] | undefined,
): QuarantinedItem {
  return position === undefined ? { reason, data: copy(data) } : { reason, data: copy(data), position };
}

/** Lines holding something other than whitespace: 1-based number, byte range without `\n` / `\r\n`. */
function nonBlankLines(b: Buffer): { line: number; start: number; end: number }[] {
  const lines: { line: number; start: number; end: number }[] = [];
  let start = 0;
  for (let line = 1; start <= b.length; line++) {
    let end = b.indexOf(NEWLINE, start);
    if (end < 0) end = b.length;
    const next = end + 1;
    if (end > start && b[end - 1] === CR) end--;
    for (let k = start; k < end; k++) {
      const c = b[k];
      if (c !== SPACE && c !== TAB && c !== CR) {
        lines.push({ line, start, end });
        break;
      }
    }
    start = next;
  }
  return lines;
}

/** Validate the envelope and event of a scanned item; push the event or the item's quarantine. */
function decodeScanned(
  s: JsonScanner,
  item: Buffer,
  position: QuarantinedItem['position'] | undefined,
  out: DecodedRecord,
): void {
  const result = scannedEvent(s, item);
  if (typeof result === 'string') out.quarantined.push(quarantined(result, item, position));
  else out.events.push(result);
}

/** The event of a scanned item, or why the item is refused. */
function scannedEvent(s: JsonScanner, item: Buffer): DecodedEvent | string {
  if (item[s.valueStart] !== LBRACE)
    return `not a JSON object {"app_id": ..., "event": {...}}; ${FORMAT_HINT}`;
  if (s.duplicateKey) return `has "${s.duplicateKey}" twice; send each key once`;
  const appId = s.appId(item);
  if (appId === undefined || !APP_ID_PATTERN.test(appId)) return APP_ID_DEFECT;
  if (s.eventStart < 0) return eventDefect(undefined) ?? 'event is missing';
  const repeated = s.repeatedEventKey();
  if (repeated) return `event has "${repeated}" more than once; send each key once`;
  const event = compact(item, s.eventStart, s.eventEnd, s.gaps);
  if (!s.eventFieldsValid(item)) {
    // The rare cases (a defect, an escaped or repeated key) are decided as JSON.parse sees the event.
    const defect = eventDefect(JSON.parse(event.toString('utf8')));
    if (defect) return defect;
  }
  return { appId, event };
}

/** Bytes [start, end) of `b` without the whitespace runs listed in `gaps` ([start, end) pairs, in order). */
function compact(b: Buffer, start: number, end: number, gaps: number[]): Buffer {
  let size = end - start;
  for (let k = 0; k < gaps.length; k += 2) size -= gaps[k + 1]! - gaps[k]!;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  let from = start;
  for (let k = 0; k < gaps.length; k += 2) {
    at += b.copy(out, at, from, gaps[k]!);
    from = gaps[k + 1]!;
  }
  b.copy(out, at, from, end);
  return out;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= ZERO && c <= NINE;
}

function describeByte(b: Buffer, i: number): string {
  if (i >= b.length) return 'end of data';
  const c = b[i]!;
  return c > SPACE && c < 0x7f
    ? JSON.stringify(String.fromCharCode(c))
    : `byte 0x${c.toString(16).padStart(2, '0')}`;
}

/**
 * One strict pass (RFC 8259) over one item: validates the grammar and nesting, finds the envelope's
 * `app_id` and `event` values, lists the whitespace inside the event, and notes the three required
 * event fields. Works on a view of exactly the item, so reads past its end are `undefined`.
 */
class JsonScanner {
  private b: Buffer = Buffer.alloc(0);
  /** Why the last scan failed. */
  error = '';
  /** Start of the item's JSON value. */
  valueStart = 0;
  appIdStart = -1;
  appIdEnd = -1;
  eventStart = -1;
  eventEnd = -1;
  /** An envelope key seen twice (ambiguous: refused). */
  duplicateKey: string | undefined;
  /** Whitespace runs inside the event value, [start, end) pairs in order. */
  gaps: number[] = [];
  private recording = false;
  /** Set by `string` when it met a backslash. */
  private escaped = false;
  /** Value spans of event_uuid, event_name, event_time ([start, end) each) and how often each key appeared. */
  private fields = [-1, -1, -1, -1, -1, -1];
  /** How often each of ACTED_ON_KEYS appeared in the event. */
  private fieldCounts = ACTED_ON_KEYS.map(() => 0);

  /** True when `b` is one valid JSON value within the nesting limit; otherwise `error` says why. */
  scan(b: Buffer): boolean {
    this.b = b;
    this.error = '';
    this.appIdStart = this.appIdEnd = this.eventStart = this.eventEnd = -1;
    this.duplicateKey = undefined;
    this.gaps = [];
    this.recording = false;
    this.fields.fill(-1);
    this.fieldCounts.fill(0);
    let i = this.ws(0);
    this.valueStart = i;
    if (i >= b.length) return this.fail(i, `holds no JSON object; ${FORMAT_HINT}`) >= 0;
    i = b[i] === LBRACE ? this.object(i, 1, ENVELOPE) : this.value(i, 1);
    if (i < 0) return false;
    i = this.ws(i);
    if (i < b.length) return this.unexpected(i, 'after the JSON value') >= 0;
    return true;
  }

  /** The envelope's app_id when it is a string, else undefined. */
  appId(b: Buffer): string | undefined {
    if (this.appIdStart < 0 || b[this.appIdStart] !== QUOTE) return undefined;
    for (let k = this.appIdStart + 1; k < this.appIdEnd - 1; k++) {
      if (b[k] === BACKSLASH || b[k]! >= 0x80)
        return JSON.parse(b.toString('utf8', this.appIdStart, this.appIdEnd)) as string;
    }
    return b.toString('latin1', this.appIdStart + 1, this.appIdEnd - 1);
  }

  /**
   * True when the event is an object whose event_uuid and event_name are non-empty strings and
   * event_time a finite number (each key is there once, see repeatedEventKey, so JSON.parse would
   * see exactly these values). False means "decide with JSON.parse", not necessarily a defect.
   */
  eventFieldsValid(b: Buffer): boolean {
    const [uuidStart, uuidEnd, nameStart, nameEnd, timeStart, timeEnd] = this.fields as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    if (b[this.eventStart] !== LBRACE) return false;
    if (this.fieldCounts[0] !== 1 || this.fieldCounts[1] !== 1 || this.fieldCounts[2] !== 1) return false;
    // A JSON string token longer than its two quotes is a non-empty string.
    if (b[uuidStart] !== QUOTE || uuidEnd - uuidStart < 3) return false;
    if (b[nameStart] !== QUOTE || nameEnd - nameStart < 3) return false;
    const first = b[timeStart];
    if (first !== MINUS && !isDigit(first)) return false;
    // An integer of up to 15 digits is finite; anything else as JSON.parse reads it (1e999 is Infinity).
    if (timeEnd - timeStart <= 15) {
      let k = first === MINUS ? timeStart + 1 : timeStart;
      while (k < timeEnd && isDigit(b[k])) k++;
      if (k === timeEnd) return true;
    }
    return Number.isFinite(Number(b.toString('latin1', timeStart, timeEnd)));
  }

  private fail(_i: number, reason: string): number {
    this.error = reason;
    return -1;
  }

  private unexpected(i: number, context: string): number {
    return this.fail(
      i,
      `not valid JSON: unexpected ${describeByte(this.b, i)} ${context} at byte offset ${i}; ${FORMAT_HINT}`,
    );
  }

  private tooDeep(i: number): number {
    return this.fail(
      i,
      `nests objects/arrays deeper than ${MAX_EVENT_DEPTH} levels (at byte offset ${i}); flatten the event`,
    );
  }

  private ws(i: number): number {
    const b = this.b;
    let j = i;
    for (;;) {
      const c = b[j];
      if (c === SPACE || c === NEWLINE || c === CR || c === TAB) j++;
      else break;
    }
    if (this.recording && j > i) this.gaps.push(i, j);
    return j;
  }

  private value(i: number, depth: number): number {
    const c = this.b[i];
    if (c === LBRACE) return this.object(i, depth + 1, PLAIN);
    if (c === LBRACKET) return this.array(i, depth + 1);
    if (c === QUOTE) return this.string(i);
    if (c === MINUS || isDigit(c)) return this.number(i);
    if (c === TRUE[0]) return this.literal(i, TRUE);
    if (c === FALSE[0]) return this.literal(i, FALSE);
    if (c === NULL[0]) return this.literal(i, NULL);
    return this.unexpected(i, 'where a value should start');
  }

  /** `depth` counts the envelope as level 1, so an event may nest MAX_EVENT_DEPTH levels. */
  private object(i: number, depth: number, role: number): number {
    if (depth > MAX_EVENT_DEPTH + 1) return this.tooDeep(i);
    const b = this.b;
    let j = this.ws(i + 1);
    if (b[j] === RBRACE) return j + 1;
    for (;;) {
      if (b[j] !== QUOTE) return this.unexpected(j, 'where a key should start');
      const keyStart = j;
      this.escaped = false;
      j = this.string(j);
      if (j < 0) return -1;
      const keyEnd = j;
      const keyEscaped = this.escaped;
      j = this.ws(j);
      if (b[j] !== COLON) return this.unexpected(j, 'where ":" should follow a key');
      j = this.ws(j + 1);
      const valueStart = j;
      if (role === ENVELOPE) j = this.envelopeMember(keyStart, keyEnd, keyEscaped, j, depth);
      else {
        j = this.value(j, depth);
        if (role === EVENT && j >= 0) this.noteEventField(keyStart, keyEnd, keyEscaped, valueStart, j);
      }
      if (j < 0) return -1;
      j = this.ws(j);
      if (b[j] === COMMA) j = this.ws(j + 1);
      else if (b[j] === RBRACE) return j + 1;
      else return this.unexpected(j, 'where "," or "}" should follow a value');
    }
  }

  private envelopeMember(
    keyStart: number,
    keyEnd: number,
    keyEscaped: boolean,
    i: number,
    depth: number,
  ): number {
    const b = this.b;
    const key = keyEscaped
      ? (JSON.parse(b.toString('utf8', keyStart, keyEnd)) as string)
      : isKey(b, keyStart, keyEnd, KEY_APP_ID)
        ? 'app_id'
        : isKey(b, keyStart, keyEnd, KEY_EVENT)
          ? 'event'
          : '';
    if (key === 'event') {
      if (this.eventStart >= 0) this.duplicateKey = 'event';
      this.gaps = [];
      this.recording = true;
      const end = b[i] === LBRACE ? this.object(i, depth + 1, EVENT) : this.value(i, depth);
      this.recording = false;
      this.eventStart = i;
      this.eventEnd = end;
      return end;
    }
    const end = this.value(i, depth);
    if (key === 'app_id') {
      if (this.appIdStart >= 0) this.duplicateKey = 'app_id';
      this.appIdStart = i;
      this.appIdEnd = end;
    }
    return end;
  }

  private noteEventField(
    keyStart: number,
    keyEnd: number,
    keyEscaped: boolean,
    valueStart: number,
    valueEnd: number,
  ): void {
    const b = this.b;
    const k = keyEscaped
      ? ACTED_ON_KEYS.indexOf(JSON.parse(b.toString('utf8', keyStart, keyEnd)) as string)
      : ACTED_ON_TOKENS.findIndex((token) => isKey(b, keyStart, keyEnd, token));
    if (k < 0) return;
    this.fieldCounts[k]!++;
    if (k < 3) {
      this.fields[2 * k] = valueStart;
      this.fields[2 * k + 1] = valueEnd;
    }
  }

  /** A key of ACTED_ON_KEYS the event holds more than once (however escaped), or undefined. */
  repeatedEventKey(): string | undefined {
    const k = this.fieldCounts.findIndex((count) => count > 1);
    return k < 0 ? undefined : ACTED_ON_KEYS[k];
  }

  private array(i: number, depth: number): number {
    if (depth > MAX_EVENT_DEPTH + 1) return this.tooDeep(i);
    const b = this.b;
    let j = this.ws(i + 1);
    if (b[j] === RBRACKET) return j + 1;
    for (;;) {
      j = this.value(j, depth);
      if (j < 0) return -1;
      j = this.ws(j);
      if (b[j] === COMMA) j = this.ws(j + 1);
      else if (b[j] === RBRACKET) return j + 1;
      else return this.unexpected(j, 'where "," or "]" should follow a value');
    }
  }

  /** End of the string starting at `i` (after its closing quote). Bytes >= 0x80 were checked as UTF-8 before. */
  private string(i: number): number {
    const b = this.b;
    const end = b.length;
    for (let j = i + 1; j < end; j++) {
      const c = b[j]!;
      if (c === QUOTE) return j + 1;
      if (c === BACKSLASH) {
        this.escaped = true;
        const n = b[j + 1];
        if (
          n === QUOTE ||
          n === BACKSLASH ||
          n === SLASH ||
          n === 0x62 /* b */ ||
          n === 0x66 /* f */ ||
          n === 0x6e /* n */ ||
          n === 0x72 /* r */ ||
          n === 0x74 /* t */
        ) {
          j++;
        } else if (
          n === 0x75 /* u */ &&
          isHex(b[j + 2]) &&
          isHex(b[j + 3]) &&
          isHex(b[j + 4]) &&
          isHex(b[j + 5])
        ) {
          j += 5;
        } else {
          return this.fail(
            j,
            `not valid JSON: invalid escape in a string at byte offset ${j}; ${FORMAT_HINT}`,
          );
        }
      } else if (c < SPACE) {
        return this.fail(
          j,
          `not valid JSON: raw control character 0x${c.toString(16).padStart(2, '0')} in a string at byte offset ${j} (escape it, e.g. \\n); ${FORMAT_HINT}`,
        );
      }
    }
    return this.fail(end, `not valid JSON: unterminated string starting at byte offset ${i}; ${FORMAT_HINT}`);
  }

  private number(i: number): number {
    const b = this.b;
    let j = i;
    if (b[j] === MINUS) j++;
    if (b[j] === ZERO) j++;
    else if (b[j] !== undefined && b[j]! >= ONE && b[j]! <= NINE) j = this.digits(j + 1);
    else return this.unexpected(j, 'where a digit should be');
    if (b[j] === DOT) {
      if (!isDigit(b[j + 1])) return this.unexpected(j + 1, 'where a digit should follow "."');
      j = this.digits(j + 1);
    }
    if (b[j] === LOWER_E || b[j] === UPPER_E) {
      j++;
      if (b[j] === PLUS || b[j] === MINUS) j++;
      if (!isDigit(b[j])) return this.unexpected(j, 'where an exponent digit should be');
      j = this.digits(j);
    }
    return j;
  }

  /** The index after the run of digits starting at `i`. */
  private digits(i: number): number {
    let j = i;
    while (isDigit(this.b[j])) j++;
    return j;
  }

  private literal(i: number, word: Buffer): number {
    for (let k = 0; k < word.length; k++) {
      if (this.b[i + k] !== word[k]) return this.unexpected(i + k, `in "${word.toString()}"`);
    }
    return i + word.length;
  }
}

/** Bytes [start, end) of `b` are `key` (a JS loop: cheaper than a native call for a few bytes). */
function isKey(b: Buffer, start: number, end: number, key: Buffer): boolean {
  if (end - start !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[start + k] !== key[k]) return false;
  return true;
}

function isHex(c: number | undefined): boolean {
  return (
    c !== undefined && ((c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66))
  );
}

// ---------------------------------------------------------------- KPL aggregated records

/**
 * A KPL aggregated record: magic, protobuf `AggregatedRecord`, MD5 of the protobuf bytes. Each user
 * record's data is decoded like a plain record's data (not aggregated again); a record whose MD5 or
 * protobuf is wrong is quarantined whole.
 */
function decodeAggregated(b: Buffer, out: DecodedRecord): void {
  const parsed = kplUserRecords(b);
  if (typeof parsed === 'string') {
    out.quarantined.push({ reason: parsed, data: copy(b) });
    return;
  }
  if (parsed.length === 0) {
    out.quarantined.push({
      reason: `KPL aggregated record holds no user record; ${FORMAT_HINT}`,
      data: copy(b),
    });
    return;
  }
  parsed.forEach((data, userRecord) => {
    if (data.length === 0) {
      out.quarantined.push({
        reason: `KPL user record has no data; ${FORMAT_HINT}`,
        data: copy(data),
        position: { userRecord },
      });
    } else if (isKplAggregated(data)) {
      out.quarantined.push({
        reason: 'KPL user record is itself an aggregated record; aggregate events once',
        data: copy(data),
        position: { userRecord },
      });
    } else {
      decodeItems(data, userRecord, out);
    }
  });
}

/** The user records' data, or why the aggregated record is refused. */
export function kplUserRecords(b: Buffer): Buffer[] | string {
  const fix = 're-send the record (the KPL writes it whole); if it repeats, check the producer';
  if (b.length < KPL_MAGIC.length + MD5_BYTES)
    return `KPL aggregated record is shorter than its magic bytes and MD5 (${b.length} bytes); ${fix}`;
  const body = b.subarray(KPL_MAGIC.length, b.length - MD5_BYTES);
  const digest = createHash('md5').update(body).digest();
  if (!digest.equals(b.subarray(b.length - MD5_BYTES)))
    return `KPL aggregated record's MD5 does not match its protobuf bytes (corrupted or truncated); ${fix}`;
  const records: Buffer[] = [];
  const reader = new ProtobufReader(body);
  // AggregatedRecord: 1 partition_key_table, 2 explicit_hash_key_table, 3 records (Record message).
  while (reader.more()) {
    const { field, wireType } = reader.tag();
    if (field === 3 && wireType === 2) {
      const record = new ProtobufReader(reader.bytes());
      let data: Buffer = Buffer.alloc(0);
      // Record: 1 partition_key_index, 2 explicit_hash_key_index, 3 data, 4 tags.
      while (record.more()) {
        const inner = record.tag();
        if (inner.field === 3 && inner.wireType === 2) data = record.bytes();
        else record.skip(inner.wireType);
      }
      if (record.error) return `KPL aggregated record's protobuf is malformed (${record.error}); ${fix}`;
      records.push(data);
    } else {
      reader.skip(wireType);
    }
  }
  if (reader.error) return `KPL aggregated record's protobuf is malformed (${reader.error}); ${fix}`;
  return records;
}

/** Just enough protobuf wire format (https://protobuf.dev/programming-guides/encoding/): no exceptions, `error` set instead. */
class ProtobufReader {
  private at = 0;
  error = '';

  constructor(private readonly b: Buffer) {}

  more(): boolean {
    return this.error === '' && this.at < this.b.length;
  }

  tag(): { field: number; wireType: number } {
    const key = this.varint();
    return { field: Math.floor(key / 8), wireType: key % 8 };
  }

  /** A varint as a number (exact up to 2^53; larger values are only ever skipped or refused as lengths). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let k = 0; k < 10; k++) {
      const c = this.b[this.at++];
      if (c === undefined) {
        this.error = 'truncated varint';
        return 0;
      }
      value += (c & 0x7f) * scale;
      if (c < 0x80) return value;
      scale *= 128;
    }
    this.error = 'varint longer than 10 bytes';
    return 0;
  }

  bytes(): Buffer {
    const length = this.varint();
    if (this.error) return Buffer.alloc(0);
    if (length > this.b.length - this.at) {
      this.error = `field of ${length} bytes runs past the end`;
      return Buffer.alloc(0);
    }
    this.at += length;
    return this.b.subarray(this.at - length, this.at);
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 2) this.bytes();
    else if (wireType === 1 || wireType === 5) {
      const size = wireType === 1 ? 8 : 4;
      if (this.at + size > this.b.length) this.error = 'truncated fixed-size field';
      this.at += size;
    } else this.error = `unsupported wire type ${wireType}`;
  }
}
