/**
 * Real GnuPG for tests: keys made the way a customer makes them (`gpg --quick-gen-key`),
 * exported armored, and files decrypted with `gpg --decrypt`. Every instance lives in its
 * own temporary GNUPGHOME; `dispose()` kills its gpg-agent and removes the directory.
 *
 * gpg must be on PATH (scripts/ensure-tools.sh installs it).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export function gpgAvailable(): boolean {
  return spawnSync('gpg', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The kinds of key the tests need; each mirrors a gpg command line a customer could type. */
export type GpgKeyKind =
  | 'rsa3072'
  | 'rsa2048'
  | 'rsa4096'
  | 'rsa1024'
  | 'curve25519'
  | 'gpgDefaults'
  | 'expired'
  | 'revoked'
  | 'signOnly';

export interface GpgKey {
  kind: GpgKeyKind;
  fingerprint: string;
  uid: string;
  armoredPublicKey: string;
}

export interface GpgHome {
  readonly homedir: string;
  /** Create a key of `kind` with an unprotected secret key; returns its armored public key. */
  createKey(kind: GpgKeyKind): Promise<GpgKey>;
  /** `gpg --armor --export-secret-keys`: what a careless customer might paste. */
  exportSecretKey(fingerprint: string): Promise<string>;
  /** `gpg --decrypt` of an OpenPGP message (binary or armored); the plaintext bytes. */
  decrypt(ciphertext: Uint8Array): Promise<Buffer>;
  /** `gpg --list-packets` output of a message, e.g. to show it carries no compressed packet. */
  listPackets(ciphertext: Uint8Array): Promise<string>;
  dispose(): Promise<void>;
}

const BATCH = ['--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', ''];

export async function createGpgHome(): Promise<GpgHome> {
  if (!gpgAvailable()) throw new Error('gpg is not on PATH: run scripts/ensure-tools.sh (installs gnupg)');
  // Short path: gpg-agent's socket lives in the homedir and socket paths are limited to ~107 bytes.
  const homedir = await mkdtemp(join(tmpdir(), 'gpgt-'));
  let counter = 0;

  const gpg = async (args: string[], options: { input?: Uint8Array } = {}) => {
    const child = execFileAsync('gpg', ['--homedir', homedir, ...BATCH, ...args], {
      env: { ...process.env, GNUPGHOME: homedir, LC_ALL: 'C' },
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
    });
    if (options.input) {
      child.child.stdin?.end(options.input);
    } else {
      child.child.stdin?.end();
    }
    try {
      const { stdout } = await child;
      return stdout;
    } catch (error) {
      const e = error as { stderr?: Buffer; message: string };
      throw new Error(`gpg ${args.join(' ')} failed: ${e.stderr?.toString('utf8') ?? e.message}`);
    }
  };

  const fingerprintOf = async (uid: string): Promise<string> => {
    const listing = (await gpg(['--with-colons', '--list-keys', `=${uid}`])).toString('utf8');
    const fpr = listing
      .split('\n')
      .find((line) => line.startsWith('fpr:'))
      ?.split(':')[9];
    if (!fpr) throw new Error(`no key found for ${uid}`);
    return fpr;
  };

  const exportPublic = async (fingerprint: string) =>
    (await gpg(['--armor', '--export', fingerprint])).toString('utf8');

  const withEncryptionSubkey = async (uid: string, algo: string, expire: string, extra: string[] = []) => {
    await gpg([...extra, '--quick-gen-key', uid, algo, 'sign', expire]);
    const fingerprint = await fingerprintOf(uid);
    await gpg([...extra, '--quick-add-key', fingerprint, algo, 'encr', expire]);
    return fingerprint;
  };

  const createKey = async (kind: GpgKeyKind): Promise<GpgKey> => {
    counter += 1;
    const uid = `Export Test ${kind} ${counter} <${kind}-${counter}@example.test>`;
    let fingerprint: string;
    switch (kind) {
      case 'rsa3072':
      case 'rsa2048':
      case 'rsa4096':
      case 'rsa1024':
        fingerprint = await withEncryptionSubkey(uid, kind, 'never');
        break;
      case 'curve25519':
        // GnuPG's "future-default": ed25519 primary (sign, certify) + cv25519 encryption subkey.
        await gpg(['--quick-gen-key', uid, 'future-default', 'default', 'never']);
        fingerprint = await fingerprintOf(uid);
        break;
      case 'gpgDefaults':
        // `gpg --quick-gen-key <uid>` and nothing else: GnuPG's default algorithm and expiry, now.
        await gpg(['--quick-gen-key', uid]);
        fingerprint = await fingerprintOf(uid);
        break;
      case 'expired':
        // Made in 2020 with a one-year expiry: expired since January 2021.
        await gpg([
          '--faked-system-time',
          '20200101T000000!',
          '--quick-gen-key',
          uid,
          'future-default',
          'default',
          '1y',
        ]);
        fingerprint = await fingerprintOf(uid);
        break;
      case 'revoked': {
        await gpg(['--quick-gen-key', uid, 'future-default', 'default', 'never']);
        fingerprint = await fingerprintOf(uid);
        // gpg writes a revocation certificate for every new key; its armor line is
        // prefixed with ":" so it cannot be imported by accident.
        const certificate = await readFile(join(homedir, 'openpgp-revocs.d', `${fingerprint}.rev`), 'utf8');
        await gpg(['--import'], {
          input: Buffer.from(certificate.replace(/^:-----BEGIN/m, '-----BEGIN'), 'utf8'),
        });
        break;
      }
      case 'signOnly':
        await gpg(['--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
        fingerprint = await fingerprintOf(uid);
        break;
    }
    return { kind, fingerprint, uid, armoredPublicKey: await exportPublic(fingerprint) };
  };

  return {
    homedir,
    createKey,
    exportSecretKey: async (fingerprint) =>
      (await gpg(['--armor', '--export-secret-keys', fingerprint])).toString('utf8'),
    decrypt: async (ciphertext) => {
      counter += 1;
      const input = join(homedir, `message-${counter}.gpg`);
      const output = join(homedir, `message-${counter}.out`);
      await writeFile(input, ciphertext);
      await gpg(['--quiet', '--output', output, '--decrypt', input]);
      return readFile(output);
    },
    listPackets: async (ciphertext) =>
      (await gpg(['--list-packets'], { input: ciphertext })).toString('utf8'),
    dispose: async () => {
      spawnSync('gpgconf', ['--homedir', homedir, '--kill', 'all'], {
        stdio: 'ignore',
        env: { ...process.env, GNUPGHOME: homedir },
      });
      await rm(homedir, { recursive: true, force: true });
    },
  };
}
