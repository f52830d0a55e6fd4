/**
 * Dispatcher throughput on the local engines (docs/BENCHMARKS.md, "Dispatcher"): one schedule
 * tick over N connections of one frequency — GSI pages from DynamoDB Local, one state read per
 * connection (bounded parallelism), jobs enqueued as pages come.
 *
 *   npm run bench:dispatch                                   # 50,000 connections
 *   npm run bench:dispatch -- --connections 10000 --read-concurrency 1,32 --sqs-latency-ms 20
 *
 * SQS has no local engine: the real SqsJobQueue sends to an SQS client stub that answers each
 * SendMessageBatch after `--sqs-latency-ms` (default 20 ms, a typical in-region round trip) and
 * counts the messages. Everything else is the real code: DynamoConnectionRepository,
 * DynamoExportStateStore, dispatchTick.
 */
import { parseArgs } from 'node:util';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDynamoDocumentClient } from '../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../lambdas/adapters/dynamo-connection-repository.ts';
import { connectionKey, DynamoExportStateStore } from '../lambdas/adapters/dynamo-export-state-store.ts';
import { SqsJobQueue } from '../lambdas/adapters/sqs-job-queue.ts';
import { mapBounded } from '../lambdas/domain/bounded.ts';
import { boundaryAtOrBefore, periodMs } from '../lambdas/domain/windows.ts';
import { systemClock } from '../lambdas/ports/index.ts';
import { dispatchTick } from '../lambdas/usecases/dispatch-tick.ts';
import { startLocalEngines } from '../local/engines.ts';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50000' },
    /** Connections per app (they share group jobs). */
    'per-app': { type: 'string', default: '3' },
    'read-concurrency': { type: 'string', default: '32' },
    'sqs-latency-ms': { type: 'string', default: '20' },
  },
});
const CONNECTIONS = Number(args.connections);
const PER_APP = Number(args['per-app']);
const CONCURRENCIES = String(args['read-concurrency'])
  .split(',')
  .map((c) => Number(c));
const SQS_LATENCY_MS = Number(args['sqs-latency-ms']);
const FREQUENCY = 'DAILY' as const;
const SETTLE_MS = 5 * 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An SQS client stub: each SendMessageBatch answers success after the latency. */
function sqsStub(counts: { calls: number; messages: number }): SQSClient {
  return {
    send: async (command: { input: { Entries?: { Id?: string }[] } }) => {
      await sleep(SQS_LATENCY_MS);
      const entries = command.input.Entries ?? [];
      counts.calls += 1;
      counts.messages += entries.length;
      return {
        Successful: entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: 'x' })),
        Failed: [],
      };
    },
  } as unknown as SQSClient;
}

async function batchWrite(dynamo: DynamoDBDocumentClient, table: string, items: Record<string, unknown>[]) {
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  await mapBounded(chunks, 16, async (chunk) => {
    let request: Record<string, { PutRequest: { Item: Record<string, unknown> } }[]> | undefined = {
      [table]: chunk.map((Item) => ({ PutRequest: { Item } })),
    };
    while (request && Object.keys(request).length > 0) {
      const out = await dynamo.send(new BatchWriteCommand({ RequestItems: request }));
      request = out.UnprocessedItems as typeof request;
    }
  });
}

async function main() {
  const engines = await startLocalEngines({ tableSuffix: '-bench-dispatch' });
  try {
    const dynamo = createDynamoDocumentClient({
      region: engines.region,
      endpoint: engines.dynamoEndpoint,
      credentials: engines.credentials,
    });
    const now = new Date();
    const windowEnd = boundaryAtOrBefore(FREQUENCY, now);
    const previous = new Date(windowEnd.getTime() - periodMs(FREQUENCY));
    const ids = Array.from({ length: CONNECTIONS }, (_, i) => `conn_bench${String(i).padStart(8, '0')}`);
    const seedStart = performance.now();
    await batchWrite(
      dynamo,
      engines.tables.connections,
      ids.map((connectionId, i) => ({
        connectionId,
        appId: `app-bench-${String(Math.floor(i / PER_APP)).padStart(6, '0')}`,
        appName: 'Bench',
        dbName: 'Bench DB',
        connectionName: `bench-${i}`,
        bucketName: 'customer-bench',
        bucketRegion: 'us-east-1',
        events: { mode: 'ALL' },
        frequency: FREQUENCY,
        status: 'ACTIVE',
        createdAt: new Date(previous.getTime() - 86_400_000).toISOString(),
      })),
    );
    // Every connection exported up to the previous boundary: each is due at this tick.
    await batchWrite(
      dynamo,
      engines.tables.exportState,
      ids.map((connectionId) => ({
        pk: connectionKey(connectionId),
        sk: 'STATE',
        connectionId,
        watermark: previous.toISOString(),
        sequence: 1,
      })),
    );
    console.log(
      `seeded ${CONNECTIONS} connections (+ state rows) in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
    );

    for (const readConcurrency of CONCURRENCIES) {
      const counts = { calls: 0, messages: 0 };
      // Wall time spent waiting on each engine (summed over calls in flight at once).
      const waited = { queryMs: 0, stateReadMs: 0 };
      const repository = new DynamoConnectionRepository(
        dynamo,
        engines.tables.connections,
        engines.tables.exportState,
      );
      const connections = Object.create(repository) as DynamoConnectionRepository;
      connections.listRawByFrequencyPage = async (frequency, after) => {
        const t = performance.now();
        try {
          return await repository.listRawByFrequencyPage(frequency, after);
        } finally {
          waited.queryMs += performance.now() - t;
        }
      };
      const store = new DynamoExportStateStore(dynamo, engines.tables.exportState);
      const state = Object.create(store) as DynamoExportStateStore;
      state.getMany = async (ids) => {
        const t = performance.now();
        try {
          return await store.getMany(ids);
        } finally {
          waited.stateReadMs += performance.now() - t;
        }
      };
      const deps = {
        connections,
        state,
        jobs: new SqsJobQueue(sqsStub(counts), 'https://sqs.local/bench'),
        clock: systemClock,
      };
      const start = performance.now();
      let firstEnqueueMs: number | undefined;
      const jobs = deps.jobs;
      const timedJobs = {
        enqueue: async (batch: Parameters<typeof jobs.enqueue>[0]) => {
          firstEnqueueMs ??= performance.now() - start;
          return jobs.enqueue(batch);
        },
      };
      const result = await dispatchTick(
        { frequency: FREQUENCY, scheduledTime: new Date(windowEnd.getTime() + SETTLE_MS) },
        { ...deps, jobs: timedJobs },
        SETTLE_MS,
        { readConcurrency },
      );
      const seconds = (performance.now() - start) / 1000;
      console.log(
        JSON.stringify({
          connections: CONNECTIONS,
          readConcurrency,
          sqsLatencyMs: SQS_LATENCY_MS,
          seconds: Number(seconds.toFixed(2)),
          connectionsPerSecond: Math.round(CONNECTIONS / seconds),
          firstEnqueueSeconds: Number(((firstEnqueueMs ?? 0) / 1000).toFixed(2)),
          pages: result.pages,
          dispatched: result.connections,
          messages: counts.messages,
          sendMessageBatchCalls: counts.calls,
          queryWaitSeconds: Number((waited.queryMs / 1000).toFixed(2)),
          stateReadWaitSecondsSummed: Number((waited.stateReadMs / 1000).toFixed(2)),
        }),
      );
      if (result.connections !== CONNECTIONS)
        throw new Error(`dispatched ${result.connections} of ${CONNECTIONS}`);
    }
  } finally {
    await engines.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
