/**
 * One export in its own process, so its peak RSS is the exporter's alone:
 *   node --import tsx bench/export-child.ts '{"connectionId":"...","windowEnd":"...","gzipLevel":6}'
 * with the local engines' environment. Prints one JSON line: seconds (exportWindow only),
 * records, stored bytes, parts, peak RSS in MB.
 */

import { exportWindow } from '../lambdas/usecases/export-window.ts';
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

const started = performance.now();
const outcome = await exportWindow({ connectionId: input.connectionId, windowEnd }, deps);
const seconds = (performance.now() - started) / 1000;
if (outcome.status !== 'committed') {
  console.error(`export did not commit: ${JSON.stringify(outcome)}`);
  process.exit(1);
}
const parts = outcome.windows.flatMap((w) => w.parts);
console.log(
  JSON.stringify({
    seconds,
    records: outcome.windows.reduce((n, w) => n + w.records, 0),
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    parts: parts.length,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  }),
);
process.exit(0);
