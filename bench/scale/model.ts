/**
 * From one simulated slice (simulate.ts) to a day at full scale, and its cost.
 *
 * Extrapolation, exactly:
 * - Stager: per-batch averages (requests, units, CPU) times the day's batches at the full rate
 *   (20 shards x 86,400 s / seconds per batch). Batches are simulated at full size and app mix,
 *   so nothing about a batch is scaled.
 * - Compactor: a simulated slot holds 1/k of a full slot's segments (k = sliceScale: 20 shards /
 *   simulated shards x batchEvery), and ran with its read budget divided by k, so it makes the
 *   same number of app groups as at full scale; its segment GETs, CPU and latency rounds are
 *   multiplied by k, its LIST pages are ceil(segments x k / 1,000), and the data object's upload
 *   is re-counted for k x its bytes (1 PUT below 8 MiB, else create + ceil(bytes / 8 MiB) parts +
 *   complete). Times 288 slots a day.
 * - Exporter: one sampled app per Zipf-rank stratum (profile.ts), whose rank has the stratum's
 *   mean share, stands for every app of the stratum, 96 windows a day. Its staged ranges at full
 *   scale are counted by re-running the compactor's chunk rule (2 MiB chunks at section
 *   boundaries) over its sections repeated k times and the real `planWindowRefs` over the result;
 *   its CPU grows with its full-scale events at the per-event slope fitted over the sampled
 *   exports; its customer parts and multipart requests follow its full-scale bytes. Slot-index
 *   GETs are taken out of each export and counted per exporter container: 3 per container and
 *   tick, with enough containers to run a tick's exports within `EXPORT_DRAIN_SECONDS`.
 * - Dispatcher: per-connection reads and CPU from the simulated tick, times A; its query's read
 *   units from A rows of the measured row size; SendMessageBatch per 10 jobs.
 */

import { MIN_PART_SIZE_BYTES } from '../../lambdas/adapters/s3-export-sink.ts';
import { DEFAULT_SETTLE_DELAY_MINUTES, DEFAULT_STAGING_RETENTION_DAYS } from '../../lambdas/definitions.ts';
import {
  continuedReadGets,
  planWindowRefs,
  rangeRuns,
  type SectionEntry,
  SLOT_CHUNK_BYTES,
} from '../../lambdas/domain/staged-segment.ts';
import { SLOT_MS } from '../../lambdas/domain/staging-layout.ts';
import { DEFAULT_READ_CONCURRENCY, MAX_BATCH_CONNECTIONS } from '../../lambdas/usecases/dispatch-tick.ts';
import { BATCH_LANES } from '../../lambdas/usecases/export-job.ts';
import { DEFAULT_PART_SIZE_BYTES } from '../../lambdas/usecases/export-window.ts';
import { ACCESS_LOG_RECORD_BYTES, PRICES } from '../prices.ts';
import { addUsage, emptyUsage, type Usage } from './fake-aws.ts';
import { GB_PER_DAY, MEMORY_MB, PROFILE, strata, Zipf } from './profile.ts';
import { type SliceResult, sliceScale } from './simulate.ts';

export { MEMORY_MB };

/** Per request, sequential within an invocation unless issued concurrently (fake-aws.ts). */
export const REQUEST_LATENCY_MS = 30;
/** A tick's exports are spread over as many warm containers as run them all within this. */
export const EXPORT_DRAIN_SECONDS = 60;
/** CloudWatch Logs per invocation (START/END/REPORT lines and one line of the function's). */
const LOG_BYTES_PER_INVOCATION = 1024;
/** Lambda's SQS pollers long-poll (20 s) even when idle: 5 pollers. */
const IDLE_SQS_RECEIVES_PER_DAY = 5 * 3 * 1440;
const STAGING_WRITE_PART_BYTES = 8 * 1024 * 1024;
const ACCESS_LOG_RETENTION_DAYS = 365;
const DAY_S = 86_400;
const SLOTS_PER_DAY = (DAY_S * 1000) / SLOT_MS;
const WINDOWS_PER_DAY = (24 * 60) / PROFILE.windowMinutes;
/** Slots (and slot indexes) a window of the profile covers. */
const SLOTS_PER_WINDOW = (PROFILE.windowMinutes * 60_000) / SLOT_MS;
const MONTH_DAYS = 30.44;

