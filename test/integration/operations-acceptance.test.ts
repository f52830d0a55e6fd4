/**
 * Operations acceptance on the local engines: usage counters stay exact under retried and
 * re-delivered exports, a rerun reproduces a past window in place without touching the state,
 * and export outcomes reach EventBridge as ExportFailed / ExportSucceeded / ConnectionRecovered.
 * Results are read back from the customer bucket (manifests, data files) and the tables.
 */
import { gunzipSync } from 'node:zlib';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBridgeNotifier } from '../../lambdas/adapters/eventbridge-notifier.ts';
import type { WindowManifest } from '../../lambdas/domain/manifest.ts';
import type { ExportSink, ExportStateStore } from '../../lambdas/ports/index.ts';
import { rerunWindow } from '../../lambdas/usecases/rerun-window.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, isDataKey, isManifestKey, listKeys, readObject } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { connectionFactory } from '../support/fixtures.ts';

const engines = useLocalEngines();
const BUCKET = 'customer-operations';

/** A fresh app, connection and bucket prefix per test: the engines are shared by the file. */
const freshConnection = connectionFactory({
  idPrefix: 'operations',
  namePrefix: 'ops',
  appName: 'Operations',
  bucketName: BUCKET,
});

function events(appId: string, prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    app_id: appId,
    event: {
      event_uuid: `${prefix}-${i}`,
      event_name: 'VIEW_RADAR',
      event_time: 1_790_000_000 + i,
      event_attributes: { note: `${prefix} event ${i} with some text to make the line longer` },
    },
  }));
}

/** What is in the bucket under a connection's prefix: manifests by sequence, and every data file's record lines. */
async function bucketState(s3: Parameters<typeof listKeys>[0], prefix: string) {
  const keys = await listKeys(s3, BUCKET, prefix);
  const manifests: WindowManifest[] = [];
  for (const key of keys.filter(isManifestKey))
    manifests.push(JSON.parse((await readObject(s3, BUCKET, key)).toString('utf8')) as WindowManifest);
  const lines = new Map<string, string[]>();
  for (const key of keys.filter(isDataKey)) {
    const text = gunzipSync(await readObject(s3, BUCKET, key)).toString('utf8');
    lines.set(key, text.split('\n').filter(Boolean));
  }
  return { keys, manifests: manifests.sort((a, b) => a.sequence - b.sequence), lines };
}

function totalsOf(manifests: WindowManifest[]) {
  return {
    events: manifests.reduce((n, m) => n + m.totalRecords, 0),
    files: manifests.reduce((n, m) => n + m.files.length, 0),
    bytes: manifests.reduce((n, m) => n + m.totalBytes, 0),
  };
}

