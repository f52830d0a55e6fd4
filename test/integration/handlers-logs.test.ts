/**
 * What the three Lambda handlers write to stdout/stderr (Powertools Logger and Metrics) while
 * they stage, dispatch and export real events for a PGP connection: JSON lines with ids and
 * counts, and none of the customer's secrets or data (docs/product.md#security: secrets and
 * customer data never appear in logs).
 *
 * The handlers run as Lambda runs them (middy, real event shapes, lambdaRuntime() from the
 * environment) against the local engines. There is no SQS or EventBridge emulator, so those
 * two clients are aws-sdk-client-mock stubs: the dispatcher's SendMessageBatch is captured and
 * its message bodies become the exporter's SQSEvent, exactly as SQS would deliver them;
 * PutEvents answers success, and its details are checked like the logs.
 */

import { gunzipSync } from 'node:zlib';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDynamoDocumentClient, createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { ENV } from '../../lambdas/definitions.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, isDataKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { createGpgHome, type GpgHome, type GpgKey } from '../support/gpg.ts';
import {
  acceptingSqsAndEventBridge,
  captured,
  jsonLines,
  lambdaContext,
  sqsEvent,
} from '../support/lambda-invocation.ts';

const engines = useLocalEngines();

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/s3-event-export-jobs';
const CONNECTION_ID = 'conn_logs00000pgp';
const LEAKED_KEY_CONNECTION_ID = 'conn_logs0privkey';
const APP_ID = 'app-logs';
const EVENTS = 25;
const SHARD = 'shardId-000000000007';

const { sqs, eventBridge } = acceptingSqsAndEventBridge();

let home: GpgHome;
let key: GpgKey;
let privateKey: string;

/** Every secret and every piece of customer data that must not reach a log line. */
const forbidden: { what: string; value: string }[] = [];

function userEvent(n: number, receivedAt: Date) {
  const event = {
    uid: `uid-secret-${n}-q8z`,
    event_type: 'CAMPAIGN_EVENT',
    event_code: 'MOE_EMAIL_SENT',
    event_name: 'Email Sent',
    user_attributes: {
      moengage_user_id: `moe-user-${n}-x7k`,
      email: `customer.${n}@private-mail.test`,
      city: `Hidden City ${n}`,
      phone: `+91-98765-${String(43210 + n)}`,
    },
    event_source: 'MOENGAGE',
    event_attributes: {
      email_id: `recipient${n}@customer-domain.test`,
      campaign_name: `Winter sale secret campaign ${n}`,
    },
    event_uuid: `7c1e${String(n).padStart(4, '0')}-8d5e-4cfd-ac49-5919bffb401d`,
    event_time: Math.floor(receivedAt.getTime() / 1000) - n * 60,
    device_attributes: { moengage_device_id: `device-${n}-m3p` },
  };
  for (const value of [
    event.uid,
    event.event_uuid,
    event.event_attributes.email_id,
    event.event_attributes.campaign_name,
    event.device_attributes.moengage_device_id,
    ...Object.values(event.user_attributes),
  ]) {
    forbidden.push({ what: `event ${n} value`, value });
  }
  return { app_id: APP_ID, event };
}