/** One function's day: units, Lambda seconds and invocations. */
export interface FunctionDay {
  usage: Usage;
  invocations: number;
  /** Billed duration, seconds: CPU + latency rounds x REQUEST_LATENCY_MS. */
  seconds: number;
  memoryMb: number;
}

export interface ScaleRow {
  apps: number;
  k: number;
  recordsPerBatch: number;
  s3PutsPerBatch: number;
  ledgerItemBytes: number;
  largestItemBytes: number;
  appsPerBatch: number;
  stagerCpuMsPerBatch: number;
  stagerWallSecondsPerBatch: number;
  headroomRecords: number;
  headroomBytes: number;
  headroom: number;
  functions: Record<'stager' | 'compactor' | 'exporter' | 'dispatcher', FunctionDay>;
  /** Requests a day by kind. */
  requests: {
    s3Put: number;
    customerPuts: number;
    s3Get: number;
    dynamoWrite: number;
    dynamoRead: number;
    sqs: number;
    lambda: number;
    events: number;
  };
  cost: Record<string, number>;
  dollarsPerDay: number;
  /** S3 PUTs into customers' buckets, a day: billed to them, not in dollarsPerDay. */
  customerPaidPerDay: number;
  perGb: number;
  kinesis: ReturnType<typeof kinesisCost>;
  perGbWithOnDemand: number;
  firehose: ReturnType<typeof firehoseCost>;
  largestAppDailyReads: number;
  /** Customer bytes per event, and the worst ratio to the gzip of the whole window. */
  bytesPerEvent: number;
  worstRatio: number;
  exportChecks: { rank: number; rangesModeled: number; rangesCounted: number }[];
  /** Exporter containers a tick needs to finish within EXPORT_DRAIN_SECONDS. */
  exportContainers: number;
  /** The dispatcher's duration per tick (its Lambda timeout is 300 s: lib/export.ts). */
  dispatcherSecondsPerTick: number;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => (xs.length ? sum(xs) / xs.length : 0);

function averageUsage(usages: Usage[]): Usage {
  const total = emptyUsage();
  for (const u of usages) addUsage(total, u);
  return addUsage(emptyUsage(), total, 1 / Math.max(1, usages.length));
}

/** Requests of S3StagingStore.writeStream for `bytes` (lib-storage, 8 MiB parts). */
export function stagingWriteRequests(bytes: number): number {
  return bytes < STAGING_WRITE_PART_BYTES ? 1 : 2 + Math.ceil(bytes / STAGING_WRITE_PART_BYTES);
}

/** Requests of S3ExportSink.putObject for `bytes` (lib-storage, 5 MiB parts). */
export function sinkWriteRequests(bytes: number): number {
  return bytes < MIN_PART_SIZE_BYTES ? 1 : 2 + Math.ceil(bytes / MIN_PART_SIZE_BYTES);
}

/**
 * An app's index entries in one slot when each of its sections appears `k` times (k times the
 * segments), by the compactor's rule: a chunk is closed before a section that would take it past
 * SLOT_CHUNK_BYTES (compact-slot.ts, slotData).
 */
export function chunkEntries(sectionLengths: number[], k: number): SectionEntry[] {
  const entries: SectionEntry[] = [];
  let chunk: SectionEntry | undefined;
  let offset = 0;
  const whole = Math.floor(k);
  for (let copy = 0; copy < Math.ceil(k); copy++) {
    // A fractional k takes that share of the last copy's sections.
    const take = copy < whole ? sectionLengths.length : Math.round(sectionLengths.length * (k - whole));
    for (const length of sectionLengths.slice(0, take)) {
      if (chunk && chunk.length > 0 && chunk.length + length > SLOT_CHUNK_BYTES) chunk = undefined;
      if (!chunk) {
        chunk = { section: 'app', offset, length: 0, count: 0 };
        entries.push(chunk);
      }
      chunk.length += length;
      offset += length;
    }
  }
  return entries;
}

/**
 * Ranged GETs of one window of an app whose slots hold `sectionsBySlot` x k, read in one
 * invocation: one per run of contiguous chunks (S3StagingStore continues a run's GET from chunk
 * to chunk), as domain continuedReadGets counts them.
 */
export function windowRanges(sectionsBySlot: number[][], k: number): number {
  const slots = sectionsBySlot.map((sections, i) => ({
    slotStart: new Date(i * SLOT_MS),
    dataKey: `slots/x/${i}.data`,
    entries: chunkEntries(sections, k),
  }));
  return continuedReadGets(
    planWindowRefs(slots).map((ref) => ref.key),
    rangeRuns(slots),
  );
}

/** The exporter's budget per invocation (its 15-minute timeout, less the reserve for a part). */
const EXPORTER_INVOCATION_SECONDS = 12 * 60;

function seconds(cpuMicros: number, rounds: number): number {
  return cpuMicros / 1e6 + (rounds * REQUEST_LATENCY_MS) / 1000;
}

function stagerDay(slice: SliceResult) {
  const batchesPerDay = (PROFILE.shards * DAY_S) / slice.secondsPerBatch;
  const usage = averageUsage(slice.batches.map((b) => b.usage));
  const cpu = mean(slice.batches.map((b) => b.cpuMicros));
  const wall = seconds(cpu, usage.rounds);
  const day: FunctionDay = {
    usage: addUsage(emptyUsage(), usage, batchesPerDay),
    invocations: batchesPerDay,
    seconds: wall * batchesPerDay,
    memoryMb: MEMORY_MB.stager,
  };
  return { day, usage, cpu, wall };
}

function compactorDay(slice: SliceResult, k: number): FunctionDay {
  const perSlot = slice.compactions.map((c) => {
    const usage = emptyUsage();
    const segmentGets = c.categories.get('staging:segments/*.seg')?.get ?? 0;
    const indexHead = c.categories.get('staging:slots/*.index')?.get ?? 0;
    const quarantinePuts = c.categories.get('staging:quarantine/*.gz')?.put ?? 0;
    const list = Math.ceil((c.segments * k) / 1000);
    usage.s3Get = segmentGets * k + indexHead;
    usage.s3Head = indexHead;
    usage.s3List = list;
    usage.s3GetBytes = c.usage.s3GetBytes * k;
    usage.s3Put = list + stagingWriteRequests(c.dataBytes * k) + 1 + quarantinePuts;
    usage.requests = usage.s3Get + usage.s3Put;
    usage.rounds = c.usage.rounds * k;
    return { usage, cpu: c.cpuMicros * k };
  });
  const usage = averageUsage(perSlot.map((p) => p.usage));
  const cpu = mean(perSlot.map((p) => p.cpu));
  return {
    usage: addUsage(emptyUsage(), usage, SLOTS_PER_DAY),
    invocations: SLOTS_PER_DAY,
    seconds: seconds(cpu, usage.rounds) * SLOTS_PER_DAY,
    memoryMb: MEMORY_MB.compactor,
  };
}

/**
 * CPU per exported event (microseconds): the least-squares slope over the sampled exports when
 * their sizes spread (a factor of 4 or more), else the largest export's CPU over its events
 * (which counts its fixed part as per-event: an overestimate).
 */
export function cpuPerEvent(exports: readonly { events: number; cpuMicros: number }[]): number {
  const xs = exports.map((e) => e.events);
  const ys = exports.map((e) => e.cpuMicros);
  const largest = exports.reduce(
    (a, b) => (b.events > a.events ? b : a),
    exports[0] ?? { events: 0, cpuMicros: 0 },
  );
  const proportional = largest.events > 0 ? largest.cpuMicros / largest.events : 0;
  if (Math.max(...xs) < 4 * Math.max(1, Math.min(...xs))) return proportional;
  const mx = mean(xs);
  const my = mean(ys);
  const sxx = sum(xs.map((x) => (x - mx) ** 2));
  const slope = sum(xs.map((x, i) => (x - mx) * (ys[i]! - my))) / sxx;
  return slope > 0 ? slope : proportional;
}

interface ExportWindowFull {
  usage: Usage;
  /** PUTs into the customer's bucket (data parts and manifest): billed to the bucket owner. */
  customerPuts: number;
  cpu: number;
  seconds: number;
  ranges: number;
  rangesCounted: number;
  customerBytes: number;
  events: number;
  ratio: number;
}

function exportWindowFull(
  slice: SliceResult,
  rank: number,
  zipf: Zipf | undefined,
  k: number,
  slope: number,
) {
  const measures = slice.exports.filter((e) => e.rank === rank);
  if (measures.length === 0) throw new Error(`no export of rank ${rank} in the slice`);
  const m = measures[0]!;
  const eventsFull = zipf
    ? zipf.share(rank) * PROFILE.eventsPerSecond * PROFILE.windowMinutes * 60
    : m.events * k;
  const growth = m.events > 0 ? eventsFull / m.events : k;
  const usage = addUsage(emptyUsage(), m.usage);
  const indexGets = m.categories.get('staging:slots/*.index')?.get ?? 0;
  const rangesCounted = m.categories.get('staging:slots/*.data')?.get ?? 0;
  let ranges = windowRanges(slice.sections.get(rank)!, k);
  const customerPutsCounted = sum(
    [...m.categories].filter(([c]) => c.startsWith('customer:')).map(([, v]) => v.put),
  );
  const uncompressed = m.uncompressedBytes * growth;
  const compressed = m.customerBytes * growth;
  const parts = eventsFull > 0 ? Math.max(1, Math.ceil(uncompressed / DEFAULT_PART_SIZE_BYTES)) : 0;
  const customerPuts = parts * sinkWriteRequests(compressed / Math.max(1, parts)) + 1;
  usage.s3Get += ranges - rangesCounted - indexGets;
  usage.s3GetBytes = (usage.s3GetBytes - (m.categories.get('staging:slots/*.index')?.bytes ?? 0)) * growth;
  usage.s3Put += customerPuts - customerPutsCounted;
  // One more cursor save (an UpdateItem of ~1 KB) per part beyond the measured ones.
  usage.dynamoWriteUnits += Math.max(0, parts - m.dataParts);
  usage.rounds +=
    ranges -
    rangesCounted -
    indexGets +
    customerPuts -
    customerPutsCounted +
    Math.max(0, parts - m.dataParts);
  const cpu = m.cpuMicros + slope * Math.max(0, eventsFull - m.events);
  // A window longer than an invocation goes on in the next one, which opens its run's GET again.
  const continuations = Math.max(0, Math.ceil(seconds(cpu, usage.rounds) / EXPORTER_INVOCATION_SECONDS) - 1);
  ranges += continuations;
  usage.s3Get += continuations;
  usage.rounds += continuations;
  return {
    usage,
    customerPuts,
    cpu,
    seconds: seconds(cpu, usage.rounds),
    ranges,
    rangesCounted,
    customerBytes: compressed,
    events: eventsFull,
    ratio: m.wholeGzipBytes > 0 ? m.customerBytes / m.wholeGzipBytes : 1,
  } satisfies ExportWindowFull;
}

function exporterDay(slice: SliceResult, k: number, slope: number) {
  const apps = slice.options.apps;
  const zipf = slice.options.scenario === 'zipf' ? new Zipf(apps) : undefined;
  const groups = zipf
    ? strata(zipf).map((s) => ({ apps: s.apps, rank: s.sampleRank }))
    : slice.options.exportRanks.map((rank) => ({ apps: apps / slice.options.exportRanks.length, rank }));
  const tick = emptyUsage();
  let tickSeconds = 0;
  let tickRounds = 0;
  let tickCpu = 0;
  let bytes = 0;
  let events = 0;
  let worstRatio = 0;
  let customerPuts = 0;
  const checks: ScaleRow['exportChecks'] = [];
  let largest: ExportWindowFull | undefined;
  for (const group of groups) {
    const w = exportWindowFull(slice, group.rank, zipf, k, slope);
    addUsage(tick, w.usage, group.apps);
    tickRounds += w.usage.rounds * group.apps;
    tickCpu += w.cpu * group.apps;
    bytes += w.customerBytes * group.apps;
    customerPuts += w.customerPuts * group.apps;
    events += w.events * group.apps;
    worstRatio = Math.max(worstRatio, w.ratio);
    checks.push({
      rank: group.rank,
      rangesModeled: windowRanges(slice.sections.get(group.rank)!, 1),
      rangesCounted: w.rangesCounted,
    });
    if (group.rank === 1) largest = w;
  }
  // Batch jobs: one message and invocation per MAX_BATCH_CONNECTIONS on-time connections; an
  // invocation runs BATCH_LANES groups at once, so their request latencies overlap (CPU does not).
  const messages = Math.ceil(apps / MAX_BATCH_CONNECTIONS);
  tickSeconds = tickCpu / 1e6 + (tickRounds * REQUEST_LATENCY_MS) / 1000 / BATCH_LANES;
  // Slot indexes: each container reads the window's slots once per tick (cached per container).
  const containers = Math.min(messages, Math.max(1, Math.ceil(tickSeconds / EXPORT_DRAIN_SECONDS)));
  const indexGets = containers * SLOTS_PER_WINDOW;
  tick.s3Get += indexGets;
  tick.requests += indexGets;
  const indexSeconds = (indexGets * REQUEST_LATENCY_MS) / 1000;
  const invocations = messages * WINDOWS_PER_DAY;
  return {
    day: {
      usage: addUsage(emptyUsage(), tick, WINDOWS_PER_DAY),
      invocations,
      seconds: (tickSeconds + indexSeconds) * WINDOWS_PER_DAY,
      memoryMb: MEMORY_MB.exporter,
    } satisfies FunctionDay,
    tickCpu,
    containers,
    customerPutsPerDay: customerPuts * WINDOWS_PER_DAY,
    bytesPerEvent: events > 0 ? bytes / events : 0,
    worstRatio,
    checks,
    // The largest app's ranged GETs, and (conservatively) the window's index GETs as its own.
    largestDailyReads: ((largest?.ranges ?? 0) + SLOTS_PER_WINDOW) * WINDOWS_PER_DAY,
    messagesPerTick: messages,
  };
}

function dispatcherDay(slice: SliceResult, messagesPerTick: number): FunctionDay {
  const apps = slice.options.apps;
  const ticks = slice.dispatches;
  const n = Math.max(1, mean(ticks.map((t) => t.connections)));
  const rowBytes = slice.largestItem.get('Connections') ?? 300;
  const stateBytes = slice.largestItem.get('ExportState') ?? 1024;
  const queryBytes = apps * rowBytes;
  const queryPages = Math.max(1, Math.ceil(queryBytes / (1024 * 1024)));
  const queryRead = Math.max(1, Math.ceil(queryBytes / 4096)) * 0.5;
  // States by BatchGetItem (100 keys each, eventually consistent: 0.5 unit per 4 KB item).
  const batchGets = Math.ceil(apps / 100);
  const usage = emptyUsage();
  usage.dynamoReadUnits = queryRead + apps * Math.ceil(stateBytes / 4096) * 0.5;
  usage.dynamoRequests = queryPages + batchGets;
  usage.sqsRequests = Math.ceil(messagesPerTick / 10);
  usage.requests = usage.dynamoRequests + usage.sqsRequests;
  // Pages one after another; a page's BatchGetItems DEFAULT_READ_CONCURRENCY at once; sends as it goes.
  usage.rounds = queryPages + Math.ceil(batchGets / DEFAULT_READ_CONCURRENCY) + usage.sqsRequests;
  const cpu = (mean(ticks.map((t) => t.cpuMicros)) / n) * apps;
  return {
    usage: addUsage(emptyUsage(), usage, WINDOWS_PER_DAY),
    invocations: WINDOWS_PER_DAY,
    seconds: seconds(cpu, usage.rounds) * WINDOWS_PER_DAY,
    memoryMb: MEMORY_MB.dispatcher,
  };
}

export function kinesisCost() {
  const records = PROFILE.eventsPerSecond * DAY_S;
  const recordBytes = PROFILE.eventBytes + 40; // `{"app_id":...,"event":...}` around the event
  const k = PRICES.kinesis;
  const provisioned =
    PROFILE.shards * 24 * k.provisioned.shardHour +
    (records *
      Math.ceil(recordBytes / k.provisioned.putPayloadUnitBytes) *
      k.provisioned.putPayloadUnitsPerMillion) /
      1e6;
  // KPL aggregation: user records packed into ~25 KB Kinesis records; shards by bytes (1 MB/s each).
  const aggregatedShards = Math.ceil(
    (PROFILE.eventsPerSecond * recordBytes) / PROFILE.shardMaxBytesPerSecond,
  );
  const provisionedKpl =
    aggregatedShards * 24 * k.provisioned.shardHour +
    ((records * recordBytes) / k.provisioned.putPayloadUnitBytes) *
      (k.provisioned.putPayloadUnitsPerMillion / 1e6);
  const roundedGb = (records * Math.ceil(recordBytes / 1024) * 1024) / 1e9;
  const rawGb = (records * recordBytes) / 1e9;
  const onDemand =
    24 * k.onDemand.streamHour + roundedGb * (k.onDemand.ingestPerGb + k.onDemand.retrievalPerGb);
  const onDemandKpl =
    24 * k.onDemand.streamHour + rawGb * (k.onDemand.ingestPerGb + k.onDemand.retrievalPerGb);
  return {
    provisionedPerGb: provisioned / GB_PER_DAY,
    provisionedKplPerGb: provisionedKpl / GB_PER_DAY,
    aggregatedShards,
    onDemandPerGb: onDemand / GB_PER_DAY,
    onDemandKplPerGb: onDemandKpl / GB_PER_DAY,
  };
}

/** Firehose Direct PUT with dynamic partitioning by app (one partition per app), 900 s buffers. */
export function firehoseCost(apps: number) {
  const f = PRICES.firehose;
  const zipf = new Zipf(apps);
  const recordBytes = PROFILE.eventBytes + 40;
  const bufferFlushesPerDay = DAY_S / f.bufferSeconds;
  let objects = 0;
  for (let rank = 1; rank <= apps; rank++) {
    const bytesPerBuffer = zipf.share(rank) * PROFILE.eventsPerSecond * recordBytes * f.bufferSeconds;
    objects += bufferFlushesPerDay * Math.max(1, Math.ceil(bytesPerBuffer / f.bufferBytes));
  }
  const records = PROFILE.eventsPerSecond * DAY_S;
  const oneEventPerRecordGb =
    (records * Math.ceil(recordBytes / f.recordRoundingBytes) * f.recordRoundingBytes) / 1e9;
  // Its PUTs into the customer's bucket are billed to the bucket owner, as ours (not counted).
  const common =
    GB_PER_DAY * f.dynamicPartitioningPerGb + (objects / 1000) * f.dynamicPartitioningPer1000Objects;
  return {
    objectsPerDay: objects,
    /** Producers batch events into records of >= 5 KB (no rounding loss). */
    perGb: (GB_PER_DAY * f.ingestPerGb + common) / GB_PER_DAY,
    /** One event per record: each rounded up to 5 KB. */
    oneEventPerRecordPerGb: (oneEventPerRecordGb * f.ingestPerGb + common) / GB_PER_DAY,
    overPartitionQuota: apps > f.activePartitionQuota,
  };
}

function lambdaCost(fn: FunctionDay): number {
  return (
    fn.seconds * (fn.memoryMb / 1024) * PRICES.lambda.gbSecondArm64 +
    (fn.invocations * PRICES.lambda.requestsPerMillion) / 1e6
  );
}

/**
 * `exportCpuPerEvent`: the exporter's CPU per event (microseconds) to extrapolate with; by default
 * fitted over this slice's exports (pass one fitted over several slices when this one's exports
 * are all of one size, e.g. one app or apps of equal size).
 */
export function modelDay(slice: SliceResult, exportCpuPerEvent = cpuPerEvent(slice.exports)): ScaleRow {
  const k = sliceScale(slice.options);
  const stager = stagerDay(slice);
  const compactor = compactorDay(slice, k);
  const exporter = exporterDay(slice, k, exportCpuPerEvent);
  const dispatcher = dispatcherDay(slice, exporter.messagesPerTick);
  const functions = { stager: stager.day, compactor, exporter: exporter.day, dispatcher };
  const all = emptyUsage();
  for (const fn of Object.values(functions)) addUsage(all, fn.usage);
  const jobs = slice.options.apps * WINDOWS_PER_DAY;
  // Per job message: one ReceiveMessage and one DeleteMessage by Lambda's poller.
  const sqs = all.sqsRequests + exporter.messagesPerTick * WINDOWS_PER_DAY * 2 + IDLE_SQS_RECEIVES_PER_DAY;
  const invocations = sum(Object.values(functions).map((f) => f.invocations));
  const storedPerDay =
    ((slice.segmentBytes + slice.slotDataBytes + slice.slotIndexBytes) * k * 24 * 60) / slice.options.minutes;
  const stagingRequests = stager.day.usage.requests + compactor.usage.requests + exporter.day.usage.s3Get;
  // Requests on the customer's bucket are billed to its owner (S3 bills the bucket owner unless
  // Requester Pays): shown apart, not in our cost — as Firehose's deliveries into it.
  const ourPuts = all.s3Put - exporter.customerPutsPerDay;
  const customerPaidPerDay = (exporter.customerPutsPerDay * PRICES.s3.putCopyPostListPer1000) / 1000;
  const cost: Record<string, number> = {
    s3Requests: (ourPuts * PRICES.s3.putCopyPostListPer1000 + all.s3Get * PRICES.s3.getPer1000) / 1000,
    s3Storage:
      ((storedPerDay / 1e9) * DEFAULT_STAGING_RETENTION_DAYS * PRICES.s3.storagePerGbMonth) / MONTH_DAYS,
    accessLogs:
      ((stagingRequests * ACCESS_LOG_RECORD_BYTES) / 1e9) *
      ACCESS_LOG_RETENTION_DAYS *
      (PRICES.s3.storagePerGbMonth / MONTH_DAYS),
    dynamodb:
      (all.dynamoWriteUnits * PRICES.dynamodb.writePerMillion +
        all.dynamoReadUnits * PRICES.dynamodb.readPerMillion) /
      1e6,
    sqs: (sqs * PRICES.sqs.requestsPerMillion) / 1e6,
    lambdaStager: lambdaCost(stager.day),
    lambdaCompactor: lambdaCost(compactor),
    lambdaExporter: lambdaCost(exporter.day),
    lambdaDispatcher: lambdaCost(dispatcher),
    eventBridge: (jobs * PRICES.eventBridge.customEventsPerMillion) / 1e6,
    logs: ((invocations * LOG_BYTES_PER_INVOCATION) / 1e9) * PRICES.cloudWatchLogs.ingestPerGb,
  };
  const dollarsPerDay = sum(Object.values(cost));
  const kinesis = kinesisCost();
  const recordsPerSecond = slice.recordsPerBatch / stager.wall;
  const headroomRecords = recordsPerSecond / PROFILE.shardMaxRecordsPerSecond;
  const headroomBytes = (recordsPerSecond * slice.recordDataBytes) / PROFILE.shardMaxBytesPerSecond;
  return {
    apps: slice.options.apps,
    k,
    recordsPerBatch: slice.recordsPerBatch,
    s3PutsPerBatch: stager.usage.s3Put,
    ledgerItemBytes: slice.largestItem.get('StagingLedger') ?? 0,
    largestItemBytes: Math.max(...slice.largestItem.values()),
    appsPerBatch: mean(slice.batches.map((b) => b.apps)),
    stagerCpuMsPerBatch: stager.cpu / 1000,
    stagerWallSecondsPerBatch: stager.wall,
    headroomRecords,
    headroomBytes,
    headroom: Math.min(headroomRecords, headroomBytes),
    functions,
    requests: {
      s3Put: ourPuts,
      customerPuts: exporter.customerPutsPerDay,
      s3Get: all.s3Get,
      dynamoWrite: all.dynamoWriteUnits,
      dynamoRead: all.dynamoReadUnits,
      sqs,
      lambda: invocations,
      events: jobs,
    },
    cost,
    dollarsPerDay,
    customerPaidPerDay,
    perGb: dollarsPerDay / GB_PER_DAY,
    kinesis,
    perGbWithOnDemand: dollarsPerDay / GB_PER_DAY + kinesis.onDemandPerGb,
    firehose: firehoseCost(slice.options.apps),
    largestAppDailyReads: exporter.largestDailyReads,
    bytesPerEvent: exporter.bytesPerEvent,
    worstRatio: exporter.worstRatio,
    exportChecks: exporter.checks,
    exportContainers: exporter.containers,
    dispatcherSecondsPerTick: dispatcher.seconds / WINDOWS_PER_DAY,
  };
}

export const MODEL_NOTES = {
  settleDelayMinutes: DEFAULT_SETTLE_DELAY_MINUTES,
  windowsPerDay: WINDOWS_PER_DAY,
  slotsPerDay: SLOTS_PER_DAY,
};
