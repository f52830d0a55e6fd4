/**
 * The real dispatcher and exporter handlers (middy, Powertools, lambdaRuntime() from the
 * environment) with a group job, against the local engines; SQS and EventBridge are the only
 * mocks (no emulator). The dispatcher sends one message for three connections of one app; the
 * exporter runs them together, reads the staged data once (`StagedBytesRead`, logged with the
 * group), acknowledges the message although one member's bucket does not exist, and sends that
 * member back to the queue alone — where it then has the single-job semantics.
 */

import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../lambdas/definitions.ts';
import { METRICS } from '../../lambdas/domain/metrics.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import { systemClock } from '../../lambdas/ports/index.ts';
import { listSettledWindow } from '../../lambdas/usecases/compact-slot.ts';
import { ManualClock } from '../../local/clock.ts';
import { createEventGenerator } from '../../local/events.ts';
import { createHarness } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { connectionFactory } from '../support/fixtures.ts';
import {
  acceptingSqsAndEventBridge,
  captured,
  jsonLines,
  lambdaContext,
  sqsEvent,
} from '../support/lambda-invocation.ts';

const engines = useLocalEngines();
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/s3-event-export-jobs';
const { sqs, eventBridge } = acceptingSqsAndEventBridge();

beforeAll(async () => {
  // Before the handlers are imported: lambdaRuntime() and the loggers read the environment once.
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
  vi.stubEnv(ENV.jobQueueUrl, QUEUE_URL);
  vi.stubEnv('POWERTOOLS_DEV', '');
});

afterAll(() => {
  sqs.restore();
  eventBridge.restore();
  vi.unstubAllEnvs();
});

/** Message bodies sent to the queue since `from` calls. */
function sentBodies(from = 0): string[] {
  return sqs
    .commandCalls(SendMessageBatchCommand)
    .slice(from)
    .flatMap((call) => call.args[0].input.Entries?.map((entry) => entry.MessageBody ?? '') ?? []);
}

describe('exporter handler: group jobs', () => {
  it('runs a group message with one read of the staged data, acks it despite a broken member, and retries that member alone', async () => {
    const e = engines();
    await e.createBucket('customer-handler-group');
    const app = 'app-handler-group';
    // The handlers run on the real clock: the latest settled window [E - 15 min, E) (no window end
    // later than now minus the settle delay is exported), staged into by a harness clock inside it.
    const windowEnd = boundaryAtOrBefore('FIFTEEN_MINUTES', new Date(Date.now() - 5 * 60_000)).toISOString();
    const now = new Date(Date.parse(windowEnd) - 7 * 60_000);
    // The handlers read the deployment's staging bucket: the harness stages into that one.
    const harness = await createHarness(e, {
      clock: new ManualClock(now),
      config: { stagingBucket: e.stagingBucket },
    });
    const make = connectionFactory({
      idPrefix: 'hgroup',
      namePrefix: 'hg',
      appName: 'Handler Group',
      bucketName: 'customer-handler-group',
    });
    const base = { appId: app, createdAt: new Date(Date.parse(windowEnd) - 15 * 60_000).toISOString() };
    const ok1 = make(base);
    const broken = make({ ...base, bucketName: 'customer-handler-gone' });
    const ok2 = make({ ...base, events: { mode: 'SELECTED', names: ['PURCHASE'] } });
    for (const c of [ok1, broken, ok2]) await harness.driver.runtime.connections.put(c);
    const generate = createEventGenerator({ appId: app, seed: 64 });
    for (let i = 0; i < 10; i += 1) {
      await harness.driver.stage(
        Array.from({ length: 20 }, () => generate(now)),
        `shardId-hg-${i % 2}`,
      );
    }

    const { handler: dispatcher } = await import('../../lambdas/dispatcher/handler.ts');
    const { handler: exporter } = await import('../../lambdas/exporter/handler.ts');

    // Dispatcher: one message for the three.
    const scheduledTime = new Date(Date.parse(windowEnd) + 5 * 60_000);
    const dispatched = await captured(() =>
      dispatcher(
        { frequency: 'FIFTEEN_MINUTES', scheduledTime: scheduledTime.toISOString() },
        lambdaContext('dispatcher'),
      ),
    );
    expect(dispatched.result).toMatchObject({ jobs: 3, messages: 1 });
    const bodies = sentBodies();
    const ids = [ok1, broken, ok2].map((c) => c.connectionId);
    expect(bodies.map((b) => JSON.parse(b))).toEqual([{ connectionIds: ids, windowEnd, reason: 'schedule' }]);
    const staged = await listSettledWindow(
      harness.driver.runtime.staging,
      systemClock,
      app,
      new Date(base.createdAt),
      new Date(windowEnd),
    );
    const stagedBytes = staged.reduce((n, r) => n + (r.size ?? 0), 0);
    expect(staged).toHaveLength(1); // ten batches, one staging slot: one ref

    // Exporter: the group message is acknowledged; the broken member is sent back alone.
    const sentBefore = sqs.commandCalls(SendMessageBatchCommand).length;
    const exported = await captured(() => exporter(sqsEvent(bodies), lambdaContext('exporter')));
    expect(exported.result).toEqual({ batchItemFailures: [] });
    const retry = { connectionId: broken.connectionId, windowEnd, reason: 'retry' };
    expect(sentBodies(sentBefore).map((b) => JSON.parse(b))).toEqual([retry]);

    const logs = jsonLines(exported.output);
    for (const c of [ok1, ok2]) {
      expect(logs).toContainEqual(
        expect.objectContaining({
          message: 'export job done',
          connectionId: c.connectionId,
          status: 'committed',
        }),
      );
    }
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'export job failed; it is retried as a job of its own',
        connectionId: broken.connectionId,
        error: expect.objectContaining({ name: 'BucketNotFoundError' }),
      }),
    );
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: 'export group done',
        connectionIds: ids,
        stagedBytesRead: stagedBytes,
        stagedObjectsRead: staged.length,
        retriedAlone: [broken.connectionId],
      }),
    );
    // EMF: the staged bytes read once, as the metric; the failure counted.
    expect(logs).toContainEqual(
      expect.objectContaining({ [METRICS.stagedBytesRead]: stagedBytes, [METRICS.exportFailures]: 1 }),
    );

    // The retry, bucket still missing: a single job's failure goes back to SQS (then the DLQ).
    const failedAgain = await captured(() =>
      exporter(sqsEvent([JSON.stringify(retry)]), lambdaContext('exporter')),
    );
    expect(failedAgain.result).toEqual({ batchItemFailures: [{ itemIdentifier: 'msg-0' }] });
    expect(jsonLines(failedAgain.output)).toContainEqual(
      expect.objectContaining({
        message: 'export job failed; SQS will retry it',
        connectionId: broken.connectionId,
      }),
    );

    // The customer creates the bucket; SQS delivers the retry again.
    await e.createBucket('customer-handler-gone');
    const fixed = await captured(() =>
      exporter(sqsEvent([JSON.stringify(retry)]), lambdaContext('exporter')),
    );
    expect(fixed.result).toEqual({ batchItemFailures: [] });
    expect(jsonLines(fixed.output)).toContainEqual(
      expect.objectContaining({
        message: 'export job done',
        connectionId: broken.connectionId,
        status: 'committed',
        stagedBytesRead: stagedBytes,
      }),
    );
    const state = await harness.driver.runtime.state.get(broken.connectionId);
    expect(state?.watermark.toISOString()).toBe(windowEnd);
    expect(state?.sequence).toBe(1);
  });
});