function kinesisEvent(payloads: Buffer[], arrival: Date): KinesisStreamEvent {
  const base = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;
  return {
    Records: payloads.map((data, i) => {
      const sequenceNumber = (base + BigInt(i + 1)).toString();
      return {
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: `user-${i}`,
          sequenceNumber,
          data: data.toString('base64'),
          approximateArrivalTimestamp: arrival.getTime() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${SHARD}:${sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::111122223333:role/stager',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:kinesis:us-east-1:111122223333:stream/s3-event-export-ingest',
      };
    }),
  };
}

function expectNoForbidden(text: string, where: string) {
  for (const { what, value } of forbidden) {
    expect(text.includes(value), `${where} contains ${what}`).toBe(false);
  }
  expect(text, `${where} contains an e-mail address`).not.toMatch(/[\w.+-]+@[\w-]+\.[a-z]{2,}/i);
}

beforeAll(async () => {
  const e = engines();
  // Before the handlers are imported: lambdaRuntime() and the loggers read the environment once.
  for (const [name, value] of Object.entries(e.env)) vi.stubEnv(name, value);
  vi.stubEnv(ENV.jobQueueUrl, QUEUE_URL);
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'DEBUG');
  await e.createBucket('customer-logs');

  home = await createGpgHome();
  key = await home.createKey('curve25519');
  privateKey = await home.exportSecretKey(key.fingerprint);
  forbidden.push({ what: 'the armored public key', value: key.armoredPublicKey.trim() });
  forbidden.push({ what: 'the armored private key', value: privateKey.trim() });
  for (const armored of [key.armoredPublicKey, privateKey]) {
    // Every base64 line of the armor body (long enough not to match by chance).
    for (const line of armored.split('\n')) {
      if (/^[A-Za-z0-9+/=]{24,}$/.test(line.trim()))
        forbidden.push({ what: 'a line of key material', value: line.trim() });
    }
  }
});

afterAll(async () => {
  sqs.restore();
  eventBridge.restore();
  vi.unstubAllEnvs();
  await home?.dispose();
});

