/**
 * The PGP adapter against the real GnuPG CLI: keys made by `gpg --quick-gen-key`, files
 * decrypted by `gpg --decrypt`, exactly as a customer would.
 */
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clearEncryptionKeyCache,
  encryptStream,
  InvalidPgpKeyError,
  loadEncryptionKey,
  validatePgpPublicKey,
} from '../../lambdas/adapters/pgp.ts';
import { createGpgHome, type GpgHome, type GpgKey } from '../support/gpg.ts';

// Keys are made by gpg with the real clock, so "now" is shortly after it.
const NOW = new Date(Date.now() + 60_000);

function ndjson(count: number): string {
  let text = '';
  for (let i = 0; i < count; i += 1) {
    text += `${JSON.stringify({
      app_name: 'App Name',
      export_hour: '10',
      db_name: 'MoEngage App Name',
      event: { event_name: 'VIEW_RADAR', event_uuid: `uuid-${i}`, event_time: 1652820710 + i },
      export_day: '2026-03-01',
    })}\n`;
  }
  return text;
}

/** Feed `bytes` in small chunks, as the exporter's gzip stream does. */
function chunked(bytes: Uint8Array, size = 4096): Readable {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    chunks.push(Buffer.from(bytes.subarray(offset, offset + size)));
  }
  return Readable.from(chunks);
}

async function expectRefusal(armored: string, reason: string, messagePattern: RegExp) {
  const refusal = await loadEncryptionKey(armored, NOW).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(refusal).toBeInstanceOf(InvalidPgpKeyError);
  const error = refusal as InvalidPgpKeyError;
  expect(error.reason).toBe(reason);
  expect(error.message).toMatch(/^pgpPublicKey/);
  expect(error.message).toMatch(messagePattern);
  return error;
}

describe('PGP encryption with keys made by GnuPG', () => {
  let home: GpgHome;
  const keys = {} as Record<'rsa3072' | 'rsa2048' | 'curve25519', GpgKey>;

  beforeAll(async () => {
    home = await createGpgHome();
    keys.rsa3072 = await home.createKey('rsa3072');
    keys.rsa2048 = await home.createKey('rsa2048');
    keys.curve25519 = await home.createKey('curve25519');
  });
  afterAll(async () => {
    await home?.dispose();
  });

  for (const kind of ['rsa3072', 'rsa2048', 'curve25519'] as const) {
    it(`gpg --decrypt then gunzip gives back the records (${kind})`, async () => {
      const records = ndjson(2_000);
      const gzipped = gzipSync(Buffer.from(records, 'utf8'));
      const key = await loadEncryptionKey(keys[kind].armoredPublicKey, NOW);
      expect(key.fingerprint).toBe(keys[kind].fingerprint);

      const ciphertext = await buffer(encryptStream(key, chunked(gzipped)));

      // Binary OpenPGP (not armored): the first byte is a packet tag with bit 7 set.
      expect(ciphertext[0]! & 0x80).toBe(0x80);
      expect(ciphertext.subarray(0, 5).toString('latin1')).not.toBe('-----');
      const decrypted = await home.decrypt(ciphertext);
      expect(decrypted.equals(gzipped)).toBe(true);
      expect(gunzipSync(decrypted).toString('utf8')).toBe(records);
    });
  }

  it('the message has no OpenPGP compression layer (the payload is gzip already)', async () => {
    const key = await loadEncryptionKey(keys.curve25519.armoredPublicKey, NOW);
    const ciphertext = await buffer(encryptStream(key, chunked(gzipSync(Buffer.from(ndjson(10))))));
    const packets = await home.listPackets(ciphertext);
    expect(packets).toMatch(/literal data packet/);
    expect(packets).not.toMatch(/compressed packet/);
  });

  it('an error of the input stream fails the encrypted stream', async () => {
    const key = await loadEncryptionKey(keys.curve25519.armoredPublicKey, NOW);
    const failing = new Readable({
      read() {
        this.destroy(new Error('staged object vanished'));
      },
    });
    await expect(buffer(encryptStream(key, failing))).rejects.toThrow(/staged object vanished/);
  });

  it('a key is re-validated against "now" on every load, also when cached', async () => {
    clearEncryptionKeyCache();
    const key = await loadEncryptionKey(keys.rsa3072.armoredPublicKey, NOW);
    expect(key.expiresAt).toBeUndefined();
    expect(key.algorithm).toBe('rsa3072');
    const again = await loadEncryptionKey(
      keys.rsa3072.armoredPublicKey,
      new Date(NOW.getTime() + 86_400_000),
    );
    expect(again.validatedAt.getTime()).toBe(NOW.getTime() + 86_400_000);
  });
});