describe('usage counters under retries', () => {
  it('after an export that failed between upload and commit, a retried one, and re-deliveries after commit, the month counts each committed window once', async () => {
    const e = engines();
    await e.createBucket(BUCKET);
    const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
    const connection = freshConnection();
    const faults = { commitThrowsBefore: false, commitThrowsAfter: false, manifestPutThrows: false };
    const harness = await createHarness(e, {
      clock,
      sink: (real): ExportSink => ({
        async putObject(target, key, body, contentType) {
          if (faults.manifestPutThrows && key.endsWith('.manifest.json')) {
            faults.manifestPutThrows = false;
            body.resume();
            throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
          }
          return real.putObject(target, key, body, contentType);
        },
      }),
    });
    const { driver, s3 } = harness;
    const real = driver.runtime.state;
    // A state store whose commit fails once: before the transaction (crash after upload, before
    // commit), or after it (the commit happened, the invocation died before the SQS ack).
    const flaky = Object.create(real) as ExportStateStore;
    flaky.commitWindow = async (id, commit) => {
      if (faults.commitThrowsBefore) {
        faults.commitThrowsBefore = false;
        throw new Error('invocation timed out before the commit');
      }
      const committed = await real.commitWindow(id, commit);
      if (faults.commitThrowsAfter) {
        faults.commitThrowsAfter = false;
        throw new Error('invocation timed out after the commit');
      }
      return committed;
    };
    const flakyDriver = (
      await createHarness(e, {
        clock,
        sink: () => driver.runtime.sink,
        exportOverrides: { state: flaky },
      })
    ).driver;
    await driver.runtime.connections.put(connection);
    await driver.runtime.state.initialize(connection.connectionId, new Date(connection.createdAt));

    // Window 1: upload done, commit never happened; SQS redelivers; then a duplicate delivery.
    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage(events(connection.appId, 'w1', 7));
    clock.set(new Date('2026-11-02T10:20:00Z'));
    const job1 = { connectionId: connection.connectionId, windowEnd: '2026-11-02T10:15:00.000Z' };
    faults.commitThrowsBefore = true;
    await expect(flakyDriver.exportJob(job1)).rejects.toThrow('before the commit');
    expect((await flakyDriver.exportJob(job1)).status).toBe('committed');
    expect((await flakyDriver.exportJob(job1)).status).toBe('up-to-date');

    // Window 2: data uploaded, the manifest write fails; the retry commits.
    clock.set(new Date('2026-11-02T10:25:00Z'));
    await driver.stage(events(connection.appId, 'w2', 5));
    clock.set(new Date('2026-11-02T10:35:00Z'));
    const job2 = { connectionId: connection.connectionId, windowEnd: '2026-11-02T10:30:00.000Z' };
    faults.manifestPutThrows = true;
    await expect(flakyDriver.exportJob(job2)).rejects.toThrow('socket hang up');
    expect((await flakyDriver.exportJob(job2)).status).toBe('committed');

    // Window 3: committed, but the invocation died before the ack; SQS redelivers it twice.
    clock.set(new Date('2026-11-02T10:40:00Z'));
    await driver.stage(events(connection.appId, 'w3', 3));
    clock.set(new Date('2026-11-02T10:50:00Z'));
    const job3 = { connectionId: connection.connectionId, windowEnd: '2026-11-02T10:45:00.000Z' };
    faults.commitThrowsAfter = true;
    await expect(flakyDriver.exportJob(job3)).rejects.toThrow('after the commit');
    expect((await flakyDriver.exportJob(job3)).status).toBe('up-to-date');
    expect((await driver.exportJob(job3)).status).toBe('up-to-date');

    const { manifests, lines } = await bucketState(s3, `${connection.connectionName}/`);
    expect(manifests.map((m) => [m.sequence, m.totalRecords])).toEqual([
      [1, 7],
      [2, 5],
      [3, 3],
    ]);
    expect([...lines.values()].flat()).toHaveLength(15);
    const usage = await real.getUsage(connection.connectionId, '2026-11');
    expect(usage).toEqual({
      connectionId: connection.connectionId,
      month: '2026-11',
      ...totalsOf(manifests),
    });
    expect(usage.events).toBe(15);
    expect(usage.files).toBe(3);
    // The history agrees, window by window, with the manifests in the bucket.
    const history = await real.listHistory(connection.connectionId);
    expect(history.map((h) => [h.sequence, h.records, h.bytes, h.manifestKey])).toEqual(
      manifests.map((m) => [
        m.sequence,
        m.totalRecords,
        m.totalBytes,
        m.files[0]!.key.replace(/\.json\.gz$/, '.manifest.json'),
      ]),
    );
  });
});

describe('rerun of a past window', () => {
  it('rewrites the same records into the same keys (several parts) with the same manifest sequence, and leaves watermark, history and usage as they were', async () => {
    const e = engines();
    await e.createBucket(BUCKET);
    const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
    const connection = freshConnection();
    // A tiny part size: the window is split into several parts, which the rerun must reproduce.
    const { driver, s3 } = await createHarness(e, { clock, config: { partSizeBytes: 100 } });
    await driver.runtime.connections.put(connection);
    await driver.runtime.state.initialize(connection.connectionId, new Date(connection.createdAt));
    // Three staging slots, exported as one window (a catch-up): parts split between slots' chunks.
    for (const [at, prefix] of [
      ['2026-11-02T10:02:00Z', 'x'],
      ['2026-11-02T10:17:00Z', 'y'],
      ['2026-11-02T10:32:00Z', 'z'],
    ] as const) {
      clock.set(new Date(at));
      await driver.stage(events(connection.appId, prefix, 4));
    }
    clock.set(new Date('2026-11-02T10:50:00Z'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    clock.set(new Date('2026-11-02T10:55:00Z'));
    await driver.stage(events(connection.appId, 'later', 2));
    clock.set(new Date('2026-11-02T11:05:00Z'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());

    const prefix = `${connection.connectionName}/`;
    const before = await bucketState(s3, prefix);
    const first = before.manifests[0]!;
    expect(first.sequence).toBe(1);
    expect(first.files.length).toBeGreaterThan(1);
    const stateBefore = await driver.runtime.state.get(connection.connectionId);
    const usageBefore = await driver.runtime.state.getUsage(connection.connectionId, '2026-11');
    const historyBefore = await driver.runtime.state.listHistory(connection.connectionId);

    // The customer damaged the first window's files: one part deleted, one overwritten.
    const [damaged, , ...rest] = first.files;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: damaged!.key, Body: 'garbage' }));
    for (const part of rest) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: part.key, Body: '' }));

    clock.set(new Date('2026-11-03T09:00:00Z'));
    const config = driver.runtime.config;
    const result = await rerunWindow(
      { connectionId: connection.connectionId, windowEnd: new Date(first.windowEnd) },
      {
        connections: driver.runtime.connections,
        state: driver.runtime.state,
        history: driver.runtime.state,
        staging: driver.runtime.staging,
        sink: driver.runtime.sink,
        clock,
        settings: {
          partSizeBytes: config.partSizeBytes,
          gzipLevel: 6,
          stagingRetentionDays: config.stagingRetentionDays,
        },
      },
    );
    expect(result.differences).toEqual([]);
    expect(result.sequence).toBe(1);

    const after = await bucketState(s3, prefix);
    expect(after.keys).toEqual(before.keys);
    expect(after.lines).toEqual(before.lines);
    expect(after.manifests).toEqual(before.manifests);
    expect(after.manifests[0]).toMatchObject({
      sequence: 1,
      windowStart: first.windowStart,
      windowEnd: first.windowEnd,
    });
    expect(await driver.runtime.state.get(connection.connectionId)).toEqual(stateBefore);
    expect(await driver.runtime.state.getUsage(connection.connectionId, '2026-11')).toEqual(usageBefore);
    expect(await driver.runtime.state.listHistory(connection.connectionId)).toEqual(historyBefore);
  });
});

