/**
 * `npx cdk synth` itself, as an operator runs it before `cdk deploy`: offline, with no AWS
 * credentials, bundling with esbuild from node_modules and running cdk-nag; and refusing a
 * context key nobody reads.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const outdir = mkdtempSync(join(tmpdir(), 'cdk-cli-synth-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('cdk synth from the command line', () => {
  it('synthesizes the stack offline without credentials', async () => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CDK_DISABLE_VERSION_CHECK: '1',
    };
    const { stderr } = await run('npx', ['cdk', 'synth', '--quiet', '--no-notices', '-o', outdir], {
      cwd: process.cwd(),
      env,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: { stderr?: string; message: string }) => {
      throw new Error(`cdk synth failed: ${error.stderr ?? error.message}`);
    });
    const templates = readdirSync(outdir).filter((f) => f.endsWith('.template.json'));
    expect(templates, stderr).toHaveLength(1);
    const template = JSON.parse(readFileSync(join(outdir, templates[0]!), 'utf8'));
    const types = Object.values(template.Resources as Record<string, { Type: string }>).map((r) => r.Type);
    expect(types.filter((t) => t === 'AWS::Lambda::Function').length).toBeGreaterThanOrEqual(4);
    expect(types.filter((t) => t === 'AWS::Scheduler::Schedule')).toHaveLength(5);
  }, 240_000);

  it('fails on an unknown context key, listing the known ones', async () => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CDK_DISABLE_VERSION_CHECK: '1',
    };
    // Its own output directory: the CLI locks the one it writes to.
    const failure = await run(
      'npx',
      ['cdk', 'synth', '--quiet', '--no-notices', '-o', join(outdir, 'typo'), '-c', 'typoKey=1'],
      {
        cwd: process.cwd(),
        env,
        maxBuffer: 64 * 1024 * 1024,
      },
    ).then(
      () => undefined,
      (error: { stderr?: string }) => error.stderr ?? '',
    );
    expect(failure, 'cdk synth -c typoKey=1 succeeded').toBeDefined();
    expect(failure).toContain('unknown CDK context key "typoKey"');
    expect(failure).toMatch(/the known keys are .*exporterMemoryMb.*settleDelayMinutes/);
  }, 240_000);
});
