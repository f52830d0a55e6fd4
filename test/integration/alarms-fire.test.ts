/**
 * The alarms fire: each is evaluated, with the metric, statistic, threshold and evaluation periods
 * of the synthesized template, on what the REAL handlers print (Powertools EMF) while they run
 * against the local engines — a staging failure, a quarantined record, a refused connection, a
 * stream with records and no stager invocation. Each also stays quiet on a healthy run, so the
 * datapoints, not the thresholds, decide.
 */
import type { KinesisStreamEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { DynamoStagingLedger } from '../../lambdas/adapters/dynamo-staging-ledger.ts';
import { ENV } from '../../lambdas/definitions.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { SLOT_MS, segmentKey } from '../../lambdas/domain/staging-layout.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import { SILENT_STAGER_EXPRESSION } from '../../lib/monitoring.ts';
import { synthesize } from '../cdk/synth.ts';
import { evaluateExpression, fires, firesOn, type SynthesizedAlarm } from '../support/alarm-evaluation.ts';
import { useLocalEngines } from '../support/engines.ts';
import {
  acceptingSqsAndEventBridge,
  captured,
  jsonLines,
  lambdaContext,
  sqsEvent,
} from '../support/lambda-invocation.ts';

const engines = useLocalEngines();
const { sqs, eventBridge } = acceptingSqsAndEventBridge();
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/s3-event-export-jobs';
const APP_ID = 'app-alarms';

let alarms: Record<string, SynthesizedAlarm>;

beforeAll(() => {
  const { template } = synthesize();
  alarms = Object.fromEntries(
    Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => [
      (a.Properties.AlarmName as string).replace(/^S3EventExport-/, ''),
      a.Properties as SynthesizedAlarm,
    ]),
  );
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
  vi.stubEnv(ENV.jobQueueUrl, QUEUE_URL);
  vi.stubEnv('POWERTOOLS_DEV', '');
});

afterAll(() => {
  sqs.restore();
  eventBridge.restore();
  vi.unstubAllEnvs();
});

let shards = 0;
/** One Kinesis batch of one new shard (its own checkpoint), arriving now. */
function kinesisBatch(payloads: string[]): KinesisStreamEvent {
  shards += 1;
  const shard = `shardId-${String(shards).padStart(12, '0')}`;
  const base = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;
  return {
    Records: payloads.map((data, i) => {
      const sequenceNumber = (base + BigInt(i + 1)).toString();
      return {
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: `user-${i}`,
          sequenceNumber,
          data: Buffer.from(data).toString('base64'),
          approximateArrivalTimestamp: Date.now() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shard}:${sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::111122223333:role/stager',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:kinesis:us-east-1:111122223333:stream/s3-event-export-ingest',
      };
    }),
  };
}

function event(n: number): string {
  return JSON.stringify({
    app_id: APP_ID,
    event: {
      uid: `u${n}`,
      event_type: 'USER_ACTION_EVENT',
      event_code: 'APP_OPEN',
      event_name: 'App Open',
      event_source: 'MOENGAGE',
      event_uuid: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      event_time: Math.floor(Date.now() / 1000),
    },
  });
}

/** Runs a handler as Lambda does and returns the JSON documents it printed (logs and EMF). */
async function run<T>(invoke: () => Promise<T>): Promise<{ result: T; printed: Record<string, unknown>[] }> {
  const { result, output } = await captured(invoke);
  return { result, printed: jsonLines(output) };
}

async function stagerHandler() {
  return (await import('../../lambdas/stager/handler.ts')).handler;
}

