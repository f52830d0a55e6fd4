/**
 * The demo's own verdict: a manifest that does not match the stored files fails the run, even
 * with every event exported once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../local/demo.ts';

const scratch: string[] = [];
afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

describe('demo verdict', () => {
  it('a manifest whose SHA-256 does not match the stored part is reported and makes the run fail', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'demo-manifest-'));
    scratch.push(outDir);
    const lines: string[] = [];
    let tampered: string | undefined;
    const result = await runDemo({
      outDir,
      events: 120,
      seed: 5,
      day: new Date('2026-11-22T00:00:00Z'),
      print: (line) => lines.push(line),
      // The first data part is stored intact, but the exporter is told another checksum: its
      // manifest then lists a SHA-256 that the stored bytes do not have.
      sink: (real) => ({
        async putObject(target, key, body, contentType) {
          const stored = await real.putObject(target, key, body, contentType);
          if (tampered || !key.endsWith('.json.gz')) return stored;
          tampered = key;
          return { ...stored, sha256: '0'.repeat(64) };
        },
      }),
    });

    expect(tampered).toBeDefined();
    expect(result.duplicates).toBe(0);
    expect(result.missing).toBe(0);
    expect(result.staged).toBe(120);
    expect(result.problems).toBe(1);
    expect(result.ok).toBe(false);
    expect(lines).toContainEqual(
      expect.stringMatching(/^ {2}! manifest \d+: size or SHA-256 of .* does not match/),
    );
    expect(lines.at(-1)).toMatch(
      /^verified: 120 staged, \d+ expected, \d+ exported, 0 duplicates, 0 missing, 1 problems$/,
    );
  }, 600_000); // one simulated day: 104 s measured (120 events, shared 2-core machine)
});
