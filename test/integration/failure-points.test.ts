/**
 * One test per failure point of docs/exactly-once.md §6: each injects the failure
 * at its exact step, lets the system retry as Lambda/SQS would, and reads the
 * customer bucket back to show no event is duplicated or lost.
 */
import { describe, expect, it } from 'vitest';
import type { ConnectionInput } from '../../lambdas/domain/connection.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import type { ExportStateStore } from '../../lambdas/ports/index.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

let nextId = 0;
/** A fresh app, connection and bucket prefix per test: the engines are shared by the file. */
function freshConnection(overrides: Partial<ConnectionInput> = {}) {
  nextId += 1;
  const n = String(nextId).padStart(4, '0');
  return parseConnection({
    connectionId: `conn_failpoint${n}`,
    appId: `app-fp-${n}`,
    appName: 'Failure Points',
    dbName: 'Failure Points DB',
    connectionName: `fp-${n}`,
    bucketName: 'customer-failure-points',
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: '2026-11-02T10:00:00.000Z',
    ...overrides,
  });
}

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
          files: { key: string }[];
        },
    );
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
    const { driver, s3 } = createHarness(e, { clock });
    const late = createHarness(e, {
      clock,
      exportOverrides: { state: pausedAfterRead(driver.runtime.state, gate) },
    }).driver;
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
    const { driver, s3 } = createHarness(e, { clock });
    const late = createHarness(e, {
      clock,
      exportOverrides: { state: pausedAfterRead(driver.runtime.state, gate) },
    }).driver;
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