describe('alarms fire on what the real handlers emit', () => {
  it('RecordsQuarantined: a batch with one malformed record fires it; a clean batch does not', async () => {
    const stager = await stagerHandler();
    const alarm = alarms.RecordsQuarantined as SynthesizedAlarm;
    const clean = await run(() => stager(kinesisBatch([event(1), event(2)]), lambdaContext('stager')));
    expect(clean.result).toEqual({ batchItemFailures: [] });
    expect(firesOn(alarm, [clean.printed])).toBe(false);

    const malformed = await run(() =>
      stager(kinesisBatch([event(3), '{"app_id": "app-alarms", "event": {']), lambdaContext('stager')),
    );
    expect(malformed.result).toEqual({ batchItemFailures: [] });
    expect(firesOn(alarm, [malformed.printed])).toBe(true);
  });

  it('SilentStager: records in with no stager invocation fires it; the same records staged do not', async () => {
    const alarm = alarms.SilentStager as SynthesizedAlarm;
    const expression = alarm.Metrics?.find((m) => m.Expression)?.Expression;
    expect(expression).toBe(SILENT_STAGER_EXPRESSION);
    const ids = (alarm.Metrics ?? []).filter((m) => m.MetricStat).map((m) => m.MetricStat?.Metric.MetricName);
    expect(ids.sort()).toEqual(['IncomingRecords', 'Invocations']);

    // Each 5-minute period, records come in. Healthy: the stager is invoked on them (really).
    const stager = await stagerHandler();
    const periods = alarm.EvaluationPeriods;
    const healthy: number[] = [];
    for (let p = 0; p < periods; p += 1) {
      let invocations = 0;
      const staged = await run(() => {
        invocations += 1;
        return stager(kinesisBatch([event(100 + p)]), lambdaContext('stager'));
      });
      expect(staged.result).toEqual({ batchItemFailures: [] });
      healthy.push(evaluateExpression(expression as string, { incoming: 1, invocations }));
    }
    expect(fires(alarm, healthy)).toBe(false);
    // Silent: the same records arrive, the stager is never invoked (no Invocations datapoint at all).
    const silent = Array.from({ length: periods }, () =>
      evaluateExpression(expression as string, { incoming: 1, invocations: undefined }),
    );
    expect(fires(alarm, silent)).toBe(true);
    // An idle stream (no datapoints either) is not a silent stager.
    const idle = Array.from({ length: periods }, () =>
      evaluateExpression(expression as string, { incoming: undefined, invocations: undefined }),
    );
    expect(fires(alarm, idle)).toBe(false);
    expect(periods * (alarm.Metrics?.find((m) => m.MetricStat)?.MetricStat?.Period ?? 0)).toBe(15 * 60);
  });

  it('ConnectionsRefused: a connection whose KMS key is not allowlisted fires it', async () => {
    const e = engines();
    const documentClient = createDynamoDocumentClient({
      region: e.region,
      endpoint: e.dynamoEndpoint,
      credentials: e.credentials,
    });
    const connectionId = 'conn_alarm0refused';
    await new DynamoConnectionRepository(documentClient, e.tables.connections, e.tables.exportState).put(
      parseConnection({
        connectionId,
        appId: APP_ID,
        appName: 'Alarms',
        dbName: 'Alarms DB',
        connectionName: 'refused',
        bucketName: 'customer-alarms',
        bucketRegion: 'us-east-1',
        events: { mode: 'ALL' },
        frequency: 'FIFTEEN_MINUTES',
        kmsKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        createdAt: new Date(Date.now() - 3_600_000).toISOString(),
      }),
    );
    const exporter = (await import('../../lambdas/exporter/handler.ts')).handler;
    // A settled window end (the settle delay has passed), whatever the time of day the test runs at.
    const windowEnd = boundaryAtOrBefore('FIFTEEN_MINUTES', new Date(Date.now() - 20 * 60_000)).toISOString();
    const body = JSON.stringify({ connectionId, windowEnd, reason: 'schedule' });
    const refused = await run(() => exporter(sqsEvent([body]), lambdaContext('exporter')));
    expect(refused.result).toEqual({ batchItemFailures: [] });
    const alarm = alarms.ConnectionsRefused as SynthesizedAlarm;
    expect(firesOn(alarm, [refused.printed])).toBe(true);
    expect(firesOn(alarm, [[]])).toBe(false);
  });

  it('StagingFailures: batches failing in two periods in a row fire it (Errors stays 0: they are batch item failures)', async () => {
    // A stager whose staging bucket is gone: every batch fails and is reported, not thrown.
    vi.resetModules();
    vi.stubEnv(ENV.stagingBucket, 'no-such-staging-bucket');
    const stager = await stagerHandler();
    const alarm = alarms.StagingFailures as SynthesizedAlarm;
    const periods: Record<string, unknown>[][] = [];
    for (let p = 0; p < alarm.EvaluationPeriods; p += 1) {
      const batch = kinesisBatch([event(200 + p)]);
      const failed = await run(() => stager(batch, lambdaContext('stager')));
      expect(failed.result).toEqual({
        batchItemFailures: [{ itemIdentifier: batch.Records[0]?.kinesis.sequenceNumber }],
      });
      periods.push(failed.printed);
    }
    expect(alarm.EvaluationPeriods).toBe(2);
    expect(firesOn(alarm, periods)).toBe(true);
    // One failing period followed by a healthy one (the retry staged it) does not.
    vi.resetModules();
    vi.stubEnv(ENV.stagingBucket, engines().env[ENV.stagingBucket] as string);
    const healthy = await stagerHandler();
    const recovered = await run(() => healthy(kinesisBatch([event(300)]), lambdaContext('stager')));
    expect(firesOn(alarm, [periods[0] as Record<string, unknown>[], recovered.printed])).toBe(false);
  });

  it("StagingFailures: a batch waiting for its unit's slot to be final is retried, and is not a failure", async () => {
    // A unit fixed 20 s before a slot closed, its segment missing (the PUT of an attempt that timed
    // out may still land): the retry 30 s after the close waits until the slot may be compacted.
    const slotEnd = Math.floor(Date.now() / SLOT_MS) * SLOT_MS;
    const batch = kinesisBatch([event(400), event(401)]);
    const shardId = batch.Records[0]!.eventID.split(':')[0]!;
    const [first, last] = [
      batch.Records[0]!.kinesis.sequenceNumber,
      batch.Records[1]!.kinesis.sequenceNumber,
    ];
    const stageTime = new Date(slotEnd - 20_000);
    const e = engines();
    const ledger = new DynamoStagingLedger(
      createDynamoDocumentClient({
        region: e.region,
        endpoint: e.dynamoEndpoint,
        credentials: e.credentials,
      }),
      e.tables.stagingLedger,
    );
    const pending = { firstSequence: first, lastSequence: last, stageTimeMs: stageTime.getTime() };
    expect(
      await ledger.putCheckpoint(
        { shardId, pending: { ...pending, key: segmentKey(stageTime, shardId, first, last) } },
        0,
      ),
    ).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'], now: slotEnd + 30_000 });
    try {
      vi.resetModules();
      const stager = await stagerHandler();
      const waiting = await run(() => stager(batch, lambdaContext('stager')));
      expect(waiting.result).toEqual({ batchItemFailures: [{ itemIdentifier: first }] });
      expect(
        waiting.printed.some((p) => p.level === 'WARN' && String(p.reason).includes('slot closed')),
      ).toBe(true);
      const alarm = alarms.StagingFailures as SynthesizedAlarm;
      expect(firesOn(alarm, [waiting.printed, waiting.printed])).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('DataAtRisk: a paused connection 13 days behind fires it (the lag alarm ignores paused connections)', async () => {
    const e = engines();
    const documentClient = createDynamoDocumentClient({
      region: e.region,
      endpoint: e.dynamoEndpoint,
      credentials: e.credentials,
    });
    const connectionId = 'conn_alarm00paused';
    await new DynamoConnectionRepository(documentClient, e.tables.connections, e.tables.exportState).put(
      parseConnection({
        connectionId,
        appId: APP_ID,
        appName: 'Alarms',
        dbName: 'Alarms DB',
        connectionName: 'paused',
        bucketName: 'customer-alarms',
        bucketRegion: 'us-east-1',
        events: { mode: 'ALL' },
        frequency: 'DAILY',
        status: 'PAUSED',
        createdAt: new Date(Date.now() - 30 * 86_400_000).toISOString(),
      }),
    );
    await new DynamoExportStateStore(documentClient, e.tables.exportState).initialize(
      connectionId,
      new Date(Date.now() - 13 * 86_400_000),
    );
    const dispatcher = (await import('../../lambdas/dispatcher/handler.ts')).handler;
    const ticked = await run(() =>
      dispatcher(
        { frequency: 'DAILY', scheduledTime: new Date().toISOString() },
        lambdaContext('dispatcher'),
      ),
    );
    expect(ticked.result).toMatchObject({ jobs: 0 });
    expect(firesOn(alarms['DataAtRisk-DAILY'] as SynthesizedAlarm, [ticked.printed])).toBe(true);
    expect(firesOn(alarms['ExportLag-DAILY'] as SynthesizedAlarm, [ticked.printed])).toBe(false);
    expect(ticked.printed).toContainEqual(
      expect.objectContaining({
        message: 'unexported staged data close to or past its expiry',
        atRisk: [{ connectionId, status: 'PAUSED', unexportedAgeSeconds: expect.any(Number) }],
      }),
    );
  });

  it('streamRetentionHours above what the event source keeps (168 h) is refused at synth', () => {
    expect(() => synthesize({ streamRetentionHours: '169' })).toThrow(
      /streamRetentionHours must be at most 168/,
    );
    const { template } = synthesize({ streamRetentionHours: '168' });
    template.hasResourceProperties('AWS::Kinesis::Stream', { RetentionPeriodHours: 168 });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      MaximumRecordAgeInSeconds: 168 * 3600,
    });
  });
});
