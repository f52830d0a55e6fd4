import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventDefect } from '../../lambdas/domain/export-record.ts';
import {
  APP_ID_DEFECT,
  type DecodedRecord,
  decodeRecordData,
  MAX_EVENT_DEPTH,
  MAX_ITEM_BYTES,
} from '../../lambdas/domain/incoming-records.ts';
import {
  freeKey,
  jsonValue,
  numberToken,
  objectTokens,
  stringToken,
  type Tokens,
} from '../support/json-text.ts';
import {
  aggregatedProtobuf,
  field,
  KPL_MAGIC,
  kplAggregate,
  sealAggregated,
  varint,
} from '../support/kpl.ts';

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const EVENT = '{"event_uuid":"u-1","event_name":"VIEW","event_time":1767225600}';
const record = (event: string, appId = 'app-1') => `{"app_id":${JSON.stringify(appId)},"event":${event}}`;

function decodeText(text: string): DecodedRecord {
  return decodeRecordData(utf8(text));
}

function eventTexts(result: DecodedRecord): string[] {
  return result.events.map((e) => e.event.toString('utf8'));
}

describe('decodeRecordData: one JSON object per record', () => {
  it('keeps the event bytes as received: big integers, 1.50, 1e3, escapes, numeric keys and key order', () => {
    const event =
      '{"event_uuid":"u\\u00e9","event_name":"a\\/b","event_time":1767225600.000,"big":12345678901234567890123,' +
      '"price":1.50,"n":1e3,"2":"two","1":"one","nested":{"z":-0.0,"a":[1E+2,true,null,"\\ud83d\\ude00"]}}';
    const result = decodeText(record(event));
    expect(result.quarantined).toEqual([]);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]!.appId).toBe('app-1');
    expect(result.events[0]!.event.toString('utf8')).toBe(event);
  });

  it('accepts a pretty-printed record and removes only the whitespace outside strings', () => {
    const text = `{\r\n  "app_id" : "app-1",\n  "event": {\n    "event_uuid": "u 1",\n\t"event_name" :"a  b",\n    "event_time": 1.50 ,\n    "list": [ 1 , 2 ]\n  }\n}\n`;
    const result = decodeText(text);
    expect(result.quarantined).toEqual([]);
    expect(eventTexts(result)).toEqual([
      '{"event_uuid":"u 1","event_name":"a  b","event_time":1.50,"list":[1,2]}',
    ]);
  });

  it('takes app_id and event in any order, with other envelope members around them', () => {
    const result = decodeText(
      `{"x":[{"event":1}],"event":${EVENT},"meta":{"app_id":"no"},"app_id":"app.2_X"}`,
    );
    expect(result.events).toEqual([{ appId: 'app.2_X', event: utf8(EVENT) }]);
  });

  it('reads escaped envelope and event keys the way JSON.parse does', () => {
    const event = '{"event\\u005fuuid":"u","event_name":"n","event_time":1}';
    const result = decodeText(`{"app\\u005fid":"a\\u0031","event":${event}}`);
    expect(result.quarantined).toEqual([]);
    expect(result.events).toEqual([{ appId: 'a1', event: utf8(event) }]);
    // An escaped key that repeats a field: refused, whichever value a reader would take.
    const overridden = decodeText(
      record('{"event_uuid":"u","event_name":"n","event_time":1,"event\\u005ftime":"x"}'),
    );
    expect(overridden.quarantined.map((q) => q.reason)).toEqual([
      'event has "event_time" more than once; send each key once',
    ]);
  });

  it('refuses an event that repeats a key the stager checks or the exporter acts on', () => {
    for (const key of [
      'event_uuid',
      'event_name',
      'event_time',
      'event_code',
      'user_attributes',
      'device_attributes',
    ]) {
      const text = record(`{"event_uuid":"u","event_name":"n","event_time":1,"${key}":"1","${key}":"1"}`);
      expect(decodeText(text).quarantined).toEqual([
        { reason: `event has "${key}" more than once; send each key once`, data: utf8(text) },
      ]);
    }
    // Once each, and repeated only inside a nested value: accepted.
    const once =
      '{"event_uuid":"u","event_name":"n","event_time":1,"event_code":"c","x":{"event_code":2,"event_code":3}}';
    expect(eventTexts(decodeText(record(once)))).toEqual([once]);
  });

  it.each([
    ['an app_id with a space', record(EVENT, 'my app')],
    ['a missing app_id', `{"event":${EVENT}}`],
    ['a numeric app_id', `{"app_id":7,"event":${EVENT}}`],
    ['a 65-character app_id', record(EVENT, 'a'.repeat(65))],
  ])('quarantines %s with the app_id rule', (_name, text) => {
    const result = decodeText(text);
    expect(result.events).toEqual([]);
    expect(result.quarantined).toEqual([{ reason: APP_ID_DEFECT, data: utf8(text) }]);
  });

  it.each([
    ['missing', `{"app_id":"a"}`],
    ['an array', record('[1]')],
    ['without event_uuid', record('{"event_name":"n","event_time":1}')],
    ['with an empty event_uuid', record('{"event_uuid":"","event_name":"n","event_time":1}')],
    ['with a numeric event_name', record('{"event_uuid":"u","event_name":5,"event_time":1}')],
    ['with event_time as a string', record('{"event_uuid":"u","event_name":"n","event_time":"1"}')],
    ['with event_time 1e999', record('{"event_uuid":"u","event_name":"n","event_time":1e999}')],
    ['with event_uuid null', record('{"event_uuid":null,"event_name":"n","event_time":1}')],
  ])('quarantines an event %s with the reason eventDefect gives', (_name, text) => {
    const expected = eventDefect((JSON.parse(text) as { event?: unknown }).event);
    expect(expected).toBeDefined();
    const result = decodeText(text);
    expect(result.events).toEqual([]);
    expect(result.quarantined).toEqual([{ reason: expected, data: utf8(text) }]);
  });

  it('refuses a record that repeats app_id or event (JSON.parse would silently keep the last)', () => {
    const text = `{"app_id":"a","event":${EVENT},"app_id":"b"}`;
    const result = decodeText(text);
    expect(result.events).toEqual([]);
    expect(result.quarantined[0]!.reason).toMatch(/"app_id" twice/);
  });

  it.each([
    ['not JSON', 'hello', /not valid JSON: unexpected "h"/],
    ['a JSON array', `[${record(EVENT)}]`, /not a JSON object/],
    ['a bare string', '"x"', /not a JSON object/],
    ['truncated', record(EVENT).slice(0, -1), /not valid JSON: unexpected end of data/],
    ['two objects on one line', record(EVENT) + record(EVENT), /after the JSON value/],
    ['a raw tab inside a string', record(EVENT.replace('VIEW', 'VI\tEW')), /raw control character 0x09/],
    ['an invalid escape', record(EVENT.replace('VIEW', 'VI\\xEW')), /invalid escape/],
    ['a leading zero', record(EVENT.replace('1767225600', '01767225600')), /unexpected "1"/],
    ['a trailing comma', record(EVENT.replace('}', ',}')), /where a key should start/],
    ['single quotes', record(EVENT).replace(/"/g, "'"), /not valid JSON/],
    ['empty data', '', /holds no JSON object/],
    ['only whitespace', ' \r\n\t\n', /holds no JSON object/],
    ['NaN', record(EVENT.replace('1767225600', 'NaN')), /not valid JSON/],
  ])('quarantines %s as a whole record, never throwing', (_name, text, reason) => {
    const result = decodeText(text);
    expect(result.events).toEqual([]);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0]!.reason).toMatch(reason);
    expect(result.quarantined[0]!.data).toEqual(utf8(text));
    expect(result.quarantined[0]!.position).toBeUndefined();
  });

  it('quarantines invalid UTF-8 inside a string instead of replacing it with U+FFFD', () => {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80]]) {
      const data = Buffer.concat([
        utf8(record(EVENT).slice(0, 60)),
        Buffer.from(bad),
        utf8(record(EVENT).slice(60)),
      ]);
      const result = decodeRecordData(data);
      expect(result.events).toEqual([]);
      expect(result.quarantined).toEqual([{ reason: expect.stringMatching(/not valid UTF-8/), data }]);
    }
  });

  it(`accepts an event nested ${MAX_EVENT_DEPTH} levels and refuses one level more, saying the limit`, () => {
    const nested = (levels: number) =>
      `{"event_uuid":"u","event_name":"n","event_time":1,"d":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`;
    expect(decodeText(record(nested(MAX_EVENT_DEPTH))).events).toHaveLength(1);
    const refused = decodeText(record(nested(MAX_EVENT_DEPTH + 1)));
    expect(refused.events).toEqual([]);
    expect(refused.quarantined[0]!.reason).toMatch(/deeper than 64 levels/);
    // Far deeper than a call stack allows: still a quarantine, not a RangeError.
    const deep = decodeText(record(`{"d":${'['.repeat(400_000)}${']'.repeat(400_000)}}`));
    expect(deep.quarantined[0]!.reason).toMatch(/deeper than 64 levels/);
  });

  it(`refuses an item larger than ${MAX_ITEM_BYTES} bytes, keeping its bytes`, () => {
    const big = record(
      `{"event_uuid":"u","event_name":"n","event_time":1,"pad":"${'x'.repeat(MAX_ITEM_BYTES)}"}`,
    );
    const result = decodeText(big);
    expect(result.events).toEqual([]);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0]!.reason).toMatch(/larger than 1048576 bytes/);
    // Buffer.equals: vitest's deep equality walks a megabyte slowly.
    expect(result.quarantined[0]!.data.equals(utf8(big))).toBe(true);
  });
});

