/**
 * The benchmark's data set: events shaped as docs/product.md#records (the local generator plus a few more attributes,
 * ~620 bytes each), generated deterministically once into bench/.data as Kinesis record
 * payloads, then staged into the local staging bucket by the real stager (stageBatch with the
 * DynamoDB ledger and the S3 staging store), one Kinesis batch per staged object.
 */

import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip, createGzip } from 'node:zlib';
import { decodeSegmentHeader, encodeSegment, segmentDataStart } from '../lambdas/domain/staged-segment.ts';
import {
  compactionStartOf,
  segmentKey,
  segmentPrefix,
  slotsOfWindow,
  stageTimeOfSegmentKey,
} from '../lambdas/domain/staging-layout.ts';
import type { Runtime } from '../lambdas/runtime.ts';
import { compactSlot } from '../lambdas/usecases/compact-slot.ts';
import type { IncomingRecord } from '../lambdas/usecases/stage-batch.ts';
import { stageBatch } from '../lambdas/usecases/stage-batch.ts';
import type { ManualClock } from '../local/clock.ts';
import { createEventGenerator, seededRandom } from '../local/events.ts';

export const DATA_DIR = new URL('./.data/', import.meta.url).pathname;
export const BENCH_APP = 'bench-app';
/** Records per Kinesis batch (the Lambda event source maximum is 10,000). */
export const BATCH_RECORDS = 10_000;

/** Kinesis payloads `{"app_id", "event"}`, one per line, gzipped; made once per (events, seed). */
export async function ensurePayloads(events: number, seed = 1): Promise<string> {
  mkdirSync(DATA_DIR, { recursive: true });
  const file = join(DATA_DIR, `payloads-${events}-seed${seed}.ndjson.gz`);
  if (existsSync(file)) return file;
  const generate = createEventGenerator({ appId: BENCH_APP, seed, users: 50_000 });
  const random = seededRandom(seed + 1);
  const gzip = createGzip({ level: 1 });
  const out = gzip.pipe(createWriteStream(`${file}.tmp`));
  const receivedAt = new Date('2026-11-02T10:00:00Z');
  let batch = '';
  for (let i = 0; i < events; i++) {
    const payload = generate(receivedAt);
    const event = payload.event as {
      uid: string;
      user_attributes: Record<string, unknown>;
      device_attributes: Record<string, unknown>;
    };
    event.user_attributes.email = `${event.uid}@mail.example.com`;
    event.user_attributes.last_seen = `2026-11-0${1 + Math.floor(random() * 9)}T${String(Math.floor(random() * 24)).padStart(2, '0')}:12:00Z`;
    event.device_attributes.model = ['Pixel 8', 'iPhone 15', 'Galaxy S24', 'Chrome 131'][
      Math.floor(random() * 4)
    ];
    batch += `${JSON.stringify(payload)}\n`;
    if (batch.length > 1 << 20) {
      if (!gzip.write(batch)) await once(gzip, 'drain');
      batch = '';
    }
  }
  gzip.end(batch);
  await once(out, 'finish');
  renameSync(`${file}.tmp`, file);
  return file;
}

async function* payloadBatches(file: string): AsyncGenerator<Uint8Array[]> {
  const lines = createInterface({ input: createReadStream(file).pipe(createGunzip()), crlfDelay: Infinity });
  let batch: Uint8Array[] = [];
  for await (const line of lines) {
    batch.push(Buffer.from(line, 'utf8'));
    if (batch.length === BATCH_RECORDS) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

export interface StagingResult {
  events: number;
  payloadBytes: number;
  objects: number;
  /** Time spent in stageBatch only. */
  seconds: number;
}

/**
 * Stage the payloads with the real stager: one batch per second of stage time from `start`, as
 * one shard. Returns the stager's own time.
 */
export async function stagePayloads(
  file: string,
  runtime: Runtime,
  clock: ManualClock,
  start: Date,
): Promise<StagingResult> {
  const deps = runtime.stagerDeps();
  let sequence = 10n ** 20n;
  let events = 0;
  let payloadBytes = 0;
  let objects = 0;
  let seconds = 0;
  let at = start.getTime();
  for await (const data of payloadBatches(file)) {
    const records: IncomingRecord[] = data.map((d) => {
      sequence += 1n;
      payloadBytes += d.length;
      return { sequenceNumber: sequence.toString(), data: d };
    });
    clock.set(new Date(at));
    const t0 = performance.now();
    const result = await stageBatch({ shardId: 'shardId-000000000000', records }, deps);
    seconds += (performance.now() - t0) / 1000;
    events += result.stagedEvents;
    objects += result.objectsCreated.length;
    at += 1000;
  }
  return { events, payloadBytes, objects, seconds };
}

/**
 * Copy every segment of [start, end) `copies` times under a second app with later stage times
 * (its sections renamed; gzip members unchanged): a window with `copies` times the data of
 * `appId`, without staging it again.
 */
export async function replicateWindow(
  runtime: Runtime,
  appId: string,
  start: Date,
  end: Date,
  targetApp: string,
  copies: number,
): Promise<number> {
  const span = end.getTime() - start.getTime();
  let created = 0;
  for (const slot of slotsOfWindow(start, end)) {
    for (const { key } of await runtime.staging.listPrefix(segmentPrefix(slot))) {
      const stageTime = stageTimeOfSegmentKey(key);
      const body = await runtime.staging.readBytes(key);
      if (!stageTime || !body) continue;
      const dataStart = segmentDataStart(key, body);
      const sections = decodeSegmentHeader(key, body)
        .filter((s) => s.section === appId)
        .map((s) => ({
          section: targetApp,
          gzip: body.subarray(dataStart + s.offset, dataStart + s.offset + s.length),
          count: s.count,
        }));
      if (sections.length === 0) continue;
      for (let c = 0; c < copies; c++) {
        const copyKey = segmentKey(
          new Date(stageTime.getTime() + c * span),
          'shardId-copy',
          String(created),
          String(created),
        );
        await runtime.staging.createObject(copyKey, encodeSegment(sections));
        created += 1;
      }
    }
  }
  return created;
}

/**
 * Compact every slot of [start, end) as the compaction schedule would, once each may start (the
 * clock is moved there), so the export reads compacted slots and its timing holds no compaction.
 */
export async function compactWindow(
  runtime: Runtime,
  clock: ManualClock,
  start: Date,
  end: Date,
): Promise<void> {
  const slots = slotsOfWindow(start, end);
  const restore = clock.now();
  clock.set(compactionStartOf(slots.at(-1)!));
  for (const slot of slots) await compactSlot(slot, { store: runtime.staging, clock });
  clock.set(restore);
}
