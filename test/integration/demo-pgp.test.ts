/**
 * The demo with PGP, checked the way a customer would check their bucket: keys made by
 * `gpg --quick-gen-key`, every `.gpg` file the demo wrote decrypted with `gpg --decrypt` and
 * gunzipped. Also the documented `demo --pgp-public-key FILE` command line, whose files are
 * verified with the keyring of GNUPGHOME.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sundayAfter } from '../../cli/commands/demo.ts';
import { runCli } from '../../cli/main.ts';
import { loadEncryptionKey } from '../../lambdas/adapters/pgp.ts';
import { runDemo } from '../../local/demo.ts';
import type { Decrypt } from '../../local/verify.ts';
import { createGpgHome, type GpgHome, type GpgKey } from '../support/gpg.ts';

const PGP_CONNECTION = 'conn_demo0all0events';
/** Where the demo copies the PGP connection's objects (bucket/folder_name). */
const PGP_PREFIX = join('acme-analytics-exports', 'moengage', 'raw_all-events');
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/** A Sunday after today: keys made now are valid all simulated day, and the weekly export runs. */
function nextSunday(): Date {
  const day = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 + 86_400_000);
  day.setUTCDate(day.getUTCDate() + ((7 - day.getUTCDay()) % 7));
  return day;
}
const DAY = nextSunday();

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

let home: GpgHome;
const keys = {} as Record<'rsa3072' | 'curve25519' | 'gpgDefaults', GpgKey>;
const scratch: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