describe('decodeRecordData: NDJSON records', () => {
  it('decodes one event per line, ignoring blank lines and accepting CRLF', () => {
    const events = [1, 2, 3].map((n) => `{"event_uuid":"u${n}","event_name":"n","event_time":${n}}`);
    const text = `${record(events[0]!)}\r\n\r\n${record(events[1]!, 'b')}\n  \n${record(events[2]!)}\n`;
    const result = decodeText(text);
    expect(result.quarantined).toEqual([]);
    expect(result.events.map((e) => [e.appId, e.event.toString()])).toEqual([
      ['app-1', events[0]],
      ['b', events[1]],
      ['app-1', events[2]],
    ]);
  });

  it('quarantines each bad line on its own with its line number and exact bytes; its neighbours are staged', () => {
    const badUtf8 = Buffer.concat([
      utf8('{"app_id":"a","event":{"event_uuid":"'),
      Buffer.from([0xfe]),
      utf8('"}}'),
    ]);
    const data = Buffer.concat([
      utf8(`not json\r\n${record(EVENT)}\n${record(EVENT, 'bad app')}\n`),
      badUtf8,
      utf8(`\n\n${record('{"event_uuid":"u"}')}\n${record(EVENT, 'last')}`),
    ]);
    const result = decodeRecordData(data);
    expect(result.events.map((e) => e.appId)).toEqual(['app-1', 'last']);
    expect(
      result.quarantined.map((q) => [q.position, q.data.toString('latin1'), q.reason.slice(0, 20)]),
    ).toEqual([
      [{ line: 1 }, 'not json', 'not valid JSON: unex'],
      [{ line: 3 }, record(EVENT, 'bad app'), APP_ID_DEFECT.slice(0, 20)],
      [{ line: 4 }, badUtf8.toString('latin1'), 'not valid UTF-8; pro'],
      [{ line: 6 }, record('{"event_uuid":"u"}'), 'event.event_name is '],
    ]);
  });

  it('refuses a pretty-printed object larger than the item limit as one item, not line by line', () => {
    const pad = `\n    "pad": "${'x'.repeat(1000)}",`.repeat(Math.ceil(MAX_ITEM_BYTES / 1000));
    const text = `{\n  "app_id": "a",\n  "event": {${pad}\n    "event_uuid": "u", "event_name": "n", "event_time": 1\n  }\n}\n`;
    const result = decodeText(text);
    expect(result.events).toEqual([]);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0]!.reason).toMatch(/larger than 1048576 bytes/);
    expect(result.quarantined[0]!.position).toBeUndefined();
    expect(result.quarantined[0]!.data.equals(utf8(text))).toBe(true);
  });

  it('accepts a record larger than the item limit made of small lines', () => {
    const line = record(`{"event_uuid":"u","event_name":"n","event_time":1,"pad":"${'x'.repeat(1000)}"}`);
    const count = Math.ceil((2 * MAX_ITEM_BYTES) / line.length);
    const result = decodeText(`${line}\n`.repeat(count));
    expect(result.quarantined).toEqual([]);
    expect(result.events).toHaveLength(count);
  });
});