describe('Lambda handler logs', () => {
  it('are JSON lines with ids and counts, and hold no key material, e-mail address, event uuid or attribute value', async () => {
    const e = engines();
    const documentClient = createDynamoDocumentClient({
      region: e.region,
      endpoint: e.dynamoEndpoint,
      credentials: e.credentials,
    });
    // The handlers run on the real clock: the export covers the latest settled window (no window
    // end later than now minus the settle delay is exported), and its events are stamped inside it.
    const windowEnd = boundaryAtOrBefore('FIFTEEN_MINUTES', new Date(Date.now() - 5 * 60_000));
    const now = new Date(windowEnd.getTime() - 7 * 60_000);
    await new DynamoConnectionRepository(documentClient, e.tables.connections, e.tables.exportState).put(
      parseConnection({
        connectionId: CONNECTION_ID,
        appId: APP_ID,
        appName: 'App Name',
        dbName: 'MoEngage App Name',
        connectionName: 'campaigns',
        bucketName: 'customer-logs',
        bucketRegion: 'us-east-1',
        events: { mode: 'ALL' },
        userAttributes: 'ALL',
        frequency: 'FIFTEEN_MINUTES',
        pgpPublicKey: key.armoredPublicKey,
        createdAt: new Date(now.getTime() - 3_600_000).toISOString(),
      }),
    );
    // A careless customer pasted their private key: the row is invalid, and stays out of the logs.
    await documentClient.send(
      new PutCommand({
        TableName: e.tables.connections,
        Item: {
          connectionId: LEAKED_KEY_CONNECTION_ID,
          appId: APP_ID,
          appName: 'App Name',
          dbName: 'MoEngage App Name',
          connectionName: 'leaky',
          bucketName: 'customer-logs',
          bucketRegion: 'us-east-1',
          events: { mode: 'ALL' },
          frequency: 'FIFTEEN_MINUTES',
          pgpPublicKey: privateKey,
          status: 'ACTIVE',
          createdAt: new Date(now.getTime() - 3_600_000).toISOString(),
        },
      }),
    );

    const { handler: stager } = await import('../../lambdas/stager/handler.ts');
    const { handler: dispatcher } = await import('../../lambdas/dispatcher/handler.ts');
    const { handler: exporter } = await import('../../lambdas/exporter/handler.ts');

    // 1. Stager: one Kinesis batch of real events and one malformed record holding an address.
    const events = Array.from({ length: EVENTS }, (_, i) => userEvent(i + 1, now));
    const malformed = '{"app_id": "app-logs", "event": {"email_id": "broken.record@customer-domain.test"';
    forbidden.push({ what: 'the malformed record', value: 'broken.record@customer-domain.test' });
    const staged = await captured(() =>
      stager(
        kinesisEvent([...events.map((x) => Buffer.from(JSON.stringify(x))), Buffer.from(malformed)], now),
        lambdaContext('stager'),
      ),
    );
    expect(staged.result).toEqual({ batchItemFailures: [] });

    // The stager stamped them with the real clock (a window not settled yet): the same events are
    // staged again with a stage time inside the settled window, as the stager would have then.
    const harness = await createHarness(e, {
      clock: new ManualClock(now),
      config: { stagingBucket: e.stagingBucket },
    });
    await harness.driver.stage(events);

    // 2. Dispatcher: the scheduler tick of that settled window.
    const scheduledTime = new Date(windowEnd.getTime() + 5 * 60_000).toISOString();
    const dispatched = await captured(() =>
      dispatcher({ frequency: 'FIFTEEN_MINUTES', scheduledTime }, lambdaContext('dispatcher')),
    );
    expect(dispatched.result).toMatchObject({ jobs: 1 });
    const bodies = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) => call.args[0].input.Entries?.map((entry) => entry.MessageBody ?? '') ?? []);
    expect(bodies.map((b) => JSON.parse(b).connectionId)).toEqual([CONNECTION_ID]);

    // 3. Exporter: the SQS messages the dispatcher sent.
    const exported = await captured(() => exporter(sqsEvent(bodies), lambdaContext('exporter')));
    expect(exported.result).toEqual({ batchItemFailures: [] });

    // The export is real: one encrypted file in the customer's bucket, decrypting to every event.
    const s3 = createS3Client({ region: e.region, endpoint: e.s3Endpoint, credentials: e.credentials });
    const data = (await readBucket(s3, 'customer-logs', 'campaigns/')).filter((f) => isDataKey(f.key));
    expect(data.map((f) => f.key)).toEqual([expect.stringMatching(/\.json\.gz\.gpg$/)]);
    const lines = gunzipSync(await home.decrypt(data[0]!.body))
      .toString('utf8')
      .split('\n')
      .filter(Boolean);
    expect(lines).toHaveLength(EVENTS);

    // Logs: JSON lines, with what an operator needs.
    const stagerLogs = jsonLines(staged.output);
    const dispatcherLogs = jsonLines(dispatched.output);
    const exporterLogs = jsonLines(exported.output);
    expect(stagerLogs).toContainEqual(
      expect.objectContaining({
        level: 'INFO',
        message: 'batch staged',
        service: 'stager',
        shardId: SHARD,
        stagedEvents: EVENTS,
        quarantinedRecords: 1,
      }),
    );
    expect(dispatcherLogs).toContainEqual(
      expect.objectContaining({ message: 'tick dispatched', frequency: 'FIFTEEN_MINUTES', jobs: 1 }),
    );
    expect(dispatcherLogs).toContainEqual(
      expect.objectContaining({
        message: 'invalid connection rows skipped',
        connectionIds: [LEAKED_KEY_CONNECTION_ID],
      }),
    );
    expect(exporterLogs).toContainEqual(
      expect.objectContaining({
        message: 'export job done',
        service: 'exporter',
        connectionId: CONNECTION_ID,
        status: 'committed',
        function_request_id: 'req-exporter-0001',
      }),
    );
    // EMF metrics are JSON lines too, with the counts.
    expect(exporterLogs).toContainEqual(
      expect.objectContaining({ EventsExported: EVENTS, FilesExported: 1 }),
    );
    expect(stagerLogs).toContainEqual(
      expect.objectContaining({ EventsStaged: EVENTS, RecordsQuarantined: 1 }),
    );

    // ... and nothing of the customer's.
    const everything = [staged.output, dispatched.output, exported.output].join('\n');
    expectNoForbidden(everything, 'the handler logs');
    // The export notification (EventBridge) carries ids and counts only, too.
    const notifications = eventBridge
      .commandCalls(PutEventsCommand)
      .flatMap((call) => call.args[0].input.Entries ?? []);
    expect(notifications.map((n) => n.DetailType)).toContain('ExportSucceeded');
    expect(JSON.parse(notifications[0]!.Detail ?? '{}')).toMatchObject({
      connectionId: CONNECTION_ID,
      records: EVENTS,
    });
    expectNoForbidden(JSON.stringify(notifications), 'the EventBridge notifications');
  });
});
