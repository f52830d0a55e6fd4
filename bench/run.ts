/**
 * Exporter throughput and memory against `zcat | gzip -6 [| gpg -e]` on the same staged data,
 * in the same run (docs/BENCHMARKS.md).
 *
 *   npm run bench                         # 500,000 events, 3 repetitions, RSS at 1x and 10x
 *   npm run bench -- --quick              # 50,000 events, 2 repetitions
 *   npm run bench -- --events 200000 --reps 5 --rss-scale 10 --levels 6,1
 *
 * Ours is the exporter core (exportWindow: staged objects from the local S3 emulator → select /
 * project → gzip → optional PGP → multipart upload into the emulator, state in DynamoDB Local),
 * each run in a child process that reports its own time and peak RSS.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildSync } from 'esbuild';
import { createProgress } from '../cli/progress.ts';
import { parseConnection } from '../lambdas/domain/connection.ts';
import { readAll } from '../lambdas/domain/stream-bytes.ts';
import type { Runtime } from '../lambdas/runtime.ts';
import { ManualClock } from '../local/clock.ts';
import { startLocalEngines } from '../local/engines.ts';
import { createGpgHome } from '../test/support/gpg.ts';
import {
  BENCH_APP,
  compactWindow,
  DATA_DIR,
  ensurePayloads,
  replicateWindow,
  stagePayloads,
} from './dataset.ts';
import { localRuntime } from './local-runtime.ts';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string' },
    reps: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'rss-scale': { type: 'string', default: '10' },
    'no-rss': { type: 'boolean', default: false },
    levels: { type: 'string', default: '6' },
    /** Write a V8 CPU profile of every export child into bench/.data/profiles. */
    'cpu-prof': { type: 'boolean', default: false },
  },
});
const EVENTS = Number(args.events ?? (args.quick ? 50_000 : 500_000));
const REPS = Number(args.reps ?? (args.quick ? 2 : 3));
const RSS_SCALE = Number(args['rss-scale']);
const LEVELS = args.levels.split(',').map(Number);

// After now: the gpg key made by this run must not be dated after the export's clock.
const T0 = new Date((Math.floor(Date.now() / 3_600_000) + 1) * 3_600_000);
// The SDK's multi-line Node 20 notice (as in bin/s3-event-export.mjs); children inherit it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const BUCKET = 'bench-exports';
const PROJECTION = {
  userAttributes: ['first_name', 'city', 'plan'],
  deviceAttributes: ['os', 'app_version'],
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const rate = (events: number, seconds: number) =>
  `${Math.round(events / seconds).toLocaleString('en-US')} ev/s`;

/** Runs done of the repetitions (each baseline and each variant), on stderr when it is a terminal. */
const progress = createProgress({
  label: 'bench',
  unit: 'runs',
  stream: process.stderr,
  now: () => performance.now(),
});

function log(line: string): void {
  progress.clear();
  process.stdout.write(`${line}\n`);
}

function timeShell(command: string): number {
  const started = performance.now();
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', command], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (result.status !== 0) throw new Error(`baseline failed: ${command}\n${result.stderr.toString('utf8')}`);
  return (performance.now() - started) / 1000;
}

interface ChildResult {
  seconds: number;
  records: number;
  bytes: number;
  parts: number;
  peakRssMb: number;
  /** CPU time of the export child during exportWindow (all its threads). */
  cpuSeconds: number;
  /** CPU time of this process (the S3 emulator) during the child's run. */
  emulatorCpuSeconds?: number;
}

let exportChildBundle: string | undefined;

/**
 * The export child as it runs in Lambda: one esbuild bundle (AWS SDK included) with the record
 * worker bundled beside it, not TypeScript through tsx (whose loader thread and transpile caches
 * cost ~90 MB of RSS that a deployed exporter does not have).
 */
function bundledExportChild(): string {
  if (exportChildBundle) return exportChildBundle;
  const outdir = join(DATA_DIR, 'bundle');
  rmSync(outdir, { recursive: true, force: true });
  buildSync({
    entryPoints: {
      'export-child': new URL('./export-child.ts', import.meta.url).pathname,
      'record-worker-thread': new URL('../lambdas/usecases/record-worker-thread.ts', import.meta.url)
        .pathname,
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    minify: true,
    mainFields: ['module', 'main'],
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'error',
  });
  exportChildBundle = join(outdir, 'export-child.mjs');
  return exportChildBundle;
}

function runExportChild(env: Record<string, string>, input: Record<string, unknown>): Promise<ChildResult> {
  const cpu0 = process.cpuUsage();
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...(args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', join(DATA_DIR, 'profiles')] : []),
        // As the exporter runs in Lambda (lib/export.ts: NODE_OPTIONS): its record workers collect
        // garbage every 32 MB of staged data.
        '--expose-gc',
        bundledExportChild(),
        JSON.stringify(input),
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`export child exited ${code}: ${err}`));
      else {
        const cpu = process.cpuUsage(cpu0);
        const result = JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
        resolve({ ...result, emulatorCpuSeconds: (cpu.user + cpu.system) / 1e6 });
      }
    });
  });
}

