/**
 * One export in its own process, so its peak RSS is the exporter's alone:
 *   node bench/.data/bundle/export-child.mjs '{"connectionId":"...","windowEnd":"...","gzipLevel":6}'
 * (bench/run.ts bundles it like the Lambda bundle, the record worker beside it; from the sources:
 * `node --import tsx bench/export-child.ts '{...}'`)
 * with the local engines' environment. Prints one JSON line: seconds (exportWindow only),
 * records, stored bytes, parts, peak RSS in MB.
 */

import { exportWindow } from '../lambdas/usecases/export-window.ts';
import { sharedRecordWorkers } from '../lambdas/usecases/record-worker-pool.ts';
import { ManualClock } from '../local/clock.ts';
import { localRuntime } from './local-runtime.ts';

interface ChildInput {
  connectionId: string;
  windowEnd: string;
  gzipLevel?: number;
  partSizeBytes?: number;
}

const input = JSON.parse(process.argv[2] ?? '{}') as ChildInput;
const windowEnd = new Date(input.windowEnd);
const clock = new ManualClock(new Date(windowEnd.getTime() + 10 * 60_000));
const runtime = localRuntime(process.env, clock);
const base = runtime.exportDeps();
const deps = runtime.exportDeps({
  settings: {
    ...base.settings,
    ...(input.gzipLevel !== undefined ? { gzipLevel: input.gzipLevel } : {}),
    ...(input.partSizeBytes !== undefined ? { partSizeBytes: input.partSizeBytes } : {}),
  },
});

// A warm Lambda container has its record workers running (started during init): so does this one.
await sharedRecordWorkers()?.warm();
const started = performance.now();
const cpu0 = process.cpuUsage();
const outcome = await exportWindow({ connectionId: input.connectionId, windowEnd }, deps);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
if (outcome.status !== 'committed') {
  console.error(`export did not commit: ${JSON.stringify(outcome)}`);
  process.exit(1);
}
const parts = outcome.windows.flatMap((w) => w.parts);
console.log(
  JSON.stringify({
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    records: outcome.windows.reduce((n, w) => n + w.records, 0),
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    parts: parts.length,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  }),
);
process.exit(0);