beforeAll(async () => {
  home = await createGpgHome();
  keys.rsa3072 = await home.createKey('rsa3072');
  keys.curve25519 = await home.createKey('curve25519');
  // Made at the real current time with gpg's default options, as a customer would just before a demo.
  keys.gpgDefaults = await home.createKey('gpgDefaults');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await home?.dispose();
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

describe('demo with a PGP key made by gpg', () => {
  for (const kind of ['rsa3072', 'curve25519'] as const) {
    it(`every .gpg file decrypts with gpg and gunzips to records; 0 duplicates, 0 missing (${kind})`, async () => {
      const outDir = await tempDir(`demo-pgp-${kind}-`);
      const lines: string[] = [];
      let decrypted = 0;
      const decrypt: Decrypt = async (body) => {
        const plaintext = await home.decrypt(body);
        decrypted += 1;
        return plaintext;
      };

      const result = await runDemo({
        outDir,
        events: 400,
        seed: 11,
        day: DAY,
        pgpPublicKey: keys[kind].armoredPublicKey,
        print: (line) => lines.push(line),
        decrypt,
      });

      expect(lines.filter((l) => / refused \(|export failed/.test(l))).toEqual([]);
      expect(result.duplicates).toBe(0);
      expect(result.missing).toBe(0);
      expect(result.staged).toBe(400);
      expect(result.exported).toBe(result.expected);
      expect(result.ok).toBe(true);
      const pgp = result.connections.find((c) => c.connectionId === PGP_CONNECTION);
      expect(pgp?.expected).toBeGreaterThan(300);
      expect(pgp?.problems).toEqual([]);
      expect(pgp?.files.length).toBeGreaterThan(1);
      expect(pgp?.files.every((f) => f.encrypted && f.key.endsWith('.json.gz.gpg'))).toBe(true);
      expect(decrypted).toBe(pgp?.files.length);

      // The files on disk, read again independently of the demo's own verification.
      const written = await filesUnder(join(outDir, PGP_PREFIX));
      const data = written.filter((p) => !p.endsWith('.manifest.json'));
      expect(data.length).toBe(pgp?.files.length);
      const uuids: string[] = [];
      for (const path of data) {
        expect(path).toMatch(/\.json\.gz\.gpg$/);
        const body = await readFile(path);
        // Not plain gzip: the bytes are OpenPGP (binary packet tag, bit 7 set).
        expect(body.subarray(0, 2).equals(GZIP_MAGIC)).toBe(false);
        expect(body[0]! & 0x80).toBe(0x80);
        // gpg --decrypt, then the gzip CLI (a part is a series of gzip members: gunzip reads them all).
        const records = execFileSync('gzip', ['-dc'], {
          input: await home.decrypt(body),
          maxBuffer: 256 << 20,
        })
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { event: { event_uuid: string }; app_name: string });
        expect(records.length).toBeGreaterThan(0);
        for (const r of records) {
          expect(r.app_name).toBe('Acme Shop');
          uuids.push(r.event.event_uuid);
        }
      }
      expect(uuids.length).toBe(pgp?.expected);
      expect(new Set(uuids).size).toBe(uuids.length);
      // The connections without a key stay plain gzip.
      const plain = (await filesUnder(outDir)).filter((p) => p.endsWith('.json.gz'));
      expect(plain.length).toBeGreaterThan(0);
      for (const path of plain) expect((await readFile(path)).subarray(0, 2).equals(GZIP_MAGIC)).toBe(true);
    }, 600_000); // a simulated day of 400 events: over 180 s on a loaded shared machine
  }
});

describe('cli: demo --pgp-public-key FILE', () => {
  async function demoCli(argv: string[]) {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['demo', ...argv], {
      io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    });
    return { code, stdout, stderr };
  }

  async function keyFile(key: GpgKey = keys.curve25519): Promise<string> {
    const path = join(await tempDir('demo-key-'), 'customer.asc');
    await writeFile(path, key.armoredPublicKey);
    return path;
  }

  it('a key made just now with gpg defaults, no --day: the demo moves to the next Sunday, prints what it staged, and gpg --decrypt verifies the files', async () => {
    vi.stubEnv('GNUPGHOME', home.homedir);
    try {
      const out = await tempDir('demo-cli-');
      const run = await demoCli([
        '--events',
        '150',
        '--out',
        out,
        '--pgp-public-key',
        await keyFile(keys.gpgDefaults),
      ]);
      expect(run.stderr).toBe('');
      expect(run.stdout).not.toMatch(/refused \(|export failed|cannot decrypt/);
      expect(run.stdout).toContain(`connection ${PGP_CONNECTION}: FIFTEEN_MINUTES, ALL events`);
      expect(run.stdout).toMatch(/\.json\.gz\.gpg +\d+ +\d+/);
      expect(run.stdout).toContain(`ran every tick of ${sundayAfter(new Date()).toISOString().slice(0, 10)}`);
      // The staged count is the stager's (all 150 events sent), not the sum expected over the three connections.
      expect(run.stdout).toContain('staged 150 events');
      const verified =
        /verified: (\d+) staged, (\d+) expected, (\d+) exported, 0 duplicates, 0 missing, 0 problems/.exec(
          run.stdout,
        );
      expect(verified?.[1]).toBe('150');
      expect(Number(verified?.[2])).toBeGreaterThan(150);
      expect(verified?.[3]).toBe(verified?.[2]);
      expect(run.code).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
  }, 600_000); // one simulated day through the CLI: 176 s measured (150 events, shared 2-core machine, load ~24)

  it('a keyring without the secret key reports each file it cannot decrypt and exits 1, without crashing', async () => {
    const stranger = await createGpgHome();
    try {
      vi.stubEnv('GNUPGHOME', stranger.homedir);
      const out = await tempDir('demo-cli-nokey-');
      const day = DAY.toISOString().slice(0, 10);
      const run = await demoCli([
        '--events',
        '150',
        '--out',
        out,
        '--day',
        day,
        '--pgp-public-key',
        await keyFile(),
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(/! moengage\/raw_all-events\/.*\.json\.gz\.gpg: cannot decrypt/);
      expect(run.stdout).toMatch(/verified: .* 0 duplicates, [1-9]\d* missing/);
    } finally {
      vi.unstubAllEnvs();
      await stranger.dispose();
    }
  }, 600_000); // one simulated day through the CLI, as above

  it('a --day before the key was made is refused up front, with a --day that works for that key', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const run = await demoCli(['--day', today, '--pgp-public-key', await keyFile(keys.gpgDefaults)]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const refused = new RegExp(
      `^error: --pgp-public-key .*customer\\.asc: pgpPublicKey: key ${keys.gpgDefaults.fingerprint} is dated in the future .*; the demo simulates ${today}, when the key is not valid: pass e\\.g\\. --day (\\d{4}-\\d{2}-\\d{2}) \\(or omit --day\\)\\n$`,
    ).exec(run.stderr);
    expect(refused, run.stderr).not.toBeNull();
    // The suggested day works: a Sunday after today, the key valid from its start through its last tick.
    const suggested = new Date(`${refused![1]}T00:00:00Z`);
    expect(suggested.getTime()).toBeGreaterThan(Date.now());
    expect(suggested.getUTCDay()).toBe(0);
    for (const at of [suggested, new Date(suggested.getTime() + 2 * 86_400_000)]) {
      await expect(loadEncryptionKey(keys.gpgDefaults.armoredPublicKey, at)).resolves.toBeDefined();
    }
  });
});
