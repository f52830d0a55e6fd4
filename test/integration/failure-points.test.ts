/**
 * One test per failure point of docs/exactly-once.md §6: each injects the failure
 * at its exact step, lets the system retry as Lambda/SQS would, and reads the
 * customer bucket back to show no event is duplicated or lost.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { segmentPrefix } from '../../lambdas/domain/staging-layout.ts';
import type { ExportSink, ExportStateStore, StagingLedger, StagingStore } from '../../lambdas/ports/index.ts';
import { StagingSlotSettlingError, stageBatch } from '../../lambdas/usecases/stage-batch.ts';
import { ManualClock } from '../../local/clock.ts';
import type { LocalDriver } from '../../local/driver.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { consumePartly, SimulatedCrash, slowDownError } from '../../local/simulation.ts';
import { useLocalEngines } from '../support/engines.ts';
import { connectionFactory } from '../support/fixtures.ts';

const engines = useLocalEngines();

/** A fresh app, connection and bucket prefix per test: the engines are shared by the file. */
const freshConnection = connectionFactory({
  idPrefix: 'failpoint',
  namePrefix: 'fp',
  appName: 'Failure Points',
  bucketName: 'customer-failure-points',
});

function events(appId: string, prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    app_id: appId,
    event: { event_uuid: `${prefix}-${i}`, event_name: 'VIEW_RADAR', event_time: 1_790_000_000 },
  }));
}

async function exported(s3: Parameters<typeof readBucket>[0], prefix: string) {
  const files = await readBucket(s3, 'customer-failure-points', prefix);
  const data = files.filter((f) => isDataKey(f.key));
  const manifests = files
    .filter((f) => isManifestKey(f.key))
    .map(
      (f) =>
        JSON.parse(f.body.toString('utf8')) as {
          sequence: number;
          windowStart: string;
          windowEnd: string;
          totalRecords: number;
          files: { key: string; bytes: number; sha256: string }[];
        },
    );
  // Every manifest matches the stored objects it lists.
  const bodies = new Map(data.map((f) => [f.key, f.body]));
  for (const entry of manifests.flatMap((m) => m.files)) {
    const body = bodies.get(entry.key);
    expect(body?.length).toBe(entry.bytes);
    expect(createHash('sha256').update(body!).digest('hex')).toBe(entry.sha256);
  }
  const uuids = data.flatMap((f) =>
    gzipRecords(f.body).map((r) => (r.event as { event_uuid: string }).event_uuid),
  );
  return { data, manifests: manifests.sort((a, b) => a.sequence - b.sequence), uuids: uuids.sort() };
}

/** A state store whose `get` waits for `gate` after reading: its exporter acts on what it read before. */
function pausedAfterRead(real: ExportStateStore, gate: Promise<void>): ExportStateStore {
  const wrapper = Object.create(real) as ExportStateStore;
  wrapper.get = async (id) => {
    const state = await real.get(id);
    await gate;
    return state;
  };
  return wrapper;
}