describe('export outcomes on EventBridge', () => {
  const eventBridge = mockClient(EventBridgeClient);
  afterEach(() => eventBridge.reset());

  it('a failing window publishes ExportFailed with its diagnosis; the next success publishes ExportSucceeded and ConnectionRecovered', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'id' }] });
    const e = engines();
    await e.createBucket(BUCKET);
    const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
    const connection = freshConnection();
    let denied = true;
    const { driver } = await createHarness(e, {
      clock,
      notifier: new EventBridgeNotifier(new EventBridgeClient({ region: 'us-east-1' })),
      sink: (real): ExportSink => ({
        async putObject(target, key, body, contentType) {
          if (denied) {
            body.resume();
            throw new S3ServiceException({
              name: 'AccessDenied',
              $fault: 'client',
              $metadata: { httpStatusCode: 403 },
              message: 'Access Denied',
            });
          }
          return real.putObject(target, key, body, contentType);
        },
      }),
    });
    await driver.runtime.connections.put(connection);
    await driver.runtime.state.initialize(connection.connectionId, new Date(connection.createdAt));
    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage(events(connection.appId, 'n', 3));

    clock.set(new Date('2026-11-02T10:20:00Z'));
    const failed = await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect(failed.exports[0]?.error).toBeInstanceOf(S3ServiceException);
    const recorded = (await driver.runtime.state.get(connection.connectionId))?.lastError;
    expect(recorded?.code).toBe('BUCKET_POLICY_MISSING');

    denied = false;
    clock.set(new Date('2026-11-02T10:35:00Z'));
    const succeeded = await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect(succeeded.exports[0]?.outcome?.status).toBe('committed');

    const published = eventBridge.commandCalls(PutEventsCommand).flatMap((call) =>
      (call.args[0].input.Entries ?? []).map((entry) => ({
        source: entry.Source,
        type: entry.DetailType,
        detail: JSON.parse(entry.Detail ?? '{}') as Record<string, unknown>,
      })),
    );
    expect(published.map((p) => [p.source, p.type])).toEqual([
      ['s3-event-export', 'ExportFailed'],
      ['s3-event-export', 'ExportSucceeded'],
      ['s3-event-export', 'ConnectionRecovered'],
      ['s3-event-export', 'ExportSucceeded'],
    ]);
    expect(published[0]?.detail).toEqual({
      connectionId: connection.connectionId,
      windowEnd: '2026-11-02T10:15:00.000Z',
      diagnosis: recorded,
    });
    // The pending window [10:00, 10:15) is finished first (the recovery), then the job's own [10:15, 10:30).
    const window = {
      connectionId: connection.connectionId,
      windowStart: '2026-11-02T10:00:00.000Z',
      windowEnd: '2026-11-02T10:15:00.000Z',
      sequence: 1,
      records: 3,
      files: 1,
    };
    expect(published[1]?.detail).toMatchObject(window);
    expect(published[2]?.detail).toMatchObject(window);
    expect(published[3]?.detail).toMatchObject({
      windowEnd: '2026-11-02T10:30:00.000Z',
      sequence: 2,
      records: 0,
    });
    expect((await driver.runtime.state.get(connection.connectionId))?.lastError).toBeUndefined();
  });
});