describe('decodeRecordData: KPL aggregated records', () => {
  it('decodes every user record, each as JSON or NDJSON, and quarantines a bad one with its index', () => {
    const pretty = `{\n "app_id": "p",\n "event": ${EVENT}\n}`;
    const data = kplAggregate(
      [
        { data: utf8(record(EVENT, 'one')), tags: [{ key: 'k', value: 'v' }] },
        { data: utf8(pretty), partitionKeyIndex: 1, explicitHashKeyIndex: 0 },
        { data: utf8(`${record(EVENT, 'n1')}\nbroken\n${record(EVENT, 'n3')}`) },
        { data: utf8('nope') },
        { data: new Uint8Array(0) },
      ],
      ['pk-a', 'pk-b'],
    );
    const result = decodeRecordData(data);
    expect(result.events.map((e) => [e.appId, e.event.toString()])).toEqual([
      ['one', EVENT],
      ['p', EVENT],
      ['n1', EVENT],
      ['n3', EVENT],
    ]);
    expect(result.quarantined.map((q) => [q.position, q.data.toString()])).toEqual([
      [{ userRecord: 2, line: 2 }, 'broken'],
      [{ userRecord: 3 }, 'nope'],
      [{ userRecord: 4 }, ''],
    ]);
  });

  it('skips protobuf fields it does not know (forward compatibility)', () => {
    const protobuf = Buffer.concat([
      field(9, 0, varint(2 ** 40)),
      aggregatedProtobuf([{ data: utf8(record(EVENT)) }]),
      field(10, 5, Buffer.alloc(4)),
      field(11, 1, Buffer.alloc(8)),
      field(12, 2, Buffer.from('x')),
    ]);
    expect(decodeRecordData(sealAggregated(protobuf)).events).toHaveLength(1);
  });

  it('quarantines the whole record when the MD5 does not match or the protobuf is truncated', () => {
    const good = kplAggregate([utf8(record(EVENT)), utf8(record(EVENT))]);
    const flipped = Buffer.from(good);
    flipped[10]! ^= 0x01;
    const protobuf = aggregatedProtobuf([{ data: utf8(record(EVENT)) }]);
    const truncated = sealAggregated(protobuf.subarray(0, protobuf.length - 3));
    const cases: [Buffer, RegExp][] = [
      [flipped, /MD5 does not match/],
      [good.subarray(0, good.length - 1), /MD5 does not match/],
      [KPL_MAGIC, /shorter than its magic bytes and MD5/],
      [truncated, /protobuf is malformed \(field of \d+ bytes runs past the end\)/],
      [sealAggregated(Buffer.from([0x1b])), /unsupported wire type 3/],
      [sealAggregated(Buffer.from([0x80])), /truncated varint/],
    ];
    for (const [data, reason] of cases) {
      const result = decodeRecordData(data);
      expect(result.events).toEqual([]);
      expect(result.quarantined).toEqual([{ reason: expect.stringMatching(reason), data }]);
    }
  });

  it('does not unwrap a user record that is itself aggregated', () => {
    const inner = kplAggregate([utf8(record(EVENT))]);
    const result = decodeRecordData(kplAggregate([inner]));
    expect(result.events).toEqual([]);
    expect(result.quarantined).toEqual([
      {
        reason: expect.stringMatching(/itself an aggregated record/),
        data: inner,
        position: { userRecord: 0 },
      },
    ]);
  });
});

