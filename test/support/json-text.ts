/**
 * Generators of JSON text as tokens, with the forms a producer may send and JSON.stringify never
 * writes: big integers, `1.50`, exponents, every kind of escape (`\\u0041`, `\\/`, a lone surrogate),
 * numeric-looking keys. Joining the tokens without whitespace gives the expected compact text.
 */
import fc from 'fast-check';

/** JSON text as tokens, so the expected compact text is the tokens joined without whitespace. */
export type Tokens = string[];

const escapes = fc.constantFrom(
  '\\u00e9',
  '\\u0041',
  '\\/',
  '\\n',
  '\\"',
  '\\\\',
  '\\ud83d\\ude00',
  '\\uD800',
  '\\t',
  '\\u0000',
);
const plainChars = fc.constantFrom(
  'a',
  'Z',
  '0',
  ' ',
  'é',
  '😀',
  '中',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '\u007f',
);
export const stringToken = fc
  .array(fc.oneof(plainChars, escapes), { maxLength: 6 })
  .map((parts) => `"${parts.join('')}"`);
export const numberToken = fc.oneof(
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.constantFrom('1.50', '1e3', '-0', '0.0', '2E-7', '9007199254740993', '1.0e+10', '-12.3400'),
  fc
    .tuple(fc.nat(), fc.stringMatching(/^[0-9]{1,4}$/), fc.constantFrom('', 'e5', 'E-2', 'e+0'))
    .map(([i, f, e]) => `${i}.${f}${e}`),
);
export const keyToken = fc.oneof(
  stringToken,
  fc.constantFrom('"1"', '"10"', '"2"', '"0"', '"-1"', '"01"', '"__proto__"'),
);
/** Keys the stager or the exporter act on: a generated free member never uses them. */
const RESERVED = new Set([
  'event_uuid',
  'event_name',
  'event_time',
  'event_code',
  'user_attributes',
  'device_attributes',
  'app_id',
  'event',
]);
/** A key that is none of the acted-on keys, however it is escaped. */
export const freeKey = keyToken.filter((k) => !RESERVED.has(JSON.parse(k) as string));

export const { value: jsonValue } = fc.letrec<{ value: Tokens; object: Tokens; array: Tokens }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    stringToken.map((t) => [t]),
    numberToken.map((t) => [t]),
    fc.constantFrom('true', 'false', 'null').map((t) => [t]),
    tie('object'),
    tie('array'),
  ),
  object: fc
    .array(fc.tuple(freeKey, tie('value')), { maxLength: 4 })
    .map((members) => objectTokens(members.map(([k, v]) => [k, v]))),
  array: fc.array(tie('value'), { maxLength: 4 }).map((items) => {
    const out: Tokens = ['['];
    items.forEach((item, i) => {
      if (i > 0) out.push(',');
      out.push(...item);
    });
    out.push(']');
    return out;
  }),
}));

export function objectTokens(members: [string, Tokens][]): Tokens {
  const out: Tokens = ['{'];
  members.forEach(([key, value], i) => {
    if (i > 0) out.push(',');
    out.push(key, ':', ...value);
  });
  out.push('}');
  return out;
}

/** `text` as a JSON string token with random escapes (`\\uXXXX` in either case, `\\/`): same value, other bytes. */
export function escapedToken(text: string): fc.Arbitrary<string> {
  const units = [...text];
  return fc
    .array(fc.constantFrom('raw', 'lower', 'upper'), { minLength: units.length, maxLength: units.length })
    .map((forms) => {
      const parts = units.map((ch, k) => {
        const form = forms[k];
        if (form === 'raw' || ch.length > 1) return JSON.stringify(ch).slice(1, -1);
        if (ch === '/') return '\\/';
        const hex = ch.charCodeAt(0).toString(16).padStart(4, '0');
        return `\\u${form === 'upper' ? hex.toUpperCase() : hex}`;
      });
      return `"${parts.join('')}"`;
    });
}
