/**
 * The published JSON Schema (docs/connection.schema.json) and validateConnection agree on every
 * structural rule: over generated rows, a row the validator refuses for a structural reason is
 * refused by the schema (checked with Ajv, a JSON Schema 2020-12 validator), and a row the
 * schema refuses is refused by the validator. The rules a schema cannot express are the
 * CHECKS_BEYOND_SCHEMA list, which the docs list too.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHECKS_BEYOND_SCHEMA,
  type FieldError,
  validateConnection,
} from '../../lambdas/domain/connection.ts';
import { EXAMPLE_CONNECTION } from '../../scripts/gen-docs.ts';

const root = new URL('../../', import.meta.url);
const schema = JSON.parse(readFileSync(new URL('docs/connection.schema.json', root), 'utf8')) as object;
// Formats are not asserted (zod publishes a pattern beside "date-time", and the pattern decides).
const schemaAccepts = new Ajv2020({ strict: false, validateFormats: false }).compile(schema);

/** Validator rules listed in CHECKS_BEYOND_SCHEMA: two fields compared, and printable names. */
const beyondSchema = (e: FieldError) =>
  (e.field === 'kmsKeyArn' && /SSE-KMS needs a key in the bucket's region/.test(e.message)) ||
  /must not contain control characters, format characters|^\w+ must not start or end with white space|longest object key/.test(
    e.message,
  );

const PIECES = [
  'a',
  'Z',
  '0',
  '9',
  '.',
  '..',
  '-',
  '_',
  '/',
  '//',
  ' ',
  '\t',
  '\n',
  '\r',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u00a0',
  '\u200b',
  '\u2028',
  '\ufeff',
  'é',
  '😀',
  'conn_',
  '01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  '123456789012',
  '192.168.1.1',
  'ap-south-1',
  'us-east-1',
  'arn:aws:kms:ap-south-1:123456789012:key/',
  'arn:aws:kms:us-east-1:123456789012:key/',
  '1234abcd-12ab-34cd-56ef-1234567890ab',
  'mrk-0123456789abcdef0123456789abcdef',
  'arn:aws:iam::123456789012:role/',
  'writer',
  '-----BEGIN PGP PUBLIC KEY BLOCK-----',
  '-----END PGP PUBLIC KEY BLOCK-----',
  '-----BEGIN PGP PRIVATE KEY BLOCK-----',
  '2026-11-01T00:00:00Z',
  '2026-02-29T00:00:00.000Z',
  '2026-11-01T00:00:00+05:30',
  'T',
  ':',
  '+',
  '=',
  ',',
  '@',
];

const pieced = fc.array(fc.constantFrom(...PIECES), { maxLength: 6 }).map((p) => p.join(''));
const lengthEdge = fc
  .constantFrom(1, 2, 3, 9, 10, 63, 64, 65, 100, 101, 256, 257, 512, 513, 1224, 1225)
  .chain((n) => fc.constantFrom('a'.repeat(n), `conn_${'A'.repeat(n)}`, `${'a'.repeat(n)}/b`));
const anyString = fc.oneof(
  pieced,
  lengthEdge,
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
);
const wrongType = fc.constantFrom(null, 0, 1.5, true, [], {}, ['x']);
const names = fc.array(fc.oneof(anyString, wrongType), { maxLength: 3 });

const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  events: fc.oneof(
    fc.constant({ mode: 'ALL' }),
    names.map((n) => ({ mode: 'SELECTED', names: n })),
    fc.constantFrom({ mode: 'SELECTED' }, { mode: 'ALL', names: ['A'] }, { mode: 'all' }, {}, 'ALL', []),
  ),
  userAttributes: fc.oneof(fc.constantFrom('ALL', 'all', 'NONE'), names),
  deviceAttributes: fc.oneof(fc.constantFrom('ALL', 'all', 'NONE'), names),
  frequency: fc.constantFrom('FIFTEEN_MINUTES', 'DAILY', 'WEEKLY', 'HOURLY', 'daily', ''),
  status: fc.constantFrom('ACTIVE', 'PAUSED', 'DISABLED', 'active', 'DELETED'),
  bucketRegion: fc.constantFrom('ap-south-1', 'us-east-1', 'eu-west-1'),
  kmsKeyArn: fc
    .constantFrom('ap-south-1', 'us-east-1')
    .map((region) => `arn:aws:kms:${region}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab`),
};
const valueFor = (field: string) => fc.oneof(FIELD_VALUES[field] ?? anyString, anyString, wrongType);

