/**
 * No window end later than now minus the settle delay, on any path (docs/exactly-once.md §2):
 * the exporter, the dispatcher, `export --at` and `tick --at` refuse it with a clear error, and
 * the watermark never passes it. A later end would move the watermark past events staged just
 * before it that are not visible yet, which would then never be exported.
 */

import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { ENV } from '../../lambdas/definitions.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { WindowEndNotSettledError } from '../../lambdas/domain/windows.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, gzipRecords, isDataKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const BUCKET = 'customer-horizon';
const at = (hhmm: string) => new Date(`2026-11-02T${hhmm}:00Z`);
let counter = 0;

afterEach(() => {
  vi.unstubAllEnvs();
});

async function setup() {
  const e = engines();
  await e.createBucket(BUCKET);
  counter += 1;
  const n = String(counter).padStart(4, '0');
  const clock = new ManualClock(at('10:00'));
  const { driver, s3, config } = await createHarness(e, { clock });
  const connection = parseConnection({
    connectionId: `conn_horizon00000${n}`,
    appId: `app-horizon-${n}`,
    appName: 'Horizon',
    dbName: 'Horizon DB',
    connectionName: `horizon-${n}`,
    bucketName: BUCKET,
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: at('10:00').toISOString(),
  });
  await driver.runtime.connections.put(connection);
  // An event staged at 10:14, visible only later: a window end of 10:15 is settled from 10:20.
  clock.set(at('10:14'));
  await driver.stage([
    { app_id: connection.appId, event: { event_uuid: 'late', event_name: 'VIEW_RADAR', event_time: 1 } },
  ]);
  const cli = async (argv: string[]) => {
    let stdout = '';
    let stderr = '';
    // The CLI reads its settings from the environment, and the SDK its endpoints and credentials.
    // The harness stages into its own staging bucket: the CLI reads that one.
    const env = { ...e.env, [ENV.stagingBucket]: config.stagingBucket };
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    const code = await runCli(argv, {
      env,
      clock,
      io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    });
    return { code, stdout, stderr };
  };
  const exportedUuids = async () =>
    (await readBucket(s3, BUCKET, `${connection.connectionName}/`))
      .filter((f) => isDataKey(f.key))
      .flatMap((f) => gzipRecords(f.body).map((r) => (r.event as { event_uuid: string }).event_uuid));
  return { clock, driver, connection, cli, exportedUuids };
}

describe('a window end later than now minus the settle delay', () => {
  it('is refused by the exporter before any state is written', async () => {
    const { clock, driver, connection, exportedUuids } = await setup();
    clock.set(at('10:17'));
    const refused = driver.exportJob({
      connectionId: connection.connectionId,
      windowEnd: at('10:15').toISOString(),
    });
    await expect(refused).rejects.toBeInstanceOf(WindowEndNotSettledError);
    await expect(refused).rejects.toThrow(
      'window end 2026-11-02T10:15:00.000Z is later than now minus the settle delay (2026-11-02T10:13:00.000Z)',
    );
    expect(await driver.runtime.state.get(connection.connectionId)).toBeUndefined();

    clock.set(at('10:20'));
    await driver.exportJob({ connectionId: connection.connectionId, windowEnd: at('10:15').toISOString() });
    expect(await exportedUuids()).toEqual(['late']);
  });

  it('is refused by the dispatcher: no job is queued, no watermark moves', async () => {
    const { clock, driver, connection } = await setup();
    clock.set(at('10:17'));
    await expect(driver.tick('FIFTEEN_MINUTES', at('10:17'))).rejects.toThrow(
      "the tick's window end 2026-11-02T10:15:00.000Z is later than now minus the settle delay",
    );
    expect(driver.queue.size).toBe(0);
    expect(await driver.runtime.state.get(connection.connectionId)).toBeUndefined();
  });

  it('is refused by `export --at` and `tick --at`; without --at they stop at the settled end', async () => {
    const { clock, driver, connection, cli, exportedUuids } = await setup();
    clock.set(at('10:17'));
    const exported = await cli([
      'export',
      '--connection',
      connection.connectionId,
      '--at',
      '2026-11-02T10:16:00Z',
    ]);
    expect(exported.code).toBe(1);
    expect(exported.stderr).toContain(
      'export refused: --at 2026-11-02T10:16:00.000Z: window end 2026-11-02T10:15:00.000Z is later than now minus the settle delay',
    );
    const ticked = await cli(['tick', '--frequency', 'FIFTEEN_MINUTES', '--at', '2026-11-02T10:17:00Z']);
    expect(ticked.code).toBe(1);
    expect(ticked.stderr).toContain(
      'tick refused: --at 2026-11-02T10:15:00.000Z is later than now minus the settle delay',
    );
    expect(await driver.runtime.state.get(connection.connectionId)).toBeUndefined();

    // Without --at: up to the latest settled boundary (10:00), so the 10:14 event waits for its window.
    const now = await cli(['export', '--connection', connection.connectionId, '--json']);
    expect(now.stderr).toBe('');
    expect(now.code).toBe(0);
    expect(JSON.parse(now.stdout)).toMatchObject({ windowEnd: '2026-11-02T10:00:00.000Z' });
    clock.set(at('10:21'));
    const tick = await cli(['tick', '--frequency', 'FIFTEEN_MINUTES']);
    expect(tick.stderr).toBe('');
    expect(tick.code).toBe(0);
    const state = await driver.runtime.state.get(connection.connectionId);
    expect(state?.watermark).toEqual(at('10:15'));
    expect(await exportedUuids()).toEqual(['late']);
  });
});
