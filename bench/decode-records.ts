/**
 * Throughput of decodeRecordData (the stager's per-record decoding) on one core:
 * realistic ~600-byte events from local/events.ts, as one event per record, as
 * NDJSON records of 10 events, and as KPL aggregated records of 10 events.
 * Run: node --import tsx bench/decode-records.ts
 * Prints one line per shape, e.g. `single: 630 B/event, 123456 events per CPU second` (CPU time,
 * not wall time, so neighbours on a shared machine do not count).
 */
import { decodeRecordData } from '../lambdas/domain/incoming-records.ts';
import { createEventGenerator } from '../local/events.ts';
import { kplAggregate } from '../test/support/kpl.ts';

const generate = createEventGenerator({ appId: 'bench-app', seed: 7 });
const start = new Date('2026-11-02T10:00:00Z');
const lines = Array.from({ length: 2000 }, (_, i) => {
  const body = generate(new Date(start.getTime() + i * 1000));
  // Pad to ~600 bytes like the platform profile.
  const event = { ...body.event, pad: '' };
  const base = JSON.stringify({ app_id: body.app_id, event });
  event.pad = 'x'.repeat(Math.max(0, 600 - base.length));
  return Buffer.from(JSON.stringify({ app_id: body.app_id, event }));
});

function groups(size: number): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i < lines.length; i += size) out.push(lines.slice(i, i + size));
  return out;
}

const shapes: Record<string, Buffer[]> = {
  single: lines,
  ndjson10: groups(10).map((g) => Buffer.concat(g.flatMap((l) => [l, Buffer.from('\n')]))),
  kpl10: groups(10).map((g) => kplAggregate(g)),
};

/** CPU seconds of this process: on a shared machine, wall time measures the neighbours too. */
function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

for (const [name, records] of Object.entries(shapes)) {
  let events = 0;
  // Warm up, then measure about two CPU seconds.
  for (let k = 0; k < 3; k++) for (const r of records) decodeRecordData(r);
  const t0 = cpuSeconds();
  let elapsed = 0;
  while (elapsed < 2) {
    for (const r of records) events += decodeRecordData(r).events.length;
    elapsed = cpuSeconds() - t0;
  }
  const bytes = lines.reduce((n, l) => n + l.length, 0) / lines.length;
  console.log(`${name}: ${Math.round(bytes)} B/event, ${Math.round(events / elapsed)} events per CPU second`);
}

// The reference: what JSON.parse alone (the old stager's parse) costs on the same records.
{
  let events = 0;
  const t0 = cpuSeconds();
  let elapsed = 0;
  while (elapsed < 2) {
    for (const r of lines) events += JSON.parse(r.toString('utf8')) ? 1 : 0;
    elapsed = cpuSeconds() - t0;
  }
  console.log(`reference JSON.parse only: ${Math.round(events / elapsed)} events per CPU second`);
}
