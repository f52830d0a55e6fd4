/**
 * The exporter's byte-level record writer on staged lines as the stager now writes them: events
 * as received minus whitespace, so any valid JSON token text (big integers, `1.50`, escapes such as
 * `\u0041` or `\/`, escaped keys, numeric-looking keys) must reach the record byte for byte.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ALWAYS_KEPT_DEVICE_ATTRIBUTE,
  ALWAYS_KEPT_USER_ATTRIBUTE,
  type RecordFrame,
  recordFrame,
  type Selection,
} from '../../lambdas/domain/export-record.ts';
import { RecordBytes } from '../../lambdas/domain/record-codec/record-bytes.ts';
import {
  compileRecordBytesWriter,
  compileRecordWriter,
} from '../../lambdas/domain/record-codec/record-writer.ts';
import {
  escapedToken,
  freeKey,
  jsonValue,
  numberToken,
  objectTokens,
  stringToken,
  type Tokens,
} from '../support/json-text.ts';

const frame: RecordFrame = recordFrame({ appName: 'App', dbName: 'Db' }, new Date('2026-11-02T10:15:00Z'));

function viaBytes(selection: Selection, line: string): string {
  const out = new RecordBytes(64);
  const bytes = Buffer.from(`xx${line}yy`, 'utf8');
  compileRecordBytesWriter(selection, frame)(out, 'k', 7, bytes, 2, bytes.length - 2);
  return out.take().toString('utf8');
}

function viaParse(selection: Selection, line: string): string {
  return compileRecordWriter(selection, frame)('k', 7, [line]).text;
}

const record = (event: string) => `${frame.head}${event}${frame.tail}\n`;

describe('the byte-level record writer on events kept as received', () => {
  const selection: Selection = {
    events: { mode: 'SELECTED', names: ['Email Sent', 'PURCHASE'] },
    userAttributes: ['plan', 'A'],
    deviceAttributes: ['os'],
  };

  it('recognises escaped top-level keys, event names and attribute names, and keeps every kept byte', () => {
    const line =
      '{"event\\u005fname":"Email\\u0020Sent","event_uuid":"u","event_time":12345678901234567890,' +
      '"user\\u005Fattributes":{"pl\\u0061n":1.50,"secret":"s","\\u0041":"\\u00e9","moengage_user_id":"\\/x"},' +
      '"device_attributes":{"x":[1,{"os":2}],"os":"i\\/OS"},"2":"two","1":1e3}';
    expect(viaBytes(selection, line)).toBe(
      record(
        '{"event\\u005fname":"Email\\u0020Sent","event_uuid":"u","event_time":12345678901234567890,' +
          '"user\\u005Fattributes":{"pl\\u0061n":1.50,"\\u0041":"\\u00e9","moengage_user_id":"\\/x"},' +
          '"device_attributes":{"os":"i\\/OS"},"2":"two","1":1e3}',
      ),
    );
  });

  it('never exports an unselected attribute behind an escaped attributes key', () => {
    const line =
      '{"event_uuid":"u","event_name":"PURCHASE","event_time":1,"d\\u0065vice_attributes":{"secret":1,"os":"a"}}';
    expect(viaBytes(selection, line)).toBe(
      record(
        '{"event_uuid":"u","event_name":"PURCHASE","event_time":1,"d\\u0065vice_attributes":{"os":"a"}}',
      ),
    );
  });

  it('selects by an event_code written with escapes, and skips what is not selected', () => {
    const base = '{"event_uuid":"u","event_name":"other","event_time":1';
    expect(viaBytes(selection, `${base},"event_code":"PURCH\\u0041SE"}`)).toBe(
      record(`${base},"event_code":"PURCH\\u0041SE"}`),
    );
    expect(viaBytes(selection, `${base},"event_code":"PURCH\\u0041SE!"}`)).toBe('');
    expect(viaBytes(selection, `${base},"event\\u005fcode":"PURCHASE"}`)).toBe(
      record(`${base},"event\\u005fcode":"PURCHASE"}`),
    );
  });

  it('passes through every byte of a line when nothing is selected or projected', () => {
    const all: Selection = { events: { mode: 'ALL' }, userAttributes: 'ALL', deviceAttributes: 'ALL' };
    const line =
      '{"event_uuid":"\\ud83d","event_name":"\\u0041","event_time":1.50,"9007199254740993":9007199254740993}';
    expect(viaBytes(all, line)).toBe(record(line));
  });
});

// ---------------------------------------------------------------- property

const SELECTED_NAMES = ['Email Sent', 'é"\\', 'a/b', 'PURCHASE'];
const USER_KEEP = ['plan', 'A', '1', 'é"\\'];
const DEVICE_KEEP = ['os', 'a/b'];

/** A staged line and what the record must hold: the event's members, with the attributes' members apart. */
interface Line {
  members: [key: string, value: Tokens][];
  /** Members of user_attributes / device_attributes when the value is an object, else undefined. */
  user?: [string, Tokens][];
  device?: [string, Tokens][];
  name: string;
  code?: string;
}

/** A name that is selected, or not, written with or without escapes. */
const nameToken = fc.oneof(
  fc.constantFrom(...SELECTED_NAMES, 'Email Sent ', 'other').chain(escapedToken),
  stringToken.filter((t) => t !== '""'),
);
const keyOf = (name: string) => fc.oneof(fc.constant(JSON.stringify(name)), escapedToken(name));

