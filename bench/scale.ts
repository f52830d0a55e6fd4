/**
 * `npm run bench:scale`: cost per GB of the staging and export path at platform scale (issue 10),
 * from the REAL stageBatch, compactSlot, dispatchTick and export-job use cases over request-counting
 * fakes of S3, DynamoDB and SQS (bench/scale/fake-aws.ts), extrapolated to a day at full scale
 * (bench/scale/model.ts), beside Kinesis and a Firehose pipeline. Prices: bench/prices.ts.
 *
 *   npm run bench:scale                          # A = 1, 100, 1,000, 5,000, 20,000
 *   npm run bench:scale -- --apps 100,20000 --shards 1 --batch-every 10
 */
import { parseArgs } from 'node:util';
import { SLOT_MS } from '../lambdas/domain/staging-layout.ts';
import { PRICES } from './prices.ts';
import { cpuPerEvent, MEMORY_MB, modelDay, REQUEST_LATENCY_MS, type ScaleRow } from './scale/model.ts';
import {
  appId,
  eventPool,
  eventSourceBatching,
  GB_PER_DAY,
  PROFILE,
  recordData,
  strata,
  Zipf,
} from './scale/profile.ts';
import { type SliceOptions, type SliceResult, simulateSlice, sliceScale } from './scale/simulate.ts';

