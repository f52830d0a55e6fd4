/**
 * The export-lag alarm's input: the real dispatcher handler (middy, Powertools Logger and
 * Metrics) run with a scheduler tick event and the environment the stack sets, against the
 * local engines, for a connection whose watermark is days behind. SQS is the only thing not
 * local (mocked): the handler enqueues the connection's job there. Asserted from what the
 * function prints: the EMF document with ExportLagSeconds, and the log line naming the
 * lagging connection.
 */
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { ENV } from '../../lambdas/definitions.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { DIMENSIONS, METRIC_NAMESPACE, METRICS, SERVICE_NAMES } from '../../lambdas/domain/metrics.ts';
import { boundaryAtOrBefore, exportLagMs } from '../../lambdas/domain/windows.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/export-jobs';
const sqs = mockClient(SQSClient);

beforeAll(() => {
  // The handler's runtime reads the environment once, on first use: set it before importing.
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
  vi.stubEnv(ENV.jobQueueUrl, QUEUE_URL);
  vi.stubEnv('POWERTOOLS_DEV', '');
});
afterAll(() => {
  vi.unstubAllEnvs();
  sqs.restore();
});

const context = {
  functionName: 'dispatcher',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:111122223333:function:dispatcher',
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: '/aws/lambda/dispatcher',
  logStreamName: '2026/11/29/[$LATEST]abcdef',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 30_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} as unknown as Context;

function connection(id: string, name: string) {
  return parseConnection({
    connectionId: id,
    appId: 'app-lag',
    appName: 'Lag',
    dbName: 'Lag DB',
    connectionName: name,
    bucketName: 'customer-lag',
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: '2026-01-01T00:00:00.000Z',
  });
}

/** Each line the function printed, parsed (Powertools prints one JSON document per line). */
function printedDocuments(calls: unknown[][]): Record<string, unknown>[] {
  return calls
    .map((call) => String(call[0]))
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('dispatcher: export lag metric', () => {
  it('a tick emits ExportLagSeconds for a connection days behind, logs its id as lagging, and still enqueues its job', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'm0', MD5OfMessageBody: 'x' }], Failed: [] });
    const e = engines();
    const documentClient = createDynamoDocumentClient({
      region: e.region,
      endpoint: e.dynamoEndpoint,
      credentials: e.credentials,
    });
    const connections = new DynamoConnectionRepository(
      documentClient,
      e.tables.connections,
      e.tables.exportState,
    );
    const state = new DynamoExportStateStore(documentClient, e.tables.exportState);
    const behind = connection('conn_lag0000behind', 'behind');
    const onTime = connection('conn_lag000ontime', 'on-time');
    await connections.put(behind);
    await connections.put(onTime);
    // The dispatcher measures with the real clock: its watermark three days before the latest boundary.
    const boundary = boundaryAtOrBefore('FIFTEEN_MINUTES', new Date());
    const watermark = new Date(boundary.getTime() - 3 * 86_400_000);
    await state.initialize(behind.connectionId, watermark);
    await state.initialize(onTime.connectionId, boundary);

    const { handler } = await import('../../lambdas/dispatcher/handler.ts');
    // Powertools prints EMF and INFO logs on stdout, WARN logs on stderr.
    const stdout = vi.spyOn(process.stdout, 'write');
    const stderr = vi.spyOn(process.stderr, 'write');
    const printed: unknown[][] = [];

    const expectedBefore = Math.round(exportLagMs('FIFTEEN_MINUTES', watermark, new Date()) / 1000);
    let result: unknown;
    try {
      result = await handler(
        // As the schedule fires it: a settle delay after the boundary (never a window end later than that).
        { frequency: 'FIFTEEN_MINUTES', scheduledTime: new Date(Date.now() - 5 * 60_000).toISOString() },
        context,
      );
    } finally {
      // mockRestore clears the recorded calls: keep them first.
      printed.push(...stdout.mock.calls, ...stderr.mock.calls);
      stdout.mockRestore();
      stderr.mockRestore();
    }
    const expectedAfter = Math.round(exportLagMs('FIFTEEN_MINUTES', watermark, new Date()) / 1000);
    const documents = printedDocuments(printed);

    const emf = documents.find((d) => METRICS.exportLagSeconds in d);
    expect(emf, 'an EMF document with ExportLagSeconds').toBeDefined();
    // 3 days, unless a 15-minute boundary passed during the call.
    expect([expectedBefore, expectedAfter]).toContain(emf?.[METRICS.exportLagSeconds]);
    expect(expectedBefore).toBe(3 * 86_400);
    expect(emf).toMatchObject({
      [DIMENSIONS.service]: SERVICE_NAMES.dispatcher,
      [DIMENSIONS.frequency]: 'FIFTEEN_MINUTES',
      [METRICS.exportJobsEnqueued]: 1, // the on-time connection has nothing due
    });
    const aws = emf?._aws as
      | { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string; Unit: string }[] }[] }
      | undefined;
    const directive = aws?.CloudWatchMetrics[0];
    expect(directive?.Namespace).toBe(METRIC_NAMESPACE);
    expect(directive?.Metrics).toContainEqual({ Name: METRICS.exportLagSeconds, Unit: 'Seconds' });

    const warning = documents.find((d) => d.message === 'connections behind schedule');
    expect(warning?.level).toBe('WARN');
    expect(warning?.lagging).toEqual([
      { connectionId: behind.connectionId, lagSeconds: emf?.[METRICS.exportLagSeconds] },
    ]);

    const sent = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) => call.args[0].input.Entries ?? []);
    expect(sent.map((entry) => JSON.parse(entry.MessageBody ?? '{}').connectionId)).toEqual([
      behind.connectionId,
    ]);
    expect(result).toMatchObject({ windowEnd: expect.any(String) });
  });
});
