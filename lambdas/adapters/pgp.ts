/**
 * OpenPGP for export files (`pgpPublicKey`, docs/product.md#file-format): validate a customer's
 * armored public key, each refusal naming `pgpPublicKey` and the fix (a private key is never
 * parsed, stored, cached or logged), and encrypt the gzipped NDJSON to it as a binary OpenPGP
 * stream without a compression layer, with backpressure. What is refused and accepted, and why:
 * docs/security.md#pgp-keys.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import {
  createMessage,
  encrypt,
  enums,
  type Key,
  type PartialConfig,
  type PublicKey,
  readKeys,
  type Subkey,
} from 'openpgp';
import type { FieldError } from '../domain/connection.ts';
import { InvalidPgpKeyError } from '../domain/errors.ts';
import type { PayloadEncryption } from '../ports/index.ts';

const FIELD = 'pgpPublicKey';
const MIN_RSA_BITS = 2048;
const PRIVATE_KEY_ARMOR = /-----BEGIN PGP PRIVATE KEY BLOCK-----/;

export { InvalidPgpKeyError, type InvalidPgpKeyReason } from '../domain/errors.ts';

/** A validated recipient. Opaque: only {@link loadEncryptionKey} makes one, {@link encryptStream} uses it. */
export interface EncryptionKey {
  /** Fingerprint of the primary key (upper-case hex), as `gpg --list-keys` prints it. */
  readonly fingerprint: string;
  /** Key id of the (sub)key the data is encrypted to. */
  readonly encryptionKeyId: string;
  /** e.g. `rsa3072`, `cv25519`. */
  readonly algorithm: string;
  /** When the key (or its encryption subkey) expires; undefined when it does not. */
  readonly expiresAt: Date | undefined;
  /** The instant it was validated at; encryption happens "as of" this instant. */
  readonly validatedAt: Date;
}

const keyMaterial = new WeakMap<EncryptionKey, PublicKey>();

// ---------------------------------------------------------------- parsing cache

/**
 * Parsed public keys per container, keyed by the SHA-256 of the armored text (the text itself
 * is not kept). Only what passed the time-independent checks is cached; time-dependent ones
 * (expiry, revocation as of `now`) run on every load.
 */
const MAX_CACHED_KEYS = 256;
const parsedKeys = new Map<string, PublicKey>();

/** Test hook: forget every parsed key. */
export function clearEncryptionKeyCache(): void {
  parsedKeys.clear();
}

function cacheKey(armored: string): string {
  return createHash('sha256').update(armored, 'utf8').digest('hex');
}

// ---------------------------------------------------------------- validation

/**
 * Parse and validate a customer's armored public key as of `now`.
 * @throws InvalidPgpKeyError with a `reason` and a message naming `pgpPublicKey` and the fix.
 */
export async function loadEncryptionKey(armored: string, now: Date): Promise<EncryptionKey> {
  if (typeof armored !== 'string' || armored.trim() === '') throw notOpenPgp();
  // Checked on the raw text so a private key is never parsed, cached or echoed.
  if (PRIVATE_KEY_ARMOR.test(armored)) throw privateKey();

  const hash = cacheKey(armored);
  let key = parsedKeys.get(hash);
  if (key) {
    parsedKeys.delete(hash); // re-insert: least recently used goes first
  } else {
    key = await parsePublicKey(armored);
  }
  parsedKeys.set(hash, key);
  if (parsedKeys.size > MAX_CACHED_KEYS) {
    const oldest = parsedKeys.keys().next().value;
    if (oldest !== undefined) parsedKeys.delete(oldest);
  }

  const { encryptionKey, expiresAt } = await validateAt(key, now);
  const loaded: EncryptionKey = Object.freeze({
    fingerprint: key.getFingerprint().toUpperCase(),
    encryptionKeyId: encryptionKey.getKeyID().toHex().toUpperCase(),
    algorithm: describeAlgorithm(encryptionKey),
    expiresAt,
    validatedAt: new Date(now.getTime()),
  });
  keyMaterial.set(loaded, key);
  return loaded;
}