/** Attribute members with distinct names (a repeated kept name takes the parse path by design). */
const attributeMembers = (keep: string[], alwaysKept: string) =>
  fc
    .array(
      fc.tuple(fc.oneof(fc.constantFrom(...keep, alwaysKept, 'other', '2').chain(keyOf), freeKey), jsonValue),
      { maxLength: 5 },
    )
    .map((members) => {
      const seen = new Set<string>();
      return members.filter(([key]) => {
        const name = JSON.parse(key) as string;
        if (seen.has(name) || name === '__proto__') return false;
        seen.add(name);
        return true;
      });
    });

const attributesValue = (keep: string[], alwaysKept: string) =>
  fc.oneof(
    { weight: 4, arbitrary: attributeMembers(keep, alwaysKept).map((m) => ({ members: m })) },
    // Not an object: kept as it is, like the parse path keeps it.
    { weight: 1, arbitrary: jsonValue.filter((v) => v[0] !== '{').map((v) => ({ tokens: v })) },
  );

const line: fc.Arbitrary<Line> = fc
  .record({
    name: nameToken,
    code: fc.option(nameToken),
    uuid: stringToken.filter((t) => t !== '""'),
    time: numberToken,
    user: fc.option(attributesValue(USER_KEEP, ALWAYS_KEPT_USER_ATTRIBUTE)),
    device: fc.option(attributesValue(DEVICE_KEEP, ALWAYS_KEPT_DEVICE_ATTRIBUTE)),
    extra: fc.array(fc.tuple(freeKey, jsonValue), { maxLength: 4 }),
    keys: fc.tuple(
      keyOf('event_name'),
      keyOf('event_code'),
      keyOf('event_uuid'),
      keyOf('event_time'),
      keyOf('user_attributes'),
      keyOf('device_attributes'),
    ),
    order: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
  })
  .map(({ name, code, uuid, time, user, device, extra, keys, order }) => {
    const members: [string, Tokens][] = [...extra];
    const result: Line = { members, name: JSON.parse(name) as string };
    const place = (k: number, member: [string, Tokens]) =>
      members.splice(order[k]! % (members.length + 1), 0, member);
    place(0, [keys[0], [name]]);
    if (code !== null) {
      place(1, [keys[1], [code]]);
      result.code = JSON.parse(code) as string;
    }
    place(2, [keys[2], [uuid]]);
    place(3, [keys[3], [time]]);
    for (const [k, value] of [
      [4, user],
      [5, device],
    ] as const) {
      if (value === null) continue;
      const tokens = 'members' in value ? objectTokens(value.members) : value.tokens;
      place(k, [keys[k], tokens]);
      if ('members' in value) result[k === 4 ? 'user' : 'device'] = value.members;
    }
    return result;
  });

/** The record the writer must produce, built from the generated tokens (no JSON.parse/stringify). */
function expectedRecord(l: Line, selection: Selection): string {
  if (selection.events.mode === 'SELECTED') {
    const names = new Set(selection.events.names);
    if (!names.has(l.name) && !(l.code !== undefined && names.has(l.code))) return '';
  }
  const project = (members: [string, Tokens][], keep: Selection['userAttributes'], alwaysKept: string) =>
    objectTokens(
      keep === 'ALL'
        ? members
        : members.filter(([key]) => {
            const name = JSON.parse(key) as string;
            return name === alwaysKept || keep.includes(name);
          }),
    );
  const members = l.members.map(([key, value]): [string, Tokens] => {
    const name = JSON.parse(key) as string;
    if (name === 'user_attributes' && l.user)
      return [key, project(l.user, selection.userAttributes, ALWAYS_KEPT_USER_ATTRIBUTE)];
    if (name === 'device_attributes' && l.device)
      return [key, project(l.device, selection.deviceAttributes, ALWAYS_KEPT_DEVICE_ATTRIBUTE)];
    return [key, value];
  });
  return record(objectTokens(members).join(''));
}

const PROPERTY_SELECTIONS: Record<string, Selection> = {
  selected: {
    events: { mode: 'SELECTED', names: SELECTED_NAMES },
    userAttributes: 'ALL',
    deviceAttributes: 'ALL',
  },
  projected: { events: { mode: 'ALL' }, userAttributes: USER_KEEP, deviceAttributes: DEVICE_KEEP },
  both: {
    events: { mode: 'SELECTED', names: SELECTED_NAMES },
    userAttributes: USER_KEEP,
    deviceAttributes: 'ALL',
  },
};

describe('the byte-level record writer on arbitrary whitespace-free JSON events', () => {
  for (const [name, selection] of Object.entries(PROPERTY_SELECTIONS)) {
    it(`keeps every kept byte and selects as the parse path does (${name})`, () => {
      fc.assert(
        fc.property(line, (l) => {
          const text = objectTokens(l.members).join('');
          const actual = viaBytes(selection, text);
          expect(actual).toBe(expectedRecord(l, selection));
          // The same meaning as the parse path (which re-serializes, so only the meaning can match).
          const parsed = viaParse(selection, text);
          expect(actual === '').toBe(parsed === '');
          const meaning = (text: string) => JSON.stringify(JSON.parse(text));
          if (actual !== '') expect(meaning(actual)).toBe(meaning(parsed));
        }),
        { numRuns: 500 },
      );
    });
  }
});
