import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FREQUENCIES } from '../../lambdas/definitions.ts';
import {
  type ConnectionInput,
  InvalidConnectionError,
  parseConnection,
  validateConnection,
} from '../../lambdas/domain/connection.ts';
import { connectionPrefix } from '../../lambdas/domain/object-keys.ts';

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

const PRIVATE_KEY_BODY = 'lQOYBGNsZWNyZXQtc2VjcmV0LXNlY3JldC1rZXktbWF0ZXJpYWw=';
const PRIVATE_KEY = `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${PRIVATE_KEY_BODY}\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\n`;

function errorsOf(row: Record<string, unknown>) {
  const result = validateConnection(row);
  if (result.ok) throw new Error(`expected ${JSON.stringify(row)} to be invalid`);
  return result.errors;
}

interface BadCase {
  what: string;
  patch: Record<string, unknown>;
  /** Field the error must name. */
  field: string;
  /** Text of the valid form (or reason) the message must contain. */
  says: string | RegExp;
  /** Remove these fields from the row first. */
  omit?: string[];
}

const badCases: BadCase[] = [
  {
    what: 'connectionName with "/"',
    patch: { connectionName: 'a/b' },
    field: 'connectionName',
    says: 'must not contain "/"',
  },
  {
    what: 'connectionName too long',
    patch: { connectionName: 'x'.repeat(101) },
    field: 'connectionName',
    says: 'at most 100',
  },
  { what: 'empty connectionName', patch: { connectionName: '' }, field: 'connectionName', says: '1-100' },
  {
    what: 'connectionName with a tab',
    patch: { connectionName: 'a\tb' },
    field: 'connectionName',
    says: 'control characters',
  },
  {
    what: 'connectionName with NUL',
    patch: { connectionName: 'a\u0000b' },
    field: 'connectionName',
    says: 'control characters',
  },
  {
    what: 'uppercase bucketName',
    patch: { bucketName: 'Acme-Events' },
    field: 'bucketName',
    says: 'lowercase',
  },
  {
    what: 'two-character bucketName',
    patch: { bucketName: 'ab' },
    field: 'bucketName',
    says: '3-63 characters',
  },
  {
    what: 'bucketName like an IP address',
    patch: { bucketName: '192.168.10.1' },
    field: 'bucketName',
    says: 'IP address',
  },
  { what: 'bucketName with ".."', patch: { bucketName: 'a..b' }, field: 'bucketName', says: '".."' },
  { what: 'connectionName ".."', patch: { connectionName: '..' }, field: 'connectionName', says: '".."' },
  {
    what: 'folderPath with a ".." segment',
    patch: { folderPath: 'a/../b' },
    field: 'folderPath',
    says: '".."',
  },
  {
    what: 'region that is a name',
    patch: { bucketRegion: 'Mumbai' },
    field: 'bucketRegion',
    says: 'ap-south-1',
  },
  {
    what: 'region that is an AZ',
    patch: { bucketRegion: 'ap-south-1a' },
    field: 'bucketRegion',
    says: 'AWS region code',
  },
  {
    what: 'an 11-digit account',
    patch: { bucketOwnerAccountId: '12345678901' },
    field: 'bucketOwnerAccountId',
    says: '12-digit',
  },
  {
    what: 'folderPath with a leading "/"',
    patch: { folderPath: '/exports' },
    field: 'folderPath',
    says: 'must not start or end with "/"',
  },
  {
    what: 'folderPath with a trailing "/"',
    patch: { folderPath: 'exports/' },
    field: 'folderPath',
    says: 'e.g. my_folder/sub_folder',
  },
  { what: 'folderPath with "//"', patch: { folderPath: 'a//b' }, field: 'folderPath', says: '"//"' },
  {
    what: 'SELECTED with no names',
    patch: { events: { mode: 'SELECTED', names: [] } },
    field: 'events.names',
    says: 'at least one event name',
  },
  {
    what: 'SELECTED without names',
    patch: { events: { mode: 'SELECTED' } },
    field: 'events.names',
    says: 'list of event names',
  },
  {
    what: 'unknown events mode',
    patch: { events: { mode: 'SOME' } },
    field: 'events.mode',
    says: '{"mode":"ALL"}',
  },
  {
    what: 'lower-case frequency',
    patch: { frequency: 'daily' },
    field: 'frequency',
    says: FREQUENCIES.join(', '),
  },
  {
    what: 'HOURLY frequency',
    patch: { frequency: 'HOURLY' },
    field: 'frequency',
    says: 'FIFTEEN_MINUTES, DAILY, WEEKLY',
  },
  {
    what: 'userAttributes as a string',
    patch: { userAttributes: 'first_name' },
    field: 'userAttributes',
    says: '"ALL" or a list',
  },
  { what: 'unknown status', patch: { status: 'STOPPED' }, field: 'status', says: 'ACTIVE, PAUSED, DISABLED' },
  {
    what: 'pgpPublicKey not armored',
    patch: { pgpPublicKey: 'mQINBF...' },
    field: 'pgpPublicKey',
    says: 'BEGIN PGP PUBLIC KEY BLOCK',
  },
  {
    what: 'a KMS alias instead of a key ARN',
    patch: { kmsKeyArn: 'arn:aws:kms:ap-south-1:123456789012:alias/exports' },
    field: 'kmsKeyArn',
    says: 'not an alias',
  },
  {
    what: 'a KMS key in another region than the bucket',
    patch: { kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
    field: 'kmsKeyArn',
    says: 'is in us-east-1 but the bucket is in ap-south-1',
  },
  {
    what: 'assumeRoleArn without externalId',
    patch: { assumeRoleArn: 'arn:aws:iam::123456789012:role/writer' },
    field: 'externalId',
    says: 'required with assumeRoleArn',
  },
  {
    what: 'externalId without assumeRoleArn',
    patch: { externalId: 'ext-123' },
    field: 'assumeRoleArn',
    says: 'required when externalId is set',
  },
  {
    what: 'assumeRoleArn that is a user',
    patch: { assumeRoleArn: 'arn:aws:iam::123456789012:user/bob', externalId: 'ext-123' },
    field: 'assumeRoleArn',
    says: 'IAM role ARN',
  },
  {
    what: 'startFrom that is not an instant',
    patch: { startFrom: 'yesterday' },
    field: 'startFrom',
    says: 'ISO-8601',
  },
  { what: 'createdAt missing', patch: {}, omit: ['createdAt'], field: 'createdAt', says: 'ISO-8601' },
  {
    what: 'connectionId without conn_',
    patch: { connectionId: '01JD7Z6T5Q9Y3M2K8V4W1X0ABC' },
    field: 'connectionId',
    says: '"conn_" followed by a ULID or UUID',
  },
  { what: 'appId with a space', patch: { appId: 'acme shop' }, field: 'appId', says: 'letters, digits' },
  { what: 'bucketName missing', patch: {}, omit: ['bucketName'], field: 'bucketName', says: 'required' },
  { what: 'an unknown field', patch: { bucket: 'acme' }, field: '(row)', says: 'unknown field(s) "bucket"' },
];

describe('connection validation (docs/product.md#connections)', () => {
  it('the reference row is valid and gets the documented defaults', () => {
    const result = validateConnection(valid);
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.connection.status).toBe('ACTIVE');
      expect(result.connection.userAttributes).toBe('ALL');
      expect(result.connection.deviceAttributes).toBe('ALL');
    }
  });

  it.each(badCases)(
    '$what: the error names $field and the valid form',
    ({ patch, omit = [], field, says }) => {
      const row: Record<string, unknown> = { ...valid, ...patch };
      for (const name of omit) delete row[name];
      const errors = errorsOf(row);
      const error = errors.find((e) => e.field === field);
      expect(error, JSON.stringify(errors)).toBeDefined();
      if (typeof says === 'string') expect(error?.message).toContain(says);
      else expect(error?.message).toMatch(says);
    },
  );

  it('a private key pasted as pgpPublicKey is refused as a private key, and no error repeats the key', () => {
    const errors = errorsOf({ ...valid, pgpPublicKey: PRIVATE_KEY });
    const error = errors.find((e) => e.field === 'pgpPublicKey');
    expect(error?.message).toContain('this is a private key');
    const everything = JSON.stringify(errors);
    expect(everything).not.toContain(PRIVATE_KEY_BODY);
    expect(everything).not.toContain('BEGIN PGP PRIVATE KEY BLOCK');
    try {
      parseConnection({ ...valid, pgpPublicKey: PRIVATE_KEY });
      expect.unreachable('parseConnection must throw');
    } catch (thrown) {
      expect(thrown).toBeInstanceOf(InvalidConnectionError);
      expect((thrown as Error).message).toContain('private key');
      expect((thrown as Error).message).not.toContain(PRIVATE_KEY_BODY);
    }
  });

  it('an externalId that is invalid is not echoed in the error', () => {
    const secret = 'bad externalId with spaces and a secret 7f3a9';
    const errors = errorsOf({
      ...valid,
      assumeRoleArn: 'arn:aws:iam::123456789012:role/w',
      externalId: secret,
    });
    expect(errors.map((e) => e.field)).toContain('externalId');
    expect(JSON.stringify(errors)).not.toContain('7f3a9');
  });

  it('every bad field of one row is reported, not just the first', () => {
    const errors = errorsOf({ ...valid, bucketName: 'UPPER', frequency: 'HOURLY', folderPath: '/x/' });
    expect(errors.map((e) => e.field).sort()).toEqual(['bucketName', 'folderPath', 'frequency']);
  });

  it('something that is not an object is refused as a row', () => {
    expect(errorsOf([] as unknown as Record<string, unknown>)[0]?.message).toContain('JSON object');
  });

  it('parseConnection names the connection and each field in its message', () => {
    expect(() => parseConnection({ ...valid, bucketRegion: 'x' })).toThrow(
      /connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC is invalid: bucketRegion: /,
    );
  });
});