/** For write paths (CLI, test connection): the refusal as a {@link FieldError}, or undefined when the key is usable. */
export async function validatePgpPublicKey(armored: string, now: Date): Promise<FieldError | undefined> {
  try {
    await loadEncryptionKey(armored, now);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidPgpKeyError) return { field: FIELD, message: error.message };
    throw error;
  }
}

async function parsePublicKey(armored: string): Promise<PublicKey> {
  // openpgp reads only the first armor block; a second one would be silently ignored.
  const blocks = armored.match(/-----BEGIN PGP [A-Z ]+-----/g)?.length ?? 0;
  if (blocks > 1) throw multipleKeys(blocks);
  let keys: Key[];
  try {
    keys = await readKeys({ armoredKeys: armored });
  } catch {
    // openpgp's own message is not shown: it may quote parts of the input.
    throw notOpenPgp();
  }
  if (keys.length === 0) throw notOpenPgp();
  if (keys.some((k) => k.isPrivate())) throw privateKey();
  if (keys.length > 1) throw multipleKeys(keys.length);
  const key = keys[0] as PublicKey;
  checkAlgorithm(key, key);
  return key;
}

async function validateAt(
  key: PublicKey,
  now: Date,
): Promise<{ encryptionKey: PublicKey | Subkey; expiresAt: Date | undefined }> {
  const fpr = key.getFingerprint().toUpperCase();

  if (await key.isRevoked(undefined, undefined, now)) throw revoked(fpr, 'key');
  try {
    await key.verifyPrimaryKey(now);
  } catch {
    const expiry = await key.getExpirationTime().catch(() => null);
    if (expiry instanceof Date && expiry.getTime() <= now.getTime()) throw expired(fpr, 'key', expiry);
    if (key.getCreationTime().getTime() > now.getTime()) {
      throw new InvalidPgpKeyError(
        'NOT_YET_VALID',
        `${FIELD}: key ${fpr} is dated in the future (${iso(key.getCreationTime())}); check the clock of the machine that made it and make the key again`,
      );
    }
    throw new InvalidPgpKeyError(
      'INVALID_SIGNATURES',
      `${FIELD}: key ${fpr} has no valid self-signature (damaged or stripped); export it again with gpg --armor --export <key id>`,
    );
  }

  let encryptionKey: PublicKey | Subkey;
  try {
    encryptionKey = await key.getEncryptionKey(undefined, now);
  } catch {
    throw await explainMissingEncryptionKey(key, fpr, now);
  }
  checkAlgorithm(key, encryptionKey);

  const primaryExpiry = await key.getExpirationTime().catch(() => null);
  const subkeyExpiry =
    encryptionKey === key ? null : await (encryptionKey as Subkey).getExpirationTime(now).catch(() => null);
  const expiries = [primaryExpiry, subkeyExpiry].filter((d): d is Date => d instanceof Date);
  const expiresAt = expiries.length ? new Date(Math.min(...expiries.map((d) => d.getTime()))) : undefined;
  return { encryptionKey, expiresAt };
}

