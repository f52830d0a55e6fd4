/**
 * Read-once fan-out (issue 6): several connections of one app with the same frequency are
 * exported by one group job per tick, which reads the app's staged data once — measured in
 * staged bytes read — while each connection still gets exactly its own records and its own
 * exactly-once commit. On the local engines (DynamoDB Local + the S3 emulator), with a key made
 * by GnuPG for the PGP member.
 */

import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessJobQueue } from '../../lambdas/adapters/in-process-job-queue.ts';
import type { Frequency } from '../../lambdas/definitions.ts';
import type { Connection } from '../../lambdas/domain/connection.ts';
import { recordFrame } from '../../lambdas/domain/export-record.ts';
import { connectionPrefix } from '../../lambdas/domain/object-keys.ts';
import { compileRecordWriter } from '../../lambdas/domain/record-codec/record-writer.ts';
import type { ExportJob } from '../../lambdas/ports/index.ts';
import { jobConnectionIds } from '../../lambdas/ports/index.ts';
import { listSettledWindow } from '../../lambdas/usecases/compact-slot.ts';
import { dispatchTick } from '../../lambdas/usecases/dispatch-tick.ts';
import type { ExportJobRun } from '../../lambdas/usecases/export-job.ts';
import { ManualClock } from '../../local/clock.ts';
import { createEventGenerator } from '../../local/events.ts';
import { createHarness, type Harness, isDataKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { connectionFactory } from '../support/fixtures.ts';
import { createGpgHome, type GpgHome, type GpgKey } from '../support/gpg.ts';
import { objectRecords } from '../support/reference-records.ts';

const engines = useLocalEngines();

const BUCKET = 'customer-group';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// Keys are made by gpg with the real clock: simulated time starts at a midnight after it.
const DAY0 = Math.ceil(Date.now() / DAY) * DAY + DAY;
const at = (ms: number) => new Date(DAY0 + ms);

let home: GpgHome;
let key: GpgKey;

beforeAll(async () => {
  home = await createGpgHome();
  key = await home.createKey('curve25519');
  await engines().createBucket(BUCKET);
});

afterAll(async () => {
  await home?.dispose();
});

/** Stage `batches` Kinesis batches of `app` (one staged object each) at `from + i * step`, on two shards. */
async function stageBatches(
  harness: Harness,
  clock: ManualClock,
  app: string,
  options: { from: number; step: number; batches: number; seed: number },
) {
  const generate = createEventGenerator({ appId: app, seed: options.seed });
  for (let i = 0; i < options.batches; i += 1) {
    clock.set(at(options.from + i * options.step));
    const events = Array.from({ length: 30 + i }, () => generate(clock.now()));
    await harness.driver.stage(events, `shardId-${app}-${i % 2}`);
  }
}

/** The staged objects of a window and their stored (gzipped) size, from the staging bucket's listing. */
async function stagedWindow(harness: Harness, app: string, start: Date, end: Date) {
  // Read as the exporter will, once the window's slots may be compacted.
  const settled = { now: () => new Date(end.getTime() + 10 * MINUTE) };
  const refs = await listSettledWindow(harness.driver.runtime.staging, settled, app, start, end);
  return { refs, bytes: refs.reduce((n, r) => n + (r.size ?? Number.NaN), 0) };
}

/** What the connection's data files must hold, by the reference text path over the staged objects. */
async function referenceText(
  harness: Harness,
  connection: Connection,
  start: Date,
  end: Date,
): Promise<string> {
  const { refs } = await stagedWindow(harness, connection.appId, start, end);
  const write = compileRecordWriter(connection, recordFrame(connection, end));
  let text = '';
  for (const ref of refs) {
    const gzipped = await harness.driver.runtime.staging.openObject(ref.key);
    for await (const chunk of objectRecords(ref.key, gzipped, write, { records: 0 })) text += chunk;
  }
  return text;
}

/** The text of a connection's data files (decrypted with gpg when PGP is on), parts in order. */
async function exportedText(harness: Harness, connection: Connection): Promise<string> {
  const files = (await readBucket(harness.s3, connection.bucketName, connectionPrefix(connection))).filter(
    (f) => isDataKey(f.key),
  );
  let text = '';
  for (const file of files) {
    const gzipped = connection.pgpPublicKey ? await home.decrypt(file.body) : file.body;
    text += gunzipSync(gzipped).toString('utf8');
  }
  return text;
}

function settleMs(harness: Harness): number {
  return harness.config.settleDelayMinutes * MINUTE;
}

async function tick(harness: Harness, frequency: Frequency, scheduledTime: Date) {
  return dispatchTick({ frequency, scheduledTime }, harness.driver.runtime.dispatchDeps(), settleMs(harness));
}

describe('group jobs: one read of the staged data per app and tick', () => {
  it('three connections of one app and frequency are one group job: each exports exactly its records, and the staged bytes are read once (three single jobs read them three times)', async () => {
    const e = engines();
    const clock = new ManualClock(at(10 * HOUR));
    const harness = await createHarness(e, { clock });
    const { driver } = harness;
    const app = 'app-group-once';
    const make = connectionFactory({
      idPrefix: 'grponce',
      namePrefix: 'go',
      appName: 'Group App',
      bucketName: BUCKET,
    });
    const base = { appId: app, createdAt: at(10 * HOUR).toISOString() };
    const variants = [
      { ...base },
      {
        ...base,
        events: { mode: 'SELECTED' as const, names: ['PURCHASE', 'Email Sent', 'SEARCH'] },
        userAttributes: ['city'],
        deviceAttributes: [],
      },
      { ...base, deviceAttributes: ['os'], pgpPublicKey: key.armoredPublicKey },
    ];
    const group = variants.map((v) => make(v));
    for (const c of group) await driver.runtime.connections.put(c);

    // 12 staged batches, in one staging slot: the window is one ref (the look-ahead is unit-tested).
    await stageBatches(harness, clock, app, {
      from: 10 * HOUR + MINUTE,
      step: MINUTE,
      batches: 12,
      seed: 61,
    });
    const start = at(10 * HOUR);
    const windowEnd = at(10 * HOUR + 15 * MINUTE);
    const staged = await stagedWindow(harness, app, start, windowEnd);
    expect(staged.refs).toHaveLength(1);
    expect(staged.bytes).toBeGreaterThan(0);

    clock.set(at(10 * HOUR + 20 * MINUTE));
    const run = await driver.tick('FIFTEEN_MINUTES', clock.now());
    const ids = group.map((c) => c.connectionId);
    expect(run.tick.jobs.filter((j) => j.connectionIds?.includes(ids[0]!))).toEqual([
      { connectionIds: ids, windowEnd: windowEnd.toISOString(), reason: 'schedule' },
    ]);
    const ours = run.exports.filter((x) => ids.includes(x.job.connectionId));
    expect(ours.map((x) => [x.job.connectionId, x.outcome?.status])).toEqual(
      ids.map((id) => [id, 'committed']),
    );

    // One job for the three, which read every staged object once: 1x the staged bytes.
    const groupRun = ours[0]!.run;
    expect(ours.every((x) => x.run === groupRun)).toBe(true);
    expect(groupRun.stagedReads).toEqual({ objects: staged.refs.length, bytes: staged.bytes });
    expect(groupRun.shared).toMatchObject({
      fetched: staged.refs.length,
      shared: 2 * staged.refs.length,
      unshared: 0,
    });
    expect(groupRun.shared?.peakHeld).toBeLessThanOrEqual(8 + 3);
    console.info(
      `group of 3: ${groupRun.stagedReads.bytes} staged bytes read (${groupRun.stagedReads.objects} objects) for ${staged.bytes} bytes staged (${staged.refs.length} objects)`,
    );

    // Each exported exactly its own selection and projection, as the reference text path computes it.
    for (const connection of group) {
      const expected = await referenceText(harness, connection, start, windowEnd);
      expect(expected.length).toBeGreaterThan(0);
      expect(await exportedText(harness, connection), connection.connectionId).toBe(expected);
    }
    // The selections really differ (the test would not notice a member exporting another's records otherwise).
    const texts = await Promise.all(group.map((c) => referenceText(harness, c, start, windowEnd)));
    expect(new Set(texts).size).toBe(3);

    // The same three connections as three single jobs read the staged data three times.
    const singles = variants.map((v) => make(v));
    let singleBytes = 0;
    for (const connection of singles) {
      await driver.runtime.connections.put(connection);
      const single = await driver.runJob({
        connectionId: connection.connectionId,
        windowEnd: windowEnd.toISOString(),
        reason: 'manual',
      });
      expect(single.members[0]?.outcome?.status).toBe('committed');
      singleBytes += single.stagedReads.bytes;
    }
    expect(singleBytes).toBe(3 * staged.bytes);
    console.info(`3 single jobs: ${singleBytes} staged bytes read for ${staged.bytes} bytes staged`);

    // SQS redelivers the group message (at-least-once): the committed members find their window
    // done, read no staged byte and write nothing.
    const before = await readBucket(harness.s3, BUCKET, connectionPrefix(group[0]!));
    const again = await driver.runJob(groupRun.job);
    expect(again.members.map((m) => m.outcome?.status)).toEqual(['up-to-date', 'up-to-date', 'up-to-date']);
    expect(again.stagedReads).toEqual({ objects: 0, bytes: 0 });
    expect(again).toMatchObject({ retried: [], redeliver: false });
    expect(await readBucket(harness.s3, BUCKET, connectionPrefix(group[0]!))).toEqual(before);
    for (const c of group) expect((await driver.runtime.state.get(c.connectionId))?.sequence).toBe(1);
  });

  it('a member whose bucket does not exist fails alone: the others commit, it is retried as a job of its own and its export is then correct', async () => {
    const e = engines();
    const clock = new ManualClock(at(DAY + 9 * HOUR));
    // Retries and continuations go to a queue of the test's own, so the retry runs when the test says.
    const retries = new InProcessJobQueue();
    const harness = await createHarness(e, { clock, exportOverrides: { jobs: retries } });
    const { driver } = harness;
    const app = 'app-group-fail';
    const gone = 'customer-group-gone';
    const make = connectionFactory({
      idPrefix: 'grpfail',
      namePrefix: 'gf',
      appName: 'Group App',
      bucketName: BUCKET,
    });
    const base = { appId: app, frequency: 'DAILY' as const, createdAt: at(DAY + 9 * HOUR).toISOString() };
    const ok1 = make(base);
    const broken = make({ ...base, bucketName: gone });
    const ok2 = make({ ...base, events: { mode: 'SELECTED', names: ['PURCHASE', 'VIEW_RADAR'] } });
    const group = [ok1, broken, ok2];
    for (const c of group) await driver.runtime.connections.put(c);

    await stageBatches(harness, clock, app, { from: DAY + 10 * HOUR, step: HOUR, batches: 10, seed: 62 });
    const start = at(DAY + 9 * HOUR);
    const windowEnd = at(2 * DAY);
    const staged = await stagedWindow(harness, app, start, windowEnd);

    clock.set(new Date(windowEnd.getTime() + settleMs(harness)));
    const dispatched = await tick(harness, 'DAILY', clock.now());
    const ids = group.map((c) => c.connectionId);
    expect(dispatched.jobs.filter((j) => j.connectionIds?.includes(ids[0]!))).toEqual([
      { connectionIds: ids, windowEnd: windowEnd.toISOString(), reason: 'schedule' },
    ]);
    const runs: ExportJobRun[] = [];
    await driver.queue.drain(async (job) => void runs.push(await driver.runJob(job)));
    const run = runs.find((r) => r.job.connectionIds?.includes(ids[0]!))!;

    expect(run.members.map((m) => [m.connectionId, m.outcome?.status ?? 'failed'])).toEqual([
      [ok1.connectionId, 'committed'],
      [broken.connectionId, 'failed'],
      [ok2.connectionId, 'committed'],
    ]);
    expect((run.members[1]!.error as { name?: string }).name).toBe('BucketNotFoundError');
    // The group message is acknowledged; only the failed member goes back to the queue, alone.
    const retry: ExportJob = {
      connectionId: broken.connectionId,
      windowEnd: windowEnd.toISOString(),
      reason: 'retry',
    };
    expect(run).toMatchObject({ redeliver: false, retried: [retry] });
    expect(retries.size).toBe(1);
    // Its failure did not make the others read twice.
    expect(run.stagedReads).toEqual({ objects: staged.refs.length, bytes: staged.bytes });
    expect((await driver.runtime.state.get(broken.connectionId))?.lastError?.code).toBe('BUCKET_NOT_FOUND');
    for (const c of [ok1, ok2]) {
      expect(await exportedText(harness, c)).toBe(await referenceText(harness, c, start, windowEnd));
    }

    // The customer creates the bucket; the retry exports the window exactly once.
    await e.createBucket(gone);
    const retried: ExportJobRun[] = [];
    await retries.drain(async (job) => void retried.push(await driver.runJob(job)));
    expect(retried.map((r) => [r.job, r.members[0]?.outcome?.status])).toEqual([[retry, 'committed']]);
    expect(retried[0]!.redeliver).toBe(false);
    expect(await exportedText(harness, broken)).toBe(await referenceText(harness, broken, start, windowEnd));
    const state = await driver.runtime.state.get(broken.connectionId);
    expect(state).toMatchObject({ watermark: windowEnd, sequence: 1 });
    expect(state?.lastError).toBeUndefined();
  });

  it('members that stop before reading (lease held, row missing, refused) leave the group without holding it back', async () => {
    const e = engines();
    const clock = new ManualClock(at(3 * DAY + 9 * HOUR));
    const retries = new InProcessJobQueue();
    const harness = await createHarness(e, { clock, exportOverrides: { jobs: retries } });
    const { driver } = harness;
    const app = 'app-group-early';
    const make = connectionFactory({
      idPrefix: 'grpearly',
      namePrefix: 'ge',
      appName: 'Group App',
      bucketName: BUCKET,
    });
    const base = { appId: app, createdAt: at(3 * DAY + 9 * HOUR).toISOString() };
    const [held, ok, missing] = [make(base), make(base), make(base)];
    // Its KMS key is not on the operator's allowlist: refused before any write.
    const refused = make({
      ...base,
      kmsKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/0000aaaa-11bb-22cc-33dd-444444eeeeee',
    });
    for (const c of [held, ok, refused]) await driver.runtime.connections.put(c);
    await stageBatches(harness, clock, app, {
      from: 3 * DAY + 9 * HOUR + MINUTE,
      step: MINUTE,
      batches: 11,
      seed: 63,
    });
    const windowEnd = at(3 * DAY + 9 * HOUR + 15 * MINUTE);
    const staged = await stagedWindow(harness, app, at(3 * DAY + 9 * HOUR), windowEnd);

    // Another exporter holds `held`'s lease (alive: it expires later); `missing` has no row.
    clock.set(at(3 * DAY + 9 * HOUR + 20 * MINUTE));
    await driver.runtime.state.initialize(held.connectionId, at(3 * DAY + 9 * HOUR));
    const rival = await driver.runtime.state.acquireLease(
      held.connectionId,
      'rival',
      clock.now(),
      5 * MINUTE,
      windowEnd,
    );
    expect(rival).toBeDefined();

    const job: ExportJob = {
      connectionIds: [held.connectionId, missing.connectionId, refused.connectionId, ok.connectionId],
      windowEnd: windowEnd.toISOString(),
      reason: 'schedule',
    };
    const run = await driver.runJob(job);
    expect(run.members.map((m) => m.outcome?.status)).toEqual([
      'lease-held',
      'missing',
      'refused',
      'committed',
    ]);
    expect(run.stagedReads).toEqual({ objects: staged.refs.length, bytes: staged.bytes });
    // The lease-held member is retried alone (SQS would otherwise have redelivered the group).
    expect(run.retried).toEqual([
      { connectionId: held.connectionId, windowEnd: windowEnd.toISOString(), reason: 'retry' },
    ]);
    expect(run.redeliver).toBe(false);
  });

  it('the dispatcher groups the on-time connections of each app, splits a large group, and lets a connection catching up run alone', {
    timeout: 480_000,
  }, async () => {
    const e = engines();
    // A Monday 00:05 after DAY0: the weekly tick.
    const monday = DAY0 + ((8 - new Date(DAY0).getUTCDay()) % 7) * DAY + 7 * DAY;
    const clock = new ManualClock(new Date(monday - 2 * DAY));
    const harness = await createHarness(e, { clock });
    const { driver } = harness;
    const make = connectionFactory({
      idPrefix: 'grpweek',
      namePrefix: 'gw',
      appName: 'Group App',
      bucketName: BUCKET,
    });
    const weekly = { frequency: 'WEEKLY' as const, createdAt: new Date(monday - 2 * DAY).toISOString() };
    const small = [
      make({ ...weekly, appId: 'app-week-small' }),
      make({ ...weekly, appId: 'app-week-small' }),
    ];
    const behind = make({
      ...weekly,
      appId: 'app-week-small',
      createdAt: new Date(monday - 20 * DAY).toISOString(),
    });
    const big = Array.from({ length: 12 }, () => make({ ...weekly, appId: 'app-week-big' }));
    const alone = make({ ...weekly, appId: 'app-week-alone' });
    for (const c of [...small, behind, ...big, alone]) await driver.runtime.connections.put(c);

    clock.set(new Date(monday + settleMs(harness)));
    const result = await tick(harness, 'WEEKLY', clock.now());
    const windowEnd = new Date(monday).toISOString();
    const ours = new Set([...small, behind, ...big, alone].map((c) => c.connectionId));
    const jobs = result.jobs.filter((j) => jobConnectionIds(j).some((id) => ours.has(id)));
    const ids = (cs: Connection[]) => cs.map((c) => c.connectionId);
    // The on-time groups (one per app, the large one split in two) share one batch message; the
    // connection catching up runs alone.
    expect(jobs).toHaveLength(2);
    expect(jobs).toContainEqual({ connectionId: behind.connectionId, windowEnd, reason: 'schedule' });
    const batch = jobs.find((j) => j.groups);
    expect(batch?.groups).toHaveLength(4);
    expect(batch?.groups).toEqual(
      expect.arrayContaining([ids(small), ids(big.slice(0, 6)), ids(big.slice(6)), [alone.connectionId]]),
    );

    // Every one of them commits its (empty) window once.
    const exports = (await driver.drain()).filter((x) => ours.has(x.job.connectionId));
    expect(exports.map((x) => x.outcome?.status).sort()).toEqual(Array(ours.size).fill('committed'));
  });
});
