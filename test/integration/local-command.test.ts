/**
 * `s3-event-export local` and the README's "Try it by hand", through the real CLI: child processes
 * of bin/s3-event-export.mjs. The engines start in the foreground, print the lines to paste, serve
 * the walkthrough (connections new → edit → put → stage → tick → status → history → read the
 * file), and stop on SIGTERM / SIGINT without leaving a process or a port; with --data the state
 * is found again after a restart.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { isPortListening, isProcessAlive } from '../../local/engines.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/s3-event-export.mjs');
const SAMPLE = join(ROOT, 'docs/sample-events.ndjson');
const run = promisify(execFile);

const work = mkdtempSync(join(tmpdir(), 'local-command-'));
const dataDir = join(work, 'data');
const started: ChildProcess[] = [];
afterAll(() => {
  for (const child of started) if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** The environment of a fresh shell: no AWS settings of the machine running the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^AWS_|_TABLE$|^STAGING_|^JOB_QUEUE_URL$|^SETTLE_|^KMS_/.test(name)) env[name] = value;
  }
  return env;
}

interface Running {
  child: ChildProcess;
  output: string[];
  env: NodeJS.ProcessEnv;
  endpointPort: number;
  jvmPid: number;
  jvmPort: number;
  exited: Promise<number | null>;
}

/** Start `local` in its own process group and wait for the "running" line. */
async function startLocal(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'local', ...args], {
    cwd: work,
    env: cleanEnv(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const output: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      output.push(...lines);
      if (lines.some((line) => line.startsWith('# running'))) resolve();
    });
    void exited.then((code) => reject(new Error(`local exited (${code}) before it was ready: ${stderr}`)));
  });
  // Paste the lines: `export NAME=value` (values here need no shell unquoting but '' for empty).
  const env = cleanEnv();
  for (const line of output) {
    const match = /^export ([A-Z_0-9]+)=(.*)$/.exec(line);
    if (match) env[match[1]!] = match[2] === "''" ? '' : match[2]!;
  }
  const jvm = output.join('\n').match(/java pid (\d+) on port (\d+)/)!;
  return {
    child,
    output,
    env,
    endpointPort: Number(new URL(env.AWS_ENDPOINT_URL!).port),
    jvmPid: Number(jvm[1]),
    jvmPort: Number(jvm[2]),
    exited,
  };
}

/** The walkthrough's simulated clock (README: `export S3_EVENT_EXPORT_NOW=…`): staged, then settled. */
const STAGED_AT = '2026-11-30T10:07:00Z';
const SETTLED_AT = '2026-11-30T10:20:00Z';

/** One CLI command, as typed in the second shell. */
async function cli(local: Running, args: string[], now = STAGED_AT): Promise<string> {
  const env = { ...local.env, S3_EVENT_EXPORT_NOW: now };
  const { stdout } = await run(process.execPath, [BIN, ...args], { cwd: work, env });
  return stdout;
}

/** Signal `local`, then: exit code 0, its process group gone, the JVM gone, both ports closed. */
async function stopAndCheck(local: Running, signal: NodeJS.Signals): Promise<void> {
  local.child.kill(signal);
  expect(await local.exited).toBe(0);
  // Its helpers (tsx's esbuild service) leave as soon as their parent is gone: allow them a moment.
  const groupGone = async () => {
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(-local.child.pid!, 0);
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'ESRCH';
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  };
  expect(await groupGone()).toBe(true);
  expect(isProcessAlive(local.jvmPid)).toBe(false);
  expect(await isPortListening(local.endpointPort)).toBe(false);
  expect(await isPortListening(local.jvmPort)).toBe(false);
}

let connectionId = '';
let dataKey = '';

describe('s3-event-export local', () => {
  it('prints the lines to paste; the README walkthrough exports the sample file; SIGTERM leaves nothing running', async () => {
    const local = await startLocal(['--data', dataDir]);
    expect(local.output).toContain(`export AWS_ENDPOINT_URL=http://127.0.0.1:${local.endpointPort}`);
    for (const name of ['CONNECTIONS_TABLE', 'EXPORT_STATE_TABLE', 'STAGING_LEDGER_TABLE', 'STAGING_BUCKET'])
      expect(local.env[name]).toBeTruthy();
    expect(local.env).toMatchObject({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER' });
    expect(local.output.join('\n')).toMatch(/no local SQS queue.*in-process/);

    // connections new → edit → put
    const template = await cli(local, ['connections', 'new', '--name', 'try_it']);
    const row = JSON.parse(template) as Record<string, unknown>;
    connectionId = String(row.connectionId);
    row.userAttributes = ['city'];
    writeFileSync(join(work, 'conn.json'), `${JSON.stringify(row, null, 2)}\n`);
    expect(await cli(local, ['connections', 'put', 'conn.json', '--activate'])).toContain(
      `put connection ${connectionId}`,
    );

    // stage the sample file → tick at the next quarter hour's schedule
    expect(await cli(local, ['stage', SAMPLE])).toMatch(/^staged 4 event\(s\), quarantined 1 record\(s\)/);
    const tick = await cli(local, ['tick', '--frequency', 'FIFTEEN_MINUTES'], SETTLED_AT);
    expect(tick).toContain(`${connectionId}  committed`);
    expect(tick).toMatch(/seq 1 {2}1 file\(s\) {2}3 record\(s\)/);

    // status → history → read the file status shows
    const status = await cli(local, ['status'], SETTLED_AT);
    dataKey = status.match(/try_it\/export_day=\d\d-\d\d-\d{4}\/event_exports_\d+\.json\.gz/)![0];
    const history = await cli(local, ['history', '--connection', connectionId]);
    expect(history).toMatch(/^1 +\S+ +\S+ +1 +3 /m);
    const response = await fetch(`${local.env.AWS_ENDPOINT_URL}/my-export-bucket/${dataKey}`);
    expect(response.status).toBe(200);
    const records = gunzipSync(Buffer.from(await response.arrayBuffer()))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { app_name: string; event: Record<string, unknown> });
    const sample = readFileSync(SAMPLE, 'utf8')
      .split('\n')
      .filter((line) => line.includes('"app_id":"my-app"'))
      .map((line) => (JSON.parse(line) as { event: { event_uuid: string } }).event.event_uuid);
    expect(records.map((r) => r.event.event_uuid)).toEqual(sample);
    // The edit took effect: user attributes reduced to city (and the always-kept id).
    for (const record of records)
      expect(Object.keys(record.event.user_attributes as object).sort()).toEqual([
        'city',
        'moengage_user_id',
      ]);

    await stopAndCheck(local, 'SIGTERM');
  }, 420_000);

  it('--data keeps connections, history and files across a restart; Ctrl-C (SIGINT) stops it too', async () => {
    expect(connectionId).not.toBe('');
    const local = await startLocal(['--data', dataDir]);
    expect(await cli(local, ['connections', 'list'])).toContain(connectionId);
    expect(await cli(local, ['history', '--connection', connectionId])).toMatch(/^1 +\S+ +\S+ +1 +3 /m);
    const response = await fetch(`${local.env.AWS_ENDPOINT_URL}/my-export-bucket/${dataKey}`);
    expect(response.status).toBe(200);
    expect(
      gunzipSync(Buffer.from(await response.arrayBuffer()))
        .toString('utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(3);
    await stopAndCheck(local, 'SIGINT');
  }, 420_000);
});