/** openpgp found no usable encryption key: say which of the customer's fixes applies. */
async function explainMissingEncryptionKey(
  key: PublicKey,
  fpr: string,
  now: Date,
): Promise<InvalidPgpKeyError> {
  const candidates = key.subkeys.filter(isEncryptionCapable);
  if (candidates.length === 0) {
    return new InvalidPgpKeyError(
      'NO_ENCRYPTION_KEY',
      `${FIELD}: key ${fpr} has no encryption-capable key (it can only sign); add an encryption subkey (gpg --quick-add-key <fingerprint> cv25519 encr) and paste the public key again`,
    );
  }
  for (const subkey of candidates) {
    const info = subkey.getAlgorithmInfo();
    if (isRsa(info.algorithm) && (info.bits ?? 0) < MIN_RSA_BITS) return weak(fpr, info.bits ?? 0);
  }
  const expiries: Date[] = [];
  let revokedCount = 0;
  for (const subkey of candidates) {
    if (subkey.revocationSignatures.length > 0) {
      revokedCount += 1;
      continue;
    }
    const expiry = await subkey.getExpirationTime(now).catch(() => null);
    if (expiry instanceof Date && expiry.getTime() <= now.getTime()) expiries.push(expiry);
  }
  if (revokedCount === candidates.length) return revoked(fpr, 'encryption subkey');
  if (expiries.length + revokedCount === candidates.length && expiries.length > 0) {
    return expired(fpr, 'encryption subkey', new Date(Math.max(...expiries.map((d) => d.getTime()))));
  }
  return new InvalidPgpKeyError(
    'NO_ENCRYPTION_KEY',
    `${FIELD}: key ${fpr} has no valid encryption subkey (its binding signature does not verify); export the key again with gpg --armor --export <key id>, or add an encryption subkey (gpg --quick-add-key <fingerprint> cv25519 encr)`,
  );
}

function isEncryptionCapable(subkey: Subkey): boolean {
  const encryptFlags = enums.keyFlags.encryptCommunication | enums.keyFlags.encryptStorage;
  const flagged = subkey.bindingSignatures.some((sig) => ((sig.keyFlags?.[0] ?? 0) & encryptFlags) !== 0);
  const algorithm = subkey.getAlgorithmInfo().algorithm;
  return (
    flagged &&
    ['rsaEncryptSign', 'rsaEncrypt', 'elgamal', 'ecdh', 'x25519', 'x448', 'aedh'].includes(
      algorithm as string,
    )
  );
}

function isRsa(algorithm: string): boolean {
  return algorithm === 'rsaEncryptSign' || algorithm === 'rsaEncrypt' || algorithm === 'rsaSign';
}

/** Refuse weak or unsupported algorithms, on the primary key and on the key data is encrypted to. */
function checkAlgorithm(primary: PublicKey, keyOrSubkey: PublicKey | Subkey): void {
  const fpr = primary.getFingerprint().toUpperCase();
  const info = keyOrSubkey.getAlgorithmInfo();
  const algorithm = info.algorithm as string;
  if (isRsa(algorithm)) {
    if ((info.bits ?? 0) < MIN_RSA_BITS) throw weak(fpr, info.bits ?? 0);
    return;
  }
  if (algorithm === 'dsa' || algorithm === 'elgamal') {
    throw new InvalidPgpKeyError(
      'UNSUPPORTED_ALGORITHM',
      `${FIELD}: key ${fpr} uses ${algorithm === 'dsa' ? 'DSA' : 'ElGamal'}, which is not accepted; make a new key (gpg --quick-gen-key '<name> <email>' future-default default 2y) and paste its public key`,
    );
  }
  if (info.curve === 'secp256k1') {
    throw new InvalidPgpKeyError(
      'UNSUPPORTED_ALGORITHM',
      `${FIELD}: key ${fpr} uses the secp256k1 curve, which is not accepted; make a Curve25519 or RSA key (gpg --quick-gen-key '<name> <email>' future-default default 2y)`,
    );
  }
}

function describeAlgorithm(keyOrSubkey: PublicKey | Subkey): string {
  const info = keyOrSubkey.getAlgorithmInfo();
  if (isRsa(info.algorithm as string)) return `rsa${info.bits}`;
  if (info.curve === 'curve25519Legacy' || info.algorithm === 'x25519') return 'cv25519';
  return info.curve ? `${info.algorithm}-${info.curve}` : String(info.algorithm);
}

function iso(date: Date): string {
  return date.toISOString().replace(/\.000Z$/, 'Z');
}