const FIELDS = [
  ...Object.keys(EXAMPLE_CONNECTION),
  'startFrom',
  'updatedAt',
  'assumeRoleArn',
  'externalId',
  'pgpPublicKey',
];
const edit = fc.oneof(
  fc.constantFrom(...FIELDS).chain((field) => valueFor(field).map((value) => ({ field, value }))),
  fc.constantFrom(...FIELDS).map((field) => ({ field, value: undefined })),
  fc.constantFrom('surprise', 'connectionid', '__proto__x').map((field) => ({ field, value: 'x' })),
);
const rows = fc.array(edit, { maxLength: 3 }).map((edits) => {
  const row: Record<string, unknown> = { ...EXAMPLE_CONNECTION };
  for (const { field, value } of edits) {
    if (value === undefined) delete row[field];
    else row[field] = value;
  }
  return JSON.parse(JSON.stringify(row)) as Record<string, unknown>;
});

describe('docs/connection.schema.json and validateConnection', () => {
  it('agree on every generated row: structurally refused by one ⇔ refused by the other', () => {
    const seen = { accepted: 0, refused: 0, beyond: 0 };
    fc.assert(
      fc.property(rows, (row) => {
        const result = validateConnection(row);
        const structural = !result.ok && result.errors.some((e) => !beyondSchema(e));
        if (result.ok) seen.accepted += 1;
        else if (structural) seen.refused += 1;
        else seen.beyond += 1;
        const verdict = schemaAccepts(row);
        const why = result.ok ? 'validator accepts' : JSON.stringify(result.errors);
        expect(verdict, `${JSON.stringify(row)}\n${why}\n${JSON.stringify(schemaAccepts.errors)}`).toBe(
          !structural,
        );
      }),
      { numRuns: 4000 },
    );
    // The generator reaches both sides and the cross-field rule, not only one class.
    expect(seen.accepted).toBeGreaterThan(200);
    expect(seen.refused).toBeGreaterThan(1000);
    expect(seen.beyond).toBeGreaterThan(0);
  });

  it('the rows the old schema let through are refused by both (printable-name rows: by the validator, listed beyond the schema)', () => {
    const bad: Record<string, unknown>[] = [
      { connectionName: 'a/b' },
      { connectionName: '..' },
      { bucketName: 'a..b' },
      { bucketName: 'a.-b' },
      { bucketName: '192.168.1.1' },
      { folderPath: '/abs' },
      { folderPath: 'a//b' },
      { folderPath: 'a/../b' },
      { folderPath: 'a/.' },
      { pgpPublicKey: 'not a key' },
      { pgpPublicKey: '-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n-----END PGP PRIVATE KEY BLOCK-----' },
      { assumeRoleArn: 'arn:aws:iam::123456789012:role/writer' },
      { externalId: 'abc-123' },
    ];
    for (const change of bad) {
      const row = { ...EXAMPLE_CONNECTION, ...change };
      expect(validateConnection(row).ok, JSON.stringify(change)).toBe(false);
      expect(schemaAccepts(row), JSON.stringify(change)).toBe(false);
    }
  });

  it('every check beyond the schema is listed in docs/operations.md', () => {
    const docs = readFileSync(new URL('docs/operations.md', root), 'utf8');
    for (const check of CHECKS_BEYOND_SCHEMA)
      expect(docs).toContain(`\`${check.field}\` ${check.rule} — ${check.checkedBy}.`);
    // The cross-field region rule is one of them, and the schema alone lets such a row through.
    const row = {
      ...EXAMPLE_CONNECTION,
      kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    };
    expect(schemaAccepts(row)).toBe(true);
    expect(validateConnection(row).ok).toBe(false);
  });
});
