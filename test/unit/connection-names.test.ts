import { describe, expect, it } from 'vitest';
import { type ConnectionInput, validateConnection } from '../../lambdas/domain/connection.ts';
import {
  dataObjectKey,
  longestObjectKeyBytes,
  MAX_OBJECT_KEY_BYTES,
  MAX_PART_NUMBER,
  manifestObjectKey,
  probeObjectKey,
} from '../../lambdas/domain/object-keys.ts';

const valid: ConnectionInput = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop Production',
  connectionName: 'daily_purchases',
  bucketName: 'acme-analytics-events',
  bucketRegion: 'ap-south-1',
  events: { mode: 'ALL' },
  frequency: 'DAILY',
  createdAt: '2026-11-01T00:00:00Z',
};

function errorsOf(patch: Record<string, unknown>) {
  const result = validateConnection({ ...valid, ...patch });
  if (result.ok) throw new Error(`expected ${JSON.stringify(patch)} to be refused`);
  return result.errors;
}

const UNSAFE: [string, string][] = [
  ['C0 control (BEL)', '\u0007'],
  ['DEL', '\u007f'],
  ['C1 control (NEL)', '\u0085'],
  ['C1 control (CSI)', '\u009b'],
  ['line separator U+2028', '\u2028'],
  ['paragraph separator U+2029', '\u2029'],
  ['right-to-left override U+202E', '\u202e'],
  ['left-to-right isolate U+2066', '\u2066'],
  ['zero-width space U+200B', '\u200b'],
  ['zero-width joiner U+200D', '\u200d'],
  ['byte order mark U+FEFF', '\ufeff'],
  ['soft hyphen U+00AD', '\u00ad'],
  ['lone high surrogate', '\ud800'],
  ['lone low surrogate', '\udc00'],
];

describe('names: control, format, separator characters and ill-formed UTF-16', () => {
  for (const field of ['connectionName', 'folderPath', 'appName', 'dbName'] as const) {
    it.each(UNSAFE)(
      `${field} with a %s is refused, naming the field, the character and the valid form`,
      (_, ch) => {
        const errors = errorsOf({ [field]: `ab${ch}cd` });
        const error = errors.find((e) => e.field === field);
        expect(error?.message).toContain(`${field} must not contain control characters, format characters`);
        expect(error?.message).toContain(`U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
        expect(error?.message).toMatch(/use .*printable/);
      },
    );
  }

  it('two different lone surrogates (same UTF-8 bytes) are both refused', () => {
    const a = 'x\ud800';
    const b = 'x\udbff';
    expect(Buffer.from(a, 'utf8').equals(Buffer.from(b, 'utf8'))).toBe(true);
    expect(errorsOf({ connectionName: a })[0]?.field).toBe('connectionName');
    expect(errorsOf({ connectionName: b })[0]?.field).toBe('connectionName');
  });

  it('event and attribute names with a bidi override are refused', () => {
    expect(errorsOf({ events: { mode: 'SELECTED', names: ['buy\u202e'] } })[0]?.field).toBe('events.names.0');
    expect(errorsOf({ userAttributes: ['email\u200b'] })[0]?.field).toBe('userAttributes.0');
  });

  it('well-formed non-ASCII names (accents, CJK, emoji) are accepted', () => {
    const result = validateConnection({
      ...valid,
      connectionName: 'café_販売_🛒',
      folderPath: 'équipe/données',
    });
    expect(result.ok).toBe(true);
  });
});

describe('names: edge white space', () => {
  it.each([
    ['connectionName', ' daily'],
    ['connectionName', 'daily\u00a0'],
    ['folderPath', ' exports'],
    ['folderPath', 'exports '],
  ])('%s %j is refused with the valid form', (field, value) => {
    const error = errorsOf({ [field]: value }).find((e) => e.field === field);
    expect(error?.message).toMatch(/must not start or end with white space; use /);
  });

  it('a folderPath folder name with edge white space is refused', () => {
    const error = errorsOf({ folderPath: 'exports /daily' }).find((e) => e.field === 'folderPath');
    expect(error?.message).toContain('folder names must not start or end with white space');
  });
});

describe('names: the longest key a row can produce fits S3 (1,024 UTF-8 bytes)', () => {
  it('a long multi-byte folderPath that fits in 512 characters but not in 1,024 bytes is refused', () => {
    const folderPath = 'é'.repeat(500); // 500 characters, 1,000 bytes
    const errors = errorsOf({ folderPath });
    const error = errors.find((e) => e.field === 'folderPath');
    expect(error?.message).toMatch(
      /object keys of up to \d+ UTF-8 bytes, over S3's limit of 1024; shorten them by at least \d+ bytes/,
    );
  });

  it('the limit counts the longest of data part (largest part number, .gpg), manifest and probe', () => {
    const connection = { connectionName: 'n', folderPath: 'f', pgpPublicKey: 'armored' };
    const end = new Date(9_999_999_999_000);
    const keys = [
      dataObjectKey(connection, end, MAX_PART_NUMBER),
      manifestObjectKey(connection, end),
      probeObjectKey(connection, end),
    ];
    expect(longestObjectKeyBytes(connection)).toBe(Math.max(...keys.map((k) => Buffer.byteLength(k))));
    // A realistic key is never longer than the bound.
    expect(Buffer.byteLength(dataObjectKey(connection, new Date('2026-11-29T00:00:00Z'), 12))).toBeLessThan(
      longestObjectKeyBytes(connection),
    );
  });

  it('a row exactly at the limit is accepted and one byte more is refused', () => {
    const base = longestObjectKeyBytes({ connectionName: 'x' });
    // The folder adds its bytes plus "_": fill with 2-byte characters up to exactly 1,024.
    const fill = MAX_OBJECT_KEY_BYTES - base - 1;
    const folderPath = `${'é'.repeat(Math.floor(fill / 2))}${'a'.repeat(fill % 2)}`;
    const atLimit = { ...valid, connectionName: 'x', folderPath };
    expect(longestObjectKeyBytes(atLimit)).toBe(MAX_OBJECT_KEY_BYTES);
    expect(validateConnection(atLimit).ok).toBe(true);
    const over = validateConnection({ ...atLimit, connectionName: 'xy' });
    expect(over.ok).toBe(false);
    if (!over.ok) expect(over.errors[0]?.message).toContain('up to 1025 UTF-8 bytes');
  });
});