const { values } = parseArgs({
  options: {
    apps: { type: 'string', default: '1,100,1000,5000,20000' },
    shards: { type: 'string', default: '1' },
    'batch-every': { type: 'string', default: '4' },
    'records-per-batch': { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});

function positiveInteger(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`--${name} must be a positive integer, got "${text}"`);
  return n;
}

const appCounts = values.apps.split(',').map((a) => positiveInteger('apps', a.trim()));
const shards = positiveInteger('shards', values.shards);
const batchEvery = values.quick ? 20 : positiveInteger('batch-every', values['batch-every']);
const recordsPerBatchOption = values['records-per-batch']
  ? positiveInteger('records-per-batch', values['records-per-batch'])
  : undefined;
if (shards > PROFILE.shards) throw new RangeError(`--shards must be at most ${PROFILE.shards}`);

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const money = (n: number) => (n < 0.1 ? n.toFixed(4) : n.toFixed(2));

async function run(options: SliceOptions): Promise<{ slice: SliceResult; cpuSeconds: number }> {
  const before = process.cpuUsage();
  const slice = await simulateSlice(options);
  const cpu = process.cpuUsage(before);
  return { slice, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

const started = process.cpuUsage();
const recordBytes = recordData(appId(1), eventPool(1)[0]!).byteLength;
const modeled = eventSourceBatching(PROFILE.shardMaxRecordsPerSecond, recordBytes);
const batching = recordsPerBatchOption
  ? {
      ...modeled,
      recordsPerBatch: recordsPerBatchOption,
      secondsPerBatch: recordsPerBatchOption / 1000,
      limitedBy: '--records-per-batch',
    }
  : modeled;
const k = sliceScale({ shards, batchEvery });
console.log(
  `profile: ${fmt(PROFILE.eventsPerSecond)} events/s of ${PROFILE.eventBytes} B (records of ${recordBytes} B), ` +
    `${PROFILE.shards} shards at ${fmt(PROFILE.shardMaxRecordsPerSecond)} records/s; ${fmt(GB_PER_DAY, 1)} GB/day received`,
);
console.log(
  `event source: ${fmt(batching.recordsPerBatch)} records per stager batch (${batching.secondsPerBatch.toFixed(2)} s of a shard; ` +
    `limited by the ${batching.limitedBy}: ${batching.invocationBytesPerRecord} B per record in the invocation payload)`,
);
console.log(
  `slice: ${shards} shard(s) of ${PROFILE.shards}, one batch every ${batchEvery} batch intervals, one 15-minute window ` +
    `(${(15 * 60_000) / SLOT_MS} slot(s) of ${SLOT_MS / 60_000} min); slot-level counts x${fmt(k)}; ${REQUEST_LATENCY_MS} ms per request; Lambda arm64, ` +
    `memory stager ${MEMORY_MB.stager} / compactor ${MEMORY_MB.compactor} / exporter ${MEMORY_MB.exporter} / dispatcher ${MEMORY_MB.dispatcher} MB; ` +
    `prices ${PRICES.region} as of ${PRICES.asOf} (bench/prices.ts)`,
);

const slices: SliceResult[] = [];
for (const apps of appCounts) {
  const exportRanks = strata(new Zipf(apps)).map((s) => s.sampleRank);
  const { slice, cpuSeconds } = await run({
    apps,
    scenario: 'zipf',
    shards,
    minutes: 15,
    batchEvery,
    exportRanks,
    ...(recordsPerBatchOption ? { recordsPerBatch: recordsPerBatchOption } : {}),
  });
  slices.push(slice);
  const row = modelDay(slice);
  const mismatches = row.exportChecks.filter((c) => c.rangesModeled !== c.rangesCounted);
  console.log(
    `  A=${fmt(apps)}: simulated in ${cpuSeconds.toFixed(1)} s CPU; ${fmt(row.appsPerBatch)} apps per batch; ` +
      `range model ${mismatches.length === 0 ? 'matches the counted GETs' : `DIFFERS for ranks ${mismatches.map((m) => m.rank).join(', ')}`}`,
  );
}
// Acceptance 3's hard case: every app has exactly one event in every batch.
const perBatch = batching.recordsPerBatch;
const sparse = await run({
  apps: perBatch,
  scenario: 'one-per-batch',
  shards,
  minutes: 15,
  batchEvery,
  exportRanks: [1, Math.ceil(perBatch / 2), perBatch],
  ...(recordsPerBatchOption ? { recordsPerBatch: recordsPerBatchOption } : {}),
});
console.log(
  `  one event per app per batch (A=${fmt(perBatch)}): simulated in ${sparse.cpuSeconds.toFixed(1)} s CPU`,
);
// The exporter's CPU per event, fitted over the exports of every Zipf slice (their sizes spread
// over orders of magnitude; one slice alone may hold one app, or apps of one size).
const sampled = slices.flatMap((s) => s.exports);
const exportCpuPerEvent = cpuPerEvent(sampled);
console.log(
  `exporter CPU per event, fitted over ${sampled.length} sampled exports: ${exportCpuPerEvent.toFixed(2)} µs`,
);
const rows: ScaleRow[] = slices.map((s) => modelDay(s, exportCpuPerEvent));
const sparseRow = modelDay(sparse.slice, exportCpuPerEvent);

const table: [string, (r: ScaleRow) => string][] = [
  ['S3 PUTs per batch', (r) => fmt(r.s3PutsPerBatch, 1)],
  ['ledger item bytes (max)', (r) => fmt(r.ledgerItemBytes)],
  ['largest DynamoDB item bytes', (r) => fmt(r.largestItemBytes)],
  ['stager CPU per batch, ms', (r) => fmt(r.stagerCpuMsPerBatch)],
  ['stager wall per batch, s', (r) => r.stagerWallSecondsPerBatch.toFixed(2)],
  [
    'stager headroom (records, bytes)',
    (r) => `${r.headroomRecords.toFixed(1)}x, ${r.headroomBytes.toFixed(1)}x`,
  ],
  ['S3 PUT/LIST per day (staging)', (r) => fmt(r.requests.s3Put)],
  ['S3 PUTs per day into customer buckets (billed to them)', (r) => fmt(r.requests.customerPuts)],
  ['S3 GET/HEAD per day', (r) => fmt(r.requests.s3Get)],
  ['DynamoDB WRU per day', (r) => fmt(r.requests.dynamoWrite)],
  ['DynamoDB RRU per day', (r) => fmt(r.requests.dynamoRead)],
  ['SQS requests per day', (r) => fmt(r.requests.sqs)],
  ['Lambda invocations per day', (r) => fmt(r.requests.lambda)],
  [
    'Lambda GB-s per day',
    (r) => fmt(Object.values(r.functions).reduce((n, f) => n + (f.seconds * f.memoryMb) / 1024, 0)),
  ],
  ['$/day S3 requests', (r) => money(r.cost['s3Requests']!)],
  [
    '$/day S3 storage (staging, access logs)',
    (r) => `${money(r.cost['s3Storage']!)}, ${money(r.cost['accessLogs']!)}`,
  ],
  ['$/day DynamoDB', (r) => money(r.cost['dynamodb']!)],
  [
    '$/day SQS, EventBridge, logs',
    (r) => `${money(r.cost['sqs']!)}, ${money(r.cost['eventBridge']!)}, ${money(r.cost['logs']!)}`,
  ],
  [
    '$/day Lambda stager/compactor/exporter/dispatcher',
    (r) =>
      [
        r.cost['lambdaStager']!,
        r.cost['lambdaCompactor']!,
        r.cost['lambdaExporter']!,
        r.cost['lambdaDispatcher']!,
      ]
        .map(money)
        .join(' / '),
  ],
  ['$/day total (after Kinesis)', (r) => money(r.dollarsPerDay)],
  ["$/day customers' bucket PUTs (theirs, not in the total)", (r) => money(r.customerPaidPerDay)],
  ['**$/GB after Kinesis**', (r) => `**${r.perGb.toFixed(4)}**`],
  ['$/GB with Kinesis on-demand', (r) => r.perGbWithOnDemand.toFixed(4)],
  ['$/GB with Kinesis provisioned (20 shards)', (r) => (r.perGb + r.kinesis.provisionedPerGb).toFixed(4)],
  [
    'Firehose $/GB (records >= 5 KB; one event per record)',
    (r) => `${r.firehose.perGb.toFixed(4)}; ${r.firehose.oneEventPerRecordPerGb.toFixed(4)}`,
  ],
  [
    'Firehose objects per day',
    (r) => `${fmt(r.firehose.objectsPerDay)}${r.firehose.overPartitionQuota ? ' (over 500 partitions)' : ''}`,
  ],
  ['largest app: window reads per day', (r) => fmt(r.largestAppDailyReads)],
  ['exporter containers per tick (60 s drain)', (r) => fmt(r.exportContainers)],
  [
    'dispatcher duration per tick, s (timeout 300)',
    (r) => `${fmt(r.dispatcherSecondsPerTick)}${r.dispatcherSecondsPerTick > 300 ? ' (over)' : ''}`,
  ],
  ['customer bytes per event', (r) => r.bytesPerEvent.toFixed(1)],
  ['worst customer bytes / gzip of whole window', (r) => `${r.worstRatio.toFixed(3)}x`],
];
console.log('');
console.log(`| A | ${rows.map((r) => fmt(r.apps)).join(' | ')} |`);
console.log(`| --- | ${rows.map(() => '---').join(' | ')} |`);
for (const [label, cell] of table) console.log(`| ${label} | ${rows.map(cell).join(' | ')} |`);

const kin = rows[0]?.kinesis;
if (kin)
  console.log(
    `\nKinesis $/GB: provisioned ${kin.provisionedPerGb.toFixed(4)} (20 shards, 1 PUT payload unit per record), ` +
      `provisioned + KPL aggregation ${kin.provisionedKplPerGb.toFixed(4)} (${kin.aggregatedShards} shards), ` +
      `on-demand ${kin.onDemandPerGb.toFixed(4)} (1 KB rounding per record, in and out), on-demand + KPL ${kin.onDemandKplPerGb.toFixed(4)}`,
  );
console.log(
  `one event per app per batch (A=${fmt(perBatch)}): customer bytes ${sparseRow.worstRatio.toFixed(3)}x the gzip of the whole window ` +
    `(${sparseRow.bytesPerEvent.toFixed(1)} B/event), $/GB after Kinesis ${sparseRow.perGb.toFixed(4)}`,
);
const total = process.cpuUsage(started);
console.log(`bench CPU ${((total.user + total.system) / 1e6).toFixed(1)} s`);

const byApps = (a: number) => rows.find((r) => r.apps === a);
const perGb = [1, 100, 1000, 5000, 20000]
  .map((a) => `${a}:${byApps(a)?.perGb.toFixed(4) ?? 'n/a'}`)
  .join(' ');
const firehose = Math.min(...rows.map((r) => r.firehose.perGb));
const headroom = byApps(20000)?.headroom ?? rows.at(-1)!.headroom;
const reads = Math.max(...rows.map((r) => r.largestAppDailyReads));
console.log(
  `scale: $/GB after Kinesis ${perGb}; Firehose ${firehose.toFixed(4)}; stager headroom at 20000 apps ${headroom.toFixed(1)}x; largest app daily window ${fmt(reads)} reads`,
);