// ---------------------------------------------------------------- properties

/** A valid event: the three required fields among random members, in random places. */
const validEvent = fc
  .tuple(
    fc.array(fc.tuple(freeKey, jsonValue), { maxLength: 5 }),
    fc.tuple(
      stringToken.filter((t) => t !== '""'),
      stringToken.filter((t) => t !== '""'),
      numberToken,
    ),
    fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
  )
  .map(([extra, [uuid, name, time], places]) => {
    const members: [string, Tokens][] = [...extra];
    const required: [string, Tokens][] = [
      ['"event_uuid"', [uuid]],
      ['"event_name"', [name]],
      ['"event_time"', [time]],
    ];
    required.forEach((member, k) => {
      members.splice(places[k]! % (members.length + 1), 0, member);
    });
    return objectTokens(members);
  });

const appIdToken = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/).map((id) => JSON.stringify(id));

const envelope = fc
  .tuple(appIdToken, validEvent, fc.array(fc.tuple(freeKey, jsonValue), { maxLength: 2 }), fc.boolean())
  .map(([appId, event, extra, eventFirst]) => {
    const members: [string, Tokens][] = [['"app_id"', [appId]], ...extra];
    members.splice(eventFirst ? 0 : members.length, 0, ['"event"', event]);
    return { appId: JSON.parse(appId) as string, event, tokens: objectTokens(members) };
  });

