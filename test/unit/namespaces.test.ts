/**
 * One namespace per connection (domain/namespaces.ts): with the claim rule, the object-key
 * function (domain/object-keys.ts) is injective across any set of accepted rows — no two
 * accepted connections produce the same key (compared as the UTF-8 bytes S3 stores), and no
 * key of one lies under another's prefix.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Connection, validateConnection } from '../../lambdas/domain/connection.ts';
import {
  ancestorPrefixes,
  NamespaceConflictError,
  namespaceConflict,
  prefixClaims,
  prefixesCollide,
} from '../../lambdas/domain/namespaces.ts';
import {
  connectionPrefix,
  dataObjectKey,
  manifestObjectKey,
  probeObjectKey,
} from '../../lambdas/domain/object-keys.ts';
import { InMemoryConnectionRepository } from '../support/in-memory-connection-repository.ts';

const base = {
  appName: 'App',
  dbName: 'DB',
  bucketRegion: 'ap-south-1',
  events: { mode: 'ALL' },
  frequency: 'DAILY',
  createdAt: '2026-11-01T00:00:00.000Z',
};

describe('prefix rule', () => {
  it('the ambiguous template: folder "a" + name "b_c" and folder "a_b" + name "c" make the same keys', () => {
    const one = { connectionName: 'b_c', folderPath: 'a' };
    const two = { connectionName: 'c', folderPath: 'a_b' };
    const end = new Date('2026-11-02T00:00:00Z');
    expect(dataObjectKey(one, end)).toBe(dataObjectKey(two, end));
    expect(
      namespaceConflict({ connectionId: 'conn_1', bucketName: 'b', ...one }, [
        { connectionId: 'conn_2', bucketName: 'b', ...two },
      ]),
    ).toBeDefined();
  });

  it('equal, containing and contained prefixes collide; siblings and other buckets do not', () => {
    expect(prefixesCollide('a/', 'a/')).toBe(true);
    expect(prefixesCollide('a/', 'a/b_c/')).toBe(true);
    expect(prefixesCollide('a/b_c/', 'a/')).toBe(true);
    expect(prefixesCollide('a/', 'ab/')).toBe(false);
    expect(prefixesCollide('r/a_x/', 'r/b_x/')).toBe(false);
    const a = { connectionId: 'conn_1', bucketName: 'one', connectionName: 'x' };
    expect(namespaceConflict(a, [{ ...a, connectionId: 'conn_2', bucketName: 'two' }])).toBeUndefined();
    expect(namespaceConflict(a, [a])).toBeUndefined();
  });

  it('claims: the own prefix and every ancestor folder', () => {
    expect(ancestorPrefixes('a/b_c/d_e/')).toEqual(['a/', 'a/b_c/']);
    expect(ancestorPrefixes('x/')).toEqual([]);
    expect(
      prefixClaims({ connectionId: 'conn_1', bucketName: 'b', folderPath: 'a/b', connectionName: 'c' }),
    ).toEqual([
      { bucketName: 'b', prefix: 'a/b_c/', role: 'own' },
      { bucketName: 'b', prefix: 'a/', role: 'below' },
    ]);
  });
});

// Few characters, chosen to make collisions likely: "_" and "/" (the template's separators),
// a 2-byte letter, a combining mark, white space, a bidi override and lone surrogates.
const nameChar = fc.oneof(
  { arbitrary: fc.constantFrom('a', '_'), weight: 8 },
  { arbitrary: fc.constantFrom('b', 'é', 'e\u0301', ' ', '\u202e', '\ud800', '\udbff'), weight: 1 },
);
const name = fc.string({ unit: nameChar, minLength: 1, maxLength: 3 });
const folder = fc.array(name, { minLength: 1, maxLength: 2 }).map((parts) => parts.join('/'));
const candidate = fc.record(
  {
    bucketName: fc.constantFrom('bucket-one', 'bucket-two'),
    connectionName: name,
    folderPath: folder,
    pgp: fc.boolean(),
  },
  { requiredKeys: ['bucketName', 'connectionName', 'pgp'] },
);
// Window ends on 15-minute boundaries (every schedule's windows end on one), parts 1..99,999.
const windowEnd = fc
  .integer({ min: 0, max: 500_000 })
  .map((n) => new Date(Date.UTC(2026, 0, 1) + n * 15 * 60_000));
const part = fc.integer({ min: 1, max: 99_999 });

const PGP = '-----BEGIN PGP PUBLIC KEY BLOCK-----\nx\n-----END PGP PUBLIC KEY BLOCK-----';
const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** Every key a connection writes at `end` (data part `n`, manifest, probe), as bytes. */
function keysOf(c: Connection, end: Date, n: number): Buffer[] {
  return [dataObjectKey(c, end, n), manifestObjectKey(c, end), probeObjectKey(c, end)].map(utf8);
}

describe('the key function is injective across any set of accepted rows (property)', () => {
  it("no two accepted connections share a key, and no key of one lies under another's prefix", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(candidate, { minLength: 2, maxLength: 16 }),
        fc.array(fc.tuple(windowEnd, part), { minLength: 1, maxLength: 4 }),
        async (candidates, moments) => {
          const repository = new InMemoryConnectionRepository();
          const accepted: Connection[] = [];
          for (const [i, c] of candidates.entries()) {
            const { pgp, ...fields } = c;
            const result = validateConnection({
              ...base,
              ...fields,
              ...(pgp ? { pgpPublicKey: PGP } : {}),
              connectionId: `conn_${String(i).padStart(26, '0')}`,
              appId: `app-${i % 3}`,
            });
            if (!result.ok) continue;
            try {
              await repository.put(result.connection);
              accepted.push(result.connection);
            } catch (error) {
              if (!(error instanceof NamespaceConflictError)) throw error;
            }
          }
          for (const a of accepted) {
            // Accepted names are well-formed: their UTF-8 bytes decode back to them (no lone surrogates).
            expect(utf8(connectionPrefix(a)).toString('utf8')).toBe(connectionPrefix(a));
            for (const b of accepted) {
              if (a === b || a.bucketName !== b.bucketName) continue;
              const prefixA = utf8(connectionPrefix(a));
              for (const [end, n] of moments) {
                for (const key of keysOf(b, end, n)) {
                  expect(key.subarray(0, prefixA.length).equals(prefixA)).toBe(false);
                  for (const other of keysOf(a, end, n)) expect(key.equals(other)).toBe(false);
                }
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('within one connection, different (window end, part) give different keys', () => {
    fc.assert(
      fc.property(windowEnd, part, windowEnd, part, (e1, p1, e2, p2) => {
        fc.pre(e1.getTime() !== e2.getTime() || p1 !== p2);
        const c = { connectionName: 'n', folderPath: 'f' };
        expect(dataObjectKey(c, e1, p1)).not.toBe(dataObjectKey(c, e2, p2));
        expect(dataObjectKey(c, e1, p1)).not.toBe(manifestObjectKey(c, e2));
        if (e1.getTime() !== e2.getTime())
          expect(manifestObjectKey(c, e1)).not.toBe(manifestObjectKey(c, e2));
      }),
    );
  });

  it('the schema alone does not prevent it: both rows of the ambiguous pair are valid', () => {
    const rows = [
      { connectionName: 'b_c', folderPath: 'a' },
      { connectionName: 'c', folderPath: 'a_b' },
    ].map((r, i) =>
      validateConnection({
        ...base,
        ...r,
        bucketName: 'bucket-one',
        connectionId: `conn_${String(i).padStart(26, '0')}`,
        appId: `app-${i}`,
      }),
    );
    expect(rows.every((r) => r.ok)).toBe(true);
  });
});