function notOpenPgp(): InvalidPgpKeyError {
  return new InvalidPgpKeyError(
    'NOT_OPENPGP',
    `${FIELD} is not an OpenPGP public key: paste the ASCII-armored output of gpg --armor --export <key id> ("-----BEGIN PGP PUBLIC KEY BLOCK-----" ... "-----END PGP PUBLIC KEY BLOCK-----")`,
  );
}

function multipleKeys(count: number): InvalidPgpKeyError {
  return new InvalidPgpKeyError(
    'MULTIPLE_KEYS',
    `${FIELD} contains ${count} keys; paste exactly one public key (gpg --armor --export <key id>)`,
  );
}

function privateKey(): InvalidPgpKeyError {
  return new InvalidPgpKeyError(
    'PRIVATE_KEY',
    `${FIELD}: this is a private key; paste the public key (gpg --armor --export <key id>). The private key was not stored; if it was sent to anyone, consider it exposed`,
  );
}

function revoked(fpr: string, what: 'key' | 'encryption subkey'): InvalidPgpKeyError {
  return new InvalidPgpKeyError(
    'REVOKED',
    `${FIELD}: the ${what} of ${fpr} has been revoked by its owner; make a new key and paste its public key (gpg --armor --export <key id>)`,
  );
}

function expired(fpr: string, what: 'key' | 'encryption subkey', at: Date): InvalidPgpKeyError {
  return new InvalidPgpKeyError(
    'EXPIRED',
    `${FIELD}: the ${what} of ${fpr} expired on ${iso(at)}; extend it (gpg --quick-set-expire ${fpr} 2y '*' for the subkeys, and without '*' for the primary key) and paste the public key again, or use a new key`,
  );
}

function weak(fpr: string, bits: number): InvalidPgpKeyError {
  return new InvalidPgpKeyError(
    'WEAK_KEY',
    `${FIELD}: key ${fpr} is RSA-${bits}; RSA keys need at least ${MIN_RSA_BITS} bits: make a new key (gpg --quick-gen-key '<name> <email>' future-default default 2y, or rsa3072) and paste its public key`,
  );
}

// ---------------------------------------------------------------- encryption

const ENCRYPTION_CONFIG: PartialConfig = {
  // The payload is gzip already: a second compression layer only costs CPU.
  preferredCompressionAlgorithm: enums.compression.uncompressed,
};

/**
 * Encrypt `plaintext` (the gzipped NDJSON) to `key`: binary OpenPGP, no compression packet,
 * streamed with backpressure (memory stays flat in the input's size). Errors of the input
 * or of encryption destroy the returned stream.
 */
export function encryptStream(key: EncryptionKey, plaintext: Readable): Readable {
  const publicKey = keyMaterial.get(key);
  if (!publicKey) throw new TypeError('encryptStream needs an EncryptionKey made by loadEncryptionKey');

  async function* ciphertext(): AsyncGenerator<Uint8Array> {
    const message = await createMessage({
      binary: pullOnly(plaintext),
      format: 'binary',
      date: key.validatedAt,
    });
    const encrypted = await encrypt({
      message,
      encryptionKeys: publicKey as PublicKey,
      format: 'binary',
      date: key.validatedAt,
      config: ENCRYPTION_CONFIG,
    });
    const reader = (encrypted as ReadableStream<Uint8Array>).getReader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      // The consumer went away or something failed: stop reading the input too.
      reader.releaseLock();
      if (!plaintext.destroyed && !plaintext.readableEnded) plaintext.destroy();
    }
  }
  return Readable.from(ciphertext(), { objectMode: false });
}

/**
 * A Web stream that reads one chunk from `source` per pull. (`Readable.toWeb` on Node 20
 * counts its high-water mark in chunks, which lets it read far ahead of the consumer.)
 */
function pullOnly(source: Readable): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await iterator.next();
        if (done) {
          controller.close();
          return;
        }
        const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
        // A view, not a copy.
        controller.enqueue(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** The OpenPGP adapter as the use cases' PayloadEncryption port. */
export const pgpEncryption: PayloadEncryption<EncryptionKey> = { loadEncryptionKey, encryptStream };