let connectionCounter = 0;
async function newConnection(
  runtime: Runtime,
  appId: string,
  options: { projected: boolean; pgpPublicKey?: string },
): Promise<string> {
  connectionCounter += 1;
  const connectionId = `conn_bench${String(connectionCounter).padStart(8, '0')}`;
  await runtime.connections.put(
    parseConnection({
      connectionId,
      appId,
      appName: 'Bench App',
      dbName: 'MoEngage Bench App',
      connectionName: `bench ${connectionCounter}`,
      bucketName: BUCKET,
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      ...(options.projected ? PROJECTION : {}),
      ...(options.pgpPublicKey ? { pgpPublicKey: options.pgpPublicKey } : {}),
      frequency: 'DAILY',
      createdAt: T0.toISOString(),
    }),
  );
  return connectionId;
}

async function main(): Promise<void> {
  log(
    `bench: ${EVENTS.toLocaleString('en-US')} events, ${REPS} repetitions; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`,
  );
  const engines = await startLocalEngines({ tableSuffix: '-bench' });
  const gpgHome = await createGpgHome();
  try {
    await engines.createBucket(BUCKET);
    const clock = new ManualClock(T0);
    const runtime = localRuntime(engines.env, clock);

    // ---------------------------------------------------------------- data set and stager
    const payloads = await ensurePayloads(EVENTS);
    const staged = await stagePayloads(payloads, runtime, clock, new Date(T0.getTime() + 1000));
    const windowEnd = new Date(
      T0.getTime() + Math.max(3_600_000, Math.ceil((staged.objects + 2) / 3600) * 3_600_000),
    );
    // The 10x window's copies are staged now too: a slot is compacted once, with all its segments.
    const scaledApp = `${BENCH_APP}-x${RSS_SCALE}`;
    const scaledEnd = new Date(T0.getTime() + RSS_SCALE * (windowEnd.getTime() - T0.getTime()));
    const copies = args['no-rss']
      ? 0
      : await replicateWindow(runtime, BENCH_APP, T0, windowEnd, scaledApp, RSS_SCALE);
    await compactWindow(runtime, clock, T0, args['no-rss'] ? windowEnd : scaledEnd);
    const mbPerEvent = staged.payloadBytes / staged.events / 1e6;
    const stagerRate = staged.events / staged.seconds;
    const shardMax = Math.min(1000, 1 / mbPerEvent);
    log(
      `stager: ${staged.events.toLocaleString('en-US')} events (${fmt(staged.payloadBytes / 1e6, 0)} MB) in ${staged.objects} objects, ` +
        `${fmt(staged.seconds)} s: ${rate(staged.events, staged.seconds)} ` +
        `= ${fmt(stagerRate / shardMax, 1)}x a Kinesis shard's max input (${Math.round(shardMax)} records/s at ${Math.round(mbPerEvent * 1e6)} B/record)`,
    );

    // The same staged bytes as files for the shell baseline, in listing (= window) order.
    const stagedDir = join(DATA_DIR, `staged-${EVENTS}`);
    rmSync(stagedDir, { recursive: true, force: true });
    mkdirSync(stagedDir, { recursive: true });
    const refs = await runtime.staging.listWindow(BENCH_APP, T0, windowEnd);
    let stagedBytes = 0;
    for (const [i, ref] of refs.entries()) {
      const body = await readAll(await runtime.staging.openObject(ref.key));
      stagedBytes += body.length;
      writeFileSync(join(stagedDir, `${String(i).padStart(6, '0')}.ndjson.gz`), body);
    }
    const rawBytes = Number(
      spawnSync('bash', ['-c', `zcat ${stagedDir}/*.gz | wc -c`])
        .stdout.toString()
        .trim(),
    );
    log(
      `staged: ${refs.length} objects, ${fmt(stagedBytes / 1e6, 1)} MB gzipped, ${fmt(rawBytes / 1e6, 0)} MB of event lines (${Math.round(rawBytes / EVENTS)} B/event)`,
    );

    const key = await gpgHome.createKey('rsa3072');
    const gpg = `gpg --homedir ${gpgHome.homedir} --batch --no-tty --trust-model always --encrypt -r ${key.fingerprint}`;
    const baselines = {
      gzip: `zcat ${stagedDir}/*.gz | gzip -6 > /dev/null`,
      gzipGpg: `zcat ${stagedDir}/*.gz | gzip -6 | ${gpg} > /dev/null`,
    };

    // ---------------------------------------------------------------- repetitions
    type Variant = { name: string; projected: boolean; pgp: boolean; level: number };
    const variants: Variant[] = [];
    for (const level of LEVELS) {
      variants.push({ name: `ours projected L${level}`, projected: true, pgp: false, level });
      variants.push({ name: `ours projected+PGP L${level}`, projected: true, pgp: true, level });
      variants.push({ name: `ours pass-through L${level}`, projected: false, pgp: false, level });
    }
    const times: Record<string, number[]> = { 'zcat | gzip -6': [], 'zcat | gzip -6 | gpg -e': [] };
    const rss: Record<string, number[]> = {};
    const cpu: Record<string, number[]> = {};
    const sizes: Record<string, number> = {};
    for (const v of variants) {
      times[v.name] = [];
      rss[v.name] = [];
      cpu[v.name] = [];
    }
    const totalRuns = REPS * (variants.length + 2);
    let runsDone = 0;
    const ran = (exported: number) => {
      runsDone += 1;
      progress.update({ done: runsDone, total: totalRuns, events: exported });
    };
    let eventsExported = 0;
    for (let rep = 1; rep <= REPS; rep++) {
      times['zcat | gzip -6']!.push(timeShell(baselines.gzip));
      ran(eventsExported);
      times['zcat | gzip -6 | gpg -e']!.push(timeShell(baselines.gzipGpg));
      ran(eventsExported);
      for (const v of variants) {
        const connectionId = await newConnection(runtime, BENCH_APP, {
          projected: v.projected,
          ...(v.pgp ? { pgpPublicKey: key.armoredPublicKey } : {}),
        });
        const result = await runExportChild(engines.env, {
          connectionId,
          windowEnd: windowEnd.toISOString(),
          gzipLevel: v.level,
        });
        if (result.records !== EVENTS)
          throw new Error(`${v.name}: exported ${result.records} records, staged ${EVENTS}`);
        times[v.name]!.push(result.seconds);
        rss[v.name]!.push(result.peakRssMb);
        cpu[v.name]!.push(result.cpuSeconds + (result.emulatorCpuSeconds ?? 0));
        sizes[v.name] = result.bytes;
        eventsExported += result.records;
        ran(eventsExported);
      }
      log(
        `rep ${rep}: ${Object.entries(times)
          .map(([k, t]) => {
            const c = cpu[k];
            return `${k} ${fmt(t[t.length - 1]!)} s${c ? ` (cpu ${fmt(c[c.length - 1]!)} s)` : ''}`;
          })
          .join(', ')}`,
      );
    }

    progress.finish();
    log('');
    log('median over repetitions (same staged data, same run):');
    for (const [name, t] of Object.entries(times)) {
      const m = median(t);
      const extra = rss[name]
        ? `, peak RSS ${fmt(Math.max(...rss[name]!), 0)} MB, ${fmt(sizes[name]! / 1e6, 1)} MB stored`
        : '';
      log(`  ${name.padEnd(28)} ${fmt(m)} s  ${rate(EVENTS, m)}${extra}`);
    }
    const level = LEVELS[0]!;
    const ratio = median(times['zcat | gzip -6']!) / median(times[`ours projected L${level}`]!);
    const ratioPgp =
      median(times['zcat | gzip -6 | gpg -e']!) / median(times[`ours projected+PGP L${level}`]!);
    log(
      `  ratio ours/baseline (events/s, projection on, L${level}): ${fmt(ratio)} without PGP, ${fmt(ratioPgp)} with PGP`,
    );

    // ---------------------------------------------------------------- peak RSS in window size
    const rss1x = Math.max(...rss[`ours projected+PGP L${level}`]!);
    let rssScaled = Number.NaN;
    if (!args['no-rss']) {
      const connectionId = await newConnection(runtime, scaledApp, {
        projected: true,
        pgpPublicKey: key.armoredPublicKey,
      });
      const result = await runExportChild(engines.env, {
        connectionId,
        windowEnd: scaledEnd.toISOString(),
        gzipLevel: level,
      });
      if (result.records !== EVENTS * RSS_SCALE)
        throw new Error(`${RSS_SCALE}x: exported ${result.records} records`);
      rssScaled = result.peakRssMb;
      log(
        `  ${RSS_SCALE}x window (${copies} staged objects, ${(EVENTS * RSS_SCALE).toLocaleString('en-US')} events, projected+PGP): ` +
          `${fmt(result.seconds)} s, ${rate(EVENTS * RSS_SCALE, result.seconds)}, ${result.parts} parts, peak RSS ${fmt(rssScaled, 0)} MB ` +
          `(${fmt(((rssScaled - rss1x) / rss1x) * 100, 1)}% over 1x)`,
      );
    }
    log(
      `bench: throughput ratio ours/baseline ${fmt(ratio)} (with PGP ${fmt(ratioPgp)}), peak RSS ${fmt(rss1x, 0)} MB at 1x, ${fmt(rssScaled, 0)} MB at ${RSS_SCALE}x`,
    );
  } finally {
    await gpgHome.dispose();
    await engines.stop();
  }
}

await main();