// ---------------------------------------------------------------- property

const segmentChar = fc.constantFrom(
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.'.split(''),
);
const segment = fc
  .string({ unit: segmentChar, minLength: 1, maxLength: 12 })
  .filter((s) => s !== '.' && s !== '..');
const bucketChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split(''));

const validRow = fc.record(
  {
    connectionId: fc.ulid().map((id) => `conn_${id}`),
    appId: fc.string({ unit: segmentChar, minLength: 1, maxLength: 64 }),
    appName: fc.string({ minLength: 1, maxLength: 40 }),
    dbName: fc.string({ minLength: 1, maxLength: 40 }),
    connectionName: fc
      .string({ minLength: 1, maxLength: 100 })
      // biome-ignore lint/suspicious/noControlCharactersInRegex: generating names without control characters
      .map((s) => s.replace(/[/\u0000-\u001f\u007f]/g, '_').trim())
      .filter((s) => s.length > 0 && s !== '.' && s !== '..'),
    bucketName: fc
      .array(fc.string({ unit: bucketChar, minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 })
      .map((parts) => parts.join('-'))
      .filter((s) => s.length >= 3 && s.length <= 63),
    bucketRegion: fc.constantFrom('ap-south-1', 'us-east-1', 'eu-west-3', 'us-gov-west-1'),
    bucketOwnerAccountId: fc.stringMatching(/^\d{12}$/),
    folderPath: fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
    events: fc.oneof(
      fc.constant({ mode: 'ALL' as const }),
      fc.record({
        mode: fc.constant('SELECTED' as const),
        names: fc.array(segment, { minLength: 1, maxLength: 5 }),
      }),
    ),
    userAttributes: fc.oneof(fc.constant('ALL' as const), fc.array(segment, { maxLength: 5 })),
    deviceAttributes: fc.oneof(fc.constant('ALL' as const), fc.array(segment, { maxLength: 5 })),
    frequency: fc.constantFrom(...FREQUENCIES),
    status: fc.constantFrom('ACTIVE' as const, 'PAUSED' as const, 'DISABLED' as const),
    createdAt: fc
      .date({
        min: new Date('2020-01-01T00:00:00Z'),
        max: new Date('2035-01-01T00:00:00Z'),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString()),
  },
  {
    requiredKeys: [
      'connectionId',
      'appId',
      'appName',
      'dbName',
      'connectionName',
      'bucketName',
      'bucketRegion',
      'events',
      'frequency',
      'createdAt',
    ],
  },
);

describe('connection validation (properties)', () => {
  it('any valid row validates to itself, and its key prefix has no "//" and no leading "/"', () => {
    fc.assert(
      fc.property(validRow, (row) => {
        const result = validateConnection(row);
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        const normalized = {
          ...row,
          userAttributes: row.userAttributes ?? 'ALL',
          deviceAttributes: row.deviceAttributes ?? 'ALL',
          status: row.status ?? 'ACTIVE',
        };
        expect(result.connection).toEqual(normalized);
        // Validating the normalized row changes nothing.
        expect(validateConnection(result.connection)).toEqual({ ok: true, connection: result.connection });
        const prefix = connectionPrefix(result.connection);
        expect(prefix).not.toContain('//');
        expect(prefix.startsWith('/')).toBe(false);
        expect(prefix.endsWith('/')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