describe('two exporters racing on one connection', () => {
  it('an exporter that read the state before a rival committed the window does not re-commit it as an empty window', async () => {
    const e = engines();
    await e.createBucket('customer-failure-points');
    const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
    const connection = freshConnection();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { driver, s3 } = await createHarness(e, { clock });
    const late = (
      await createHarness(e, {
        clock,
        exportOverrides: { state: pausedAfterRead(driver.runtime.state, gate) },
      })
    ).driver;
    await driver.runtime.connections.put(connection);
    await driver.runtime.state.initialize(connection.connectionId, new Date(connection.createdAt));
    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage(events(connection.appId, 'a', 5));

    clock.set(new Date('2026-11-02T10:20:00Z'));
    const job = { connectionId: connection.connectionId, windowEnd: '2026-11-02T10:15:00.000Z' };
    const slow = late.exportJob(job); // reads watermark 10:00, then waits
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await driver.exportJob(job)).status).toBe('committed');
    open();
    expect((await slow).status).toBe('up-to-date');

    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.uuids).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
    expect(result.manifests.map((m) => [m.sequence, m.windowStart, m.windowEnd, m.totalRecords])).toEqual([
      [1, '2026-11-02T10:00:00.000Z', '2026-11-02T10:15:00.000Z', 5],
    ]);
    expect((await driver.runtime.state.get(connection.connectionId))?.sequence).toBe(1);
  });

  it('a delayed job for an earlier window never moves the watermark back after a later window was committed', async () => {
    const e = engines();
    await e.createBucket('customer-failure-points');
    const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
    const connection = freshConnection();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { driver, s3 } = await createHarness(e, { clock });
    const late = (
      await createHarness(e, {
        clock,
        exportOverrides: { state: pausedAfterRead(driver.runtime.state, gate) },
      })
    ).driver;
    await driver.runtime.connections.put(connection);
    await driver.runtime.state.initialize(connection.connectionId, new Date(connection.createdAt));
    clock.set(new Date('2026-11-02T10:05:00Z'));
    await driver.stage(events(connection.appId, 'first', 3));
    clock.set(new Date('2026-11-02T10:20:00Z'));
    await driver.stage(events(connection.appId, 'second', 3));

    clock.set(new Date('2026-11-02T10:35:00Z'));
    // The 10:15 job (redelivered late) read watermark 10:00; meanwhile the 10:30 job commits [10:00, 10:30).
    const delayed = late.exportJob({
      connectionId: connection.connectionId,
      windowEnd: '2026-11-02T10:15:00.000Z',
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const current = await driver.exportJob({
      connectionId: connection.connectionId,
      windowEnd: '2026-11-02T10:30:00.000Z',
    });
    expect(current.status).toBe('committed');
    open();
    await delayed;
    expect((await driver.runtime.state.get(connection.connectionId))?.watermark.toISOString()).toBe(
      '2026-11-02T10:30:00.000Z',
    );

    // The next tick exports only what came after 10:30.
    clock.set(new Date('2026-11-02T10:40:00Z'));
    await driver.stage(events(connection.appId, 'third', 2));
    clock.set(new Date('2026-11-02T10:50:00Z'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.uuids).toEqual(
      ['first-0', 'first-1', 'first-2', 'second-0', 'second-1', 'second-2', 'third-0', 'third-1'].sort(),
    );
    expect(result.manifests.map((m) => [m.sequence, m.windowStart, m.windowEnd])).toEqual([
      [1, '2026-11-02T10:00:00.000Z', '2026-11-02T10:30:00.000Z'],
      [2, '2026-11-02T10:30:00.000Z', '2026-11-02T10:45:00.000Z'],
    ]);
  });
});

const at = (hhmmss: string) => new Date(`2026-11-02T${hhmmss}Z`);
const job = (connectionId: string, windowEnd: string) => ({
  connectionId,
  windowEnd: at(windowEnd).toISOString(),
});

interface Setup {
  sink?: (real: ExportSink) => ExportSink;
  state?: (real: ExportStateStore) => ExportStateStore;
  partSizeBytes?: number;
}

/** A connection on the shared engines, a plain driver, and a driver whose exporter has `faults`. */
async function setup(faults: Setup = {}) {
  const e = engines();
  await e.createBucket('customer-failure-points');
  const clock = new ManualClock(at('10:00:00'));
  const connection = freshConnection();
  const config = faults.partSizeBytes ? { partSizeBytes: faults.partSizeBytes } : {};
  const plain = await createHarness(e, { clock, config });
  const faulty = await createHarness(e, {
    clock,
    config,
    ...(faults.sink ? { sink: faults.sink } : {}),
    exportOverrides: faults.state ? { state: faults.state(plain.driver.runtime.state) } : {},
  });
  await plain.driver.runtime.connections.put(connection);
  return { clock, connection, driver: plain.driver, faulty: faulty.driver, s3: plain.s3 };
}

/** Usage counters and history rows: exact under retries. */
async function bookkeeping(driver: LocalDriver, connectionId: string) {
  const usage = await driver.runtime.state.listUsage(connectionId);
  const history = await driver.runtime.state.listHistory(connectionId);
  return {
    usageEvents: usage.reduce((n, u) => n + u.events, 0),
    usageFiles: usage.reduce((n, u) => n + u.files, 0),
    windows: history.map((h) => [h.sequence, h.windowStart.toISOString(), h.windowEnd.toISOString()]),
  };
}

/** A one-shot fault on one method of a state store: `before` throws instead of writing, `after` writes then throws. */
function crashOnce(
  method: 'commitWindow',
  when: 'before' | 'after',
): (real: ExportStateStore) => ExportStateStore {
  return (real) => {
    const wrapper = Object.create(real) as ExportStateStore;
    let armed = true;
    wrapper[method] = async (...args: Parameters<ExportStateStore['commitWindow']>) => {
      if (!armed) return real[method](...args);
      armed = false;
      if (when === 'before') throw new SimulatedCrash('crash after upload, before commit');
      await real[method](...args);
      throw new SimulatedCrash('crash after commit, before the job was acknowledged');
    };
    return wrapper;
  };
}

describe('the stager', () => {
  it('stages a Kinesis batch it sees twice once', async () => {
    const { clock, connection, driver, s3 } = await setup();
    clock.set(at('10:05:00'));
    await driver.resumeSequence('shardId-fp-twice');
    const records = driver.kinesisRecords(events(connection.appId, 'twice', 6), 'shardId-fp-twice');
    const first = await driver.stageRecords(records, 'shardId-fp-twice');
    clock.set(at('10:06:00'));
    const second = await driver.stageRecords(records, 'shardId-fp-twice');
    expect([first.stagedEvents, second.stagedEvents, second.alreadyStagedRecords]).toEqual([6, 0, 6]);

    clock.set(at('10:20:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect((await exported(s3, `${connection.connectionName}/`)).uuids).toEqual(
      Array.from({ length: 6 }, (_, i) => `twice-${i}`).sort(),
    );
  });

  it('completes a unit whose objects were written before a crash with the same keys on retry', async () => {
    const { clock, connection, driver, s3 } = await setup();
    const shard = 'shardId-fp-crash-after-objects';
    await driver.resumeSequence(shard);
    const ledger: StagingLedger = Object.create(driver.runtime.ledger);
    let checkpointWrites = 0;
    ledger.putCheckpoint = async (next, version) => {
      checkpointWrites += 1;
      // Write 1 fixes the pending unit; write 2 would mark it staged: crash just before it.
      if (checkpointWrites === 2) throw new SimulatedCrash('crash after objects, before the checkpoint');
      return driver.runtime.ledger.putCheckpoint(next, version);
    };
    const records = driver.kinesisRecords(events(connection.appId, 'unit', 8), shard);
    clock.set(at('10:05:00'));
    await expect(
      stageBatch({ shardId: shard, records }, { ...driver.runtime.stagerDeps(), ledger }),
    ).rejects.toThrow(SimulatedCrash);
    const segments = () => driver.runtime.staging.listPrefix(segmentPrefix(at('10:05:00')));
    const written = await segments();
    expect(written).toHaveLength(1);

    clock.set(at('10:05:30'));
    const retry = await driver.stageRecords(records, shard);
    expect(retry.stagedEvents).toBe(0); // the object was already there: same key, not a second one
    expect(await segments()).toEqual(written);
    expect((await driver.runtime.ledger.getCheckpoint(shard)).pending).toBeUndefined();

    clock.set(at('10:20:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect((await exported(s3, `${connection.connectionName}/`)).uuids).toEqual(
      Array.from({ length: 8 }, (_, i) => `unit-${i}`).sort(),
    );
  });

  it('retimes a missing segment once its slot has closed, so it lands in a later window instead of being lost', async () => {
    const { clock, connection, driver, s3 } = await setup();
    const shard = 'shardId-fp-horizon';
    await driver.resumeSequence(shard);
    const store: StagingStore = Object.create(driver.runtime.staging);
    store.createObject = async () => {
      throw new SimulatedCrash('crash before the object was written');
    };
    const records = driver.kinesisRecords(events(connection.appId, 'late', 4), shard);
    clock.set(at('10:14:30'));
    await expect(
      stageBatch({ shardId: shard, records }, { ...driver.runtime.stagerDeps(), store }),
    ).rejects.toThrow(SimulatedCrash);
    expect((await driver.runtime.ledger.getCheckpoint(shard)).pending).toBeDefined(); // T = 10:14:30 fixed

    // The window [10:00, 10:15) is exported while the batch is still failing.
    clock.set(at('10:20:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    expect((await exported(s3, `${connection.connectionName}/`)).uuids).toEqual([]);

    // Lambda retries after the slot closed: the missing segment takes a fresh T in [10:15, 10:30).
    clock.set(at('10:21:00'));
    expect((await driver.stageRecords(records, shard)).stagedEvents).toBe(4);
    clock.set(at('10:35:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.uuids).toEqual(['late-0', 'late-1', 'late-2', 'late-3']);
    expect(result.manifests.map((m) => [m.sequence, m.windowEnd, m.totalRecords])).toEqual([
      [1, '2026-11-02T10:15:00.000Z', 0],
      [2, '2026-11-02T10:30:00.000Z', 4],
    ]);
  });

  it('does not stage a unit twice when the PUT of an attempt that timed out lands after its slot closed', async () => {
    const { clock, connection, driver, s3 } = await setup();
    const shard = 'shardId-fp-late-put';
    await driver.resumeSequence(shard);
    // Lambda kills the attempt at its timeout while its segment PUT is in flight; S3 stores it later.
    let landLate: (() => Promise<unknown>) | undefined;
    const store: StagingStore = Object.create(driver.runtime.staging);
    store.createObject = async (key, body) => {
      landLate = () => driver.runtime.staging.createObject(key, body);
      throw new SimulatedCrash('stager timed out with its segment PUT in flight');
    };
    const records = driver.kinesisRecords(events(connection.appId, 'inflight', 5), shard);
    clock.set(at('10:14:50'));
    await expect(
      stageBatch({ shardId: shard, records }, { ...driver.runtime.stagerDeps(), store }),
    ).rejects.toThrow(SimulatedCrash);

    // The retry comes after the slot closed, before the PUT landed: it must not give the unit a new
    // stage time (a second segment), only wait until the slot's segments are final.
    clock.set(at('10:15:05'));
    await expect(driver.stageRecords(records, shard)).rejects.toThrow(StagingSlotSettlingError);
    clock.set(at('10:15:20'));
    await landLate!(); // within the timed-out attempt's 60 s
    clock.set(at('10:17:30')); // the slot may be compacted from 10:17:00
    const retry = await driver.stageRecords(records, shard);
    expect([retry.stagedEvents, retry.alreadyStagedRecords]).toEqual([0, 5]);

    // One segment, in the slot of its first stage time; none in the next slot.
    const segments = (slot: string) => driver.runtime.staging.listPrefix(segmentPrefix(at(slot)));
    expect([(await segments('10:00:00')).length, (await segments('10:15:00')).length]).toEqual([1, 0]);

    clock.set(at('10:35:00'));
    await driver.tick('FIFTEEN_MINUTES', clock.now());
    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.uuids).toEqual(Array.from({ length: 5 }, (_, i) => `inflight-${i}`).sort());
  });
});

describe('the exporter', () => {
  it('retries a window after an S3 503 SlowDown mid-upload and writes it once', async () => {
    let failures = 0;
    const { clock, connection, driver, faulty, s3 } = await setup({
      sink: (real) => ({
        async putObject(target, key, body, contentType) {
          if (failures === 0 && isDataKey(key)) {
            failures += 1;
            await consumePartly(body);
            throw slowDownError();
          }
          return real.putObject(target, key, body, contentType);
        },
      }),
    });
    clock.set(at('10:05:00'));
    await driver.stage(events(connection.appId, 'slow', 30));
    clock.set(at('10:20:00'));
    await expect(faulty.exportJob(job(connection.connectionId, '10:15:00'))).rejects.toMatchObject({
      name: 'SlowDown',
      $metadata: { httpStatusCode: 503 },
    });
    expect((await exported(s3, `${connection.connectionName}/`)).data).toEqual([]);

    clock.set(at('10:22:00')); // SQS redelivers
    expect((await faulty.exportJob(job(connection.connectionId, '10:15:00'))).status).toBe('committed');
    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.uuids).toEqual(Array.from({ length: 30 }, (_, i) => `slow-${i}`).sort());
    expect(result.data).toHaveLength(1);
    expect(await bookkeeping(driver, connection.connectionId)).toMatchObject({
      usageEvents: 30,
      usageFiles: 1,
    });
  });

  it('rewrites the same keys after a crash between upload and commit, adding no second file', async () => {
    const { clock, connection, driver, faulty, s3 } = await setup({
      state: crashOnce('commitWindow', 'before'),
      partSizeBytes: 200,
    });
    clock.set(at('10:05:00'));
    await driver.stage(events(connection.appId, 'a', 10));
    clock.set(at('10:20:00')); // the next staging slot: parts split between slots' chunks
    await driver.stage(events(connection.appId, 'b', 10));
    clock.set(at('10:35:00'));
    await expect(faulty.exportJob(job(connection.connectionId, '10:30:00'))).rejects.toThrow(SimulatedCrash);
    const before = await exported(s3, `${connection.connectionName}/`);
    expect(before.data.map((f) => f.key)).toHaveLength(2); // two parts and a manifest, not committed
    expect((await driver.runtime.state.get(connection.connectionId))?.watermark).toEqual(at('10:00:00'));

    clock.set(at('10:46:00')); // redelivered after the next boundary: still the pending window first
    expect((await faulty.exportJob(job(connection.connectionId, '10:30:00'))).status).toBe('committed');
    const after = await exported(s3, `${connection.connectionName}/`);
    expect(after.data.map((f) => f.key)).toEqual(before.data.map((f) => f.key));
    expect(after.uuids).toEqual(before.uuids);
    expect(after.uuids).toHaveLength(20);
    expect(after.manifests.map((m) => [m.sequence, m.windowEnd])).toEqual([[1, '2026-11-02T10:30:00.000Z']]);
  });

  it('does nothing on redelivery after a crash between commit and acknowledgement', async () => {
    const { clock, connection, driver, faulty, s3 } = await setup({
      state: crashOnce('commitWindow', 'after'),
    });
    clock.set(at('10:05:00'));
    await driver.stage(events(connection.appId, 'acked', 7));
    clock.set(at('10:20:00'));
    await expect(faulty.exportJob(job(connection.connectionId, '10:15:00'))).rejects.toThrow(SimulatedCrash);
    clock.set(at('10:26:00'));
    expect((await faulty.exportJob(job(connection.connectionId, '10:15:00'))).status).toBe('up-to-date');

    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.data).toHaveLength(1);
    expect(result.uuids).toHaveLength(7);
    expect(await bookkeeping(driver, connection.connectionId)).toEqual({
      usageEvents: 7,
      usageFiles: 1,
      windows: [[1, '2026-11-02T10:00:00.000Z', '2026-11-02T10:15:00.000Z']],
    });
  });

  it('lets exactly one of two exporters racing on the same job commit', async () => {
    const { clock, connection, driver, s3 } = await setup();
    const other = (await createHarness(engines(), { clock })).driver;
    clock.set(at('10:05:00'));
    await driver.stage(events(connection.appId, 'race', 12));
    clock.set(at('10:20:00'));
    const outcomes = await Promise.all([
      driver.exportJob(job(connection.connectionId, '10:15:00')),
      other.exportJob(job(connection.connectionId, '10:15:00')),
    ]);
    const statuses = outcomes.map((o) => o.status).sort();
    expect(statuses.filter((s) => s === 'committed')).toHaveLength(1);
    expect(statuses.filter((s) => s !== 'committed')).toEqual([
      expect.stringMatching(/^(lease-held|up-to-date|lost-race)$/),
    ]);
    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.uuids).toHaveLength(12);
    expect(new Set(result.uuids).size).toBe(12);
    expect(result.manifests.map((m) => m.sequence)).toEqual([1]);
    expect((await bookkeeping(driver, connection.connectionId)).usageEvents).toBe(12);
  });

  it('finishes an earlier pending window first when a job for a later window arrives', async () => {
    const { clock, connection, driver, faulty, s3 } = await setup({
      state: crashOnce('commitWindow', 'before'),
    });
    clock.set(at('10:05:00'));
    await driver.stage(events(connection.appId, 'w1', 3));
    clock.set(at('10:20:00'));
    await expect(faulty.exportJob(job(connection.connectionId, '10:15:00'))).rejects.toThrow(SimulatedCrash);
    clock.set(at('10:25:00'));
    await driver.stage(events(connection.appId, 'w2', 4));

    clock.set(at('10:35:00')); // the 10:30 tick's job, while [10:00, 10:15) is pinned
    const outcome = await driver.exportJob(job(connection.connectionId, '10:30:00'));
    expect(outcome.status).toBe('committed');
    const result = await exported(s3, `${connection.connectionName}/`);
    expect(result.manifests.map((m) => [m.sequence, m.windowStart, m.windowEnd, m.totalRecords])).toEqual([
      [1, '2026-11-02T10:00:00.000Z', '2026-11-02T10:15:00.000Z', 3],
      [2, '2026-11-02T10:15:00.000Z', '2026-11-02T10:30:00.000Z', 4],
    ]);
    expect(result.uuids).toEqual(['w1-0', 'w1-1', 'w1-2', 'w2-0', 'w2-1', 'w2-2', 'w2-3']);
  });

  it('keeps a window whole when the lease expires under a slow exporter and a rival finishes it', async () => {
    let rival: Promise<unknown> | undefined;
    let stalled = false;
    let driverRef!: LocalDriver;
    let clockRef!: ManualClock;
    let connectionId = '';
    const { clock, connection, driver, faulty, s3 } = await setup({
      partSizeBytes: 1024,
      sink: (real) => ({
        async putObject(target, key, body, contentType) {
          if (!stalled) {
            // The first part's upload stalls past the lease; SQS redelivers the job to another exporter.
            stalled = true;
            clockRef.advance(6 * 60_000);
            rival = driverRef.exportJob(job(connectionId, '10:15:00'));
            await rival;
          }
          return real.putObject(target, key, body, contentType);
        },
      }),
    });
    driverRef = driver;
    clockRef = clock;
    connectionId = connection.connectionId;
    clock.set(at('10:05:00'));
    await driver.stage(events(connection.appId, 'p1', 10));
    clock.set(at('10:10:00'));
    await driver.stage(events(connection.appId, 'p2', 10));

    clock.set(at('10:20:00'));
    const slow = await faulty.exportJob(job(connection.connectionId, '10:15:00'));
    expect(await rival).toMatchObject({ status: 'committed' });
    expect(slow.status).toBe('lost-race');

    const result = await exported(s3, `${connection.connectionName}/`); // checks manifest sizes and SHA-256
    expect(result.uuids).toHaveLength(20);
    expect(new Set(result.uuids).size).toBe(20);
    expect(result.manifests.map((m) => m.sequence)).toEqual([1]);
    expect(await bookkeeping(driver, connection.connectionId)).toMatchObject({
      usageEvents: 20,
      windows: [[1, '2026-11-02T10:00:00.000Z', '2026-11-02T10:15:00.000Z']],
    });
  });
});