describe('refused PGP keys', () => {
  let home: GpgHome;

  beforeAll(async () => {
    home = await createGpgHome();
  });
  afterAll(async () => {
    await home?.dispose();
  });

  it('an armored private key is refused without echoing it', async () => {
    const key = await home.createKey('curve25519');
    const armoredSecret = await home.exportSecretKey(key.fingerprint);
    const error = await expectRefusal(
      armoredSecret,
      'PRIVATE_KEY',
      /this is a private key; paste the public key/,
    );
    const body = armoredSecret.split('\n').find((line) => line.length > 40) ?? '';
    expect(error.message).not.toContain(body);
    expect(await validatePgpPublicKey(armoredSecret, NOW)).toEqual({
      field: 'pgpPublicKey',
      message: error.message,
    });
  });

  it('a private key hidden under a public-key armor header is refused too', async () => {
    const key = await home.createKey('curve25519');
    const relabelled = (await home.exportSecretKey(key.fingerprint)).replaceAll('PRIVATE KEY', 'PUBLIC KEY');
    await expectRefusal(relabelled, 'PRIVATE_KEY', /private key/);
  });

  it('an expired key is refused with the date it expired', async () => {
    const key = await home.createKey('expired');
    await expectRefusal(key.armoredPublicKey, 'EXPIRED', /expired on 2020-12-3\dT/);
    // The same key, judged as of a day when it was valid, is accepted: "now" is a parameter.
    await expect(
      loadEncryptionKey(key.armoredPublicKey, new Date('2020-06-01T00:00:00Z')),
    ).resolves.toMatchObject({
      fingerprint: key.fingerprint,
    });
  });

  it('a revoked key is refused', async () => {
    const key = await home.createKey('revoked');
    await expectRefusal(key.armoredPublicKey, 'REVOKED', /revoked by its owner/);
  });

  it('a sign-only key (no encryption subkey) is refused', async () => {
    const key = await home.createKey('signOnly');
    await expectRefusal(
      key.armoredPublicKey,
      'NO_ENCRYPTION_KEY',
      /no encryption-capable key.*quick-add-key/,
    );
  });

  it('an RSA-1024 key is refused as too weak', async () => {
    const key = await home.createKey('rsa1024');
    await expectRefusal(key.armoredPublicKey, 'WEAK_KEY', /RSA-1024.*at least 2048 bits/);
  });

  it('text that is not OpenPGP is refused', async () => {
    await expectRefusal('hello, this is my key', 'NOT_OPENPGP', /gpg --armor --export/);
    await expectRefusal(
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PUBLIC KEY BLOCK-----\n',
      'NOT_OPENPGP',
      /not an OpenPGP public key/,
    );
    await expectRefusal('', 'NOT_OPENPGP', /not an OpenPGP public key/);
  });

  it('two keys pasted at once are refused', async () => {
    const one = await home.createKey('curve25519');
    const two = await home.createKey('curve25519');
    await expectRefusal(`${one.armoredPublicKey}\n${two.armoredPublicKey}`, 'MULTIPLE_KEYS', /exactly one/);
  });

  it('a valid key passes the write-path validation', async () => {
    const key = await home.createKey('curve25519');
    expect(await validatePgpPublicKey(key.armoredPublicKey, NOW)).toBeUndefined();
  });
});