function joinWith(tokens: Tokens, spaces: string[]): string {
  return tokens.map((t, i) => (spaces[i % spaces.length] ?? '') + t).join('') + (spaces[0] ?? '');
}

const whitespace = (newlines: boolean) =>
  fc.array(
    fc
      .array(fc.constantFrom(' ', '\t', ...(newlines ? ['\n', '\r\n', '\r'] : [])), { maxLength: 3 })
      .map((w) => w.join('')),
    { minLength: 1, maxLength: 17 },
  );

describe('decodeRecordData: properties', () => {
  it('keeps every valid event byte for byte, minus whitespace outside strings (pretty-printed records)', () => {
    fc.assert(
      fc.property(envelope, whitespace(true), ({ appId, event, tokens }, spaces) => {
        const text = joinWith(tokens, spaces);
        const result = decodeText(text);
        expect(result.quarantined).toEqual([]);
        expect(result.events).toHaveLength(1);
        expect(result.events[0]!.appId).toBe(appId);
        expect(result.events[0]!.event.toString('utf8')).toBe(event.join(''));
        expect(JSON.parse(result.events[0]!.event.toString('utf8'))).toEqual(
          (JSON.parse(text) as { event: unknown }).event,
        );
      }),
      { numRuns: 400 },
    );
  });

  it('keeps every valid event of an NDJSON record byte for byte, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(envelope, whitespace(false)), { minLength: 2, maxLength: 5 }),
        fc.array(fc.constantFrom('\n', '\r\n', '\n\n', '\n \t\n'), { minLength: 5, maxLength: 5 }),
        (lines, separators) => {
          const text = lines.map(([l, spaces], i) => joinWith(l.tokens, spaces) + separators[i]).join('');
          const result = decodeText(text);
          expect(result.quarantined).toEqual([]);
          expect(result.events.map((e) => [e.appId, e.event.toString('utf8')])).toEqual(
            lines.map(([l]) => [l.appId, l.event.join('')]),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accepts an event exactly when it repeats no field and eventDefect of its JSON.parse value finds nothing', () => {
    const fieldValue = fc.oneof(
      stringToken,
      numberToken,
      fc.constantFrom('""', 'null', '1e999', '[]', '{}', '-1e400'),
    );
    const fieldKey = fc.constantFrom(
      '"event_uuid"',
      '"event_name"',
      '"event_time"',
      '"event\\u005fuuid"',
      '"event_n\\u0061me"',
      '"\\u0065vent_time"',
    );
    const anyEvent = fc
      .array(
        fc.oneof(
          fc.tuple(
            fieldKey,
            fieldValue.map((v) => [v]),
          ),
          fc.tuple(freeKey, jsonValue),
        ),
        {
          maxLength: 8,
        },
      )
      .map(objectTokens);
    fc.assert(
      fc.property(anyEvent, (event) => {
        const eventText = event.join('');
        const result = decodeText(record(eventText));
        const keys = event.filter((_, k) => event[k + 1] === ':' && k > 0 && /[{,]/.test(event[k - 1]!));
        const names = keys.map((key) => JSON.parse(key) as string);
        const repeated = ['event_uuid', 'event_name', 'event_time'].find(
          (name) => names.filter((n) => n === name).length > 1,
        );
        const defect = repeated
          ? `event has "${repeated}" more than once; send each key once`
          : eventDefect(JSON.parse(eventText));
        if (defect) {
          expect(result.events).toEqual([]);
          expect(result.quarantined.map((q) => q.reason)).toEqual([defect]);
        } else {
          expect(result.quarantined).toEqual([]);
          expect(eventTexts(result)).toEqual([eventText]);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary bytes, and every event it returns is valid JSON without a defect', () => {
    const arbitrary = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([KPL_MAGIC, b])),
      fc.uint8Array({ maxLength: 300 }).map((b) => sealAggregated(Buffer.from(b))),
      fc.string({ unit: 'binary', maxLength: 200 }).map(utf8),
      fc
        .array(
          fc.constantFrom(
            '{',
            '}',
            '[',
            ']',
            '"',
            '\\',
            ':',
            ',',
            '\n',
            ' ',
            'a',
            '1',
            '"app_id"',
            '"event"',
          ),
          {
            maxLength: 80,
          },
        )
        .map((parts) => utf8(parts.join(''))),
    );
    fc.assert(
      fc.property(arbitrary, (data) => checkDecoded(data)),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutated valid records (plain, NDJSON and KPL); what it accepts is valid', () => {
    const valid = fc
      .tuple(fc.array(fc.tuple(envelope, whitespace(true)), { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([lines, aggregate]) => {
        const texts = lines.map(([l, spaces]) => utf8(joinWith(l.tokens, spaces).replace(/[\r\n]/g, ' ')));
        const plain = Buffer.concat(texts.flatMap((t) => [t, utf8('\n')]));
        return aggregate ? kplAggregate(texts) : plain;
      });
    const mutation = fc.oneof(
      fc.tuple(fc.constant('flip' as const), fc.nat(), fc.integer({ min: 1, max: 255 })),
      fc.tuple(fc.constant('cut' as const), fc.nat(), fc.constant(0)),
      fc.tuple(fc.constant('insert' as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
      fc.tuple(fc.constant('delete' as const), fc.nat(), fc.constant(0)),
    );
    fc.assert(
      fc.property(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }), (data, mutations) => {
        let bytes = Buffer.from(data);
        for (const [kind, at, value] of mutations) {
          const i = at % (bytes.length + 1);
          if (kind === 'flip' && i < bytes.length) bytes[i]! ^= value;
          else if (kind === 'cut') bytes = bytes.subarray(0, i);
          else if (kind === 'insert')
            bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([value]), bytes.subarray(i)]);
          else if (kind === 'delete') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
        }
        checkDecoded(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});

/** Decoding never throws; what it returns is well-formed: events valid, quarantined items with a reason. */
function checkDecoded(data: Uint8Array): void {
  const result = decodeRecordData(data);
  for (const { appId, event } of result.events) {
    expect(appId).toMatch(/^[A-Za-z0-9_.-]{1,64}$/);
    expect(eventDefect(JSON.parse(event.toString('utf8')))).toBeUndefined();
    expect(/[\n\r]/.test(event.toString('latin1'))).toBe(false);
  }
  for (const item of result.quarantined) {
    expect(item.reason.length).toBeGreaterThan(10);
    expect(Buffer.isBuffer(item.data)).toBe(true);
  }
  if (data.length > 0 && result.events.length === 0) expect(result.quarantined.length).toBeGreaterThan(0);
}
