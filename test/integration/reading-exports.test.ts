/**
 * The customer query kit (cli/query-kit.ts, docs/reading-exports.md) on demo-like output: the
 * DuckDB query the CLI prints, pointed at a local copy of the customer buckets, reads every
 * exported record once with `export_day` from the folder, and no manifest or connection-test probe
 * as data; the completeness query finds nothing wrong, then finds a deleted data file.
 *
 * The output is made as the demo makes it (local engines, the real stager and exporter, the
 * buckets copied to a folder keeping keys), over three days with small parts (`_2`, `_3` files),
 * an empty window, a folder path and a selected-events connection; cheaper than a full demo day.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckdbCompletenessQuery, duckdbManifestsQuery, duckdbQuery } from '../../cli/query-kit.ts';
import { type ConnectionInput, parseConnection } from '../../lambdas/domain/connection.ts';
import { ManualClock } from '../../local/clock.ts';
import { type LocalEngines, startLocalEngines } from '../../local/engines.ts';
import { createEventGenerator } from '../../local/events.ts';
import { createHarness, readBucket } from '../../local/harness.ts';

const DAY0 = Date.parse('2026-11-20T00:00:00Z');
const HOUR = 3_600_000;
const BUCKET = 'acme-analytics-exports';
const SELECTED = ['Email Opened', 'MOE_EMAIL_SENT', 'NOTIFICATION_CLICKED_MOE'];

const common = {
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop',
  bucketName: BUCKET,
  bucketRegion: 'us-east-1',
  userAttributes: 'ALL',
  deviceAttributes: 'ALL',
  frequency: 'DAILY',
  status: 'ACTIVE',
  createdAt: new Date(DAY0).toISOString(),
} as const;
const CONNECTIONS: ConnectionInput[] = [
  {
    ...common,
    connectionId: 'conn_01KXQUERYKITALL000000000',
    connectionName: 'all-events',
    folderPath: 'moengage/raw',
    events: { mode: 'ALL' },
  },
  {
    ...common,
    connectionId: 'conn_01KXQUERYKITSEL000000000',
    connectionName: 'campaign-events',
    events: { mode: 'SELECTED', names: SELECTED },
  },
];

let outDir: string;
let engines: LocalEngines | undefined;
let duck: DuckDBConnection;
/** event_uuids staged, per connection id (what each connection must export). */
const staged = new Map<string, string[]>(CONNECTIONS.map((c) => [c.connectionId, []]));

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'reading-exports-'));
  engines = await startLocalEngines();
  await engines.createBucket(BUCKET);
  const clock = new ManualClock(new Date(DAY0));
  const { driver, s3 } = await createHarness(engines, { clock, config: { partSizeBytes: 2 * 1024 } });
  for (const row of CONNECTIONS) await driver.runtime.connections.put(parseConnection(row));
  const generate = createEventGenerator({ appId: 'acme-shop', seed: 5 });
  // Days 0 and 2 have events (six batches each); day 1 none: an empty window with a manifest.
  for (const day of [0, 1, 2]) {
    for (const hour of day === 1 ? [] : [1, 5, 9, 13, 17, 21]) {
      clock.set(new Date(DAY0 + day * 24 * HOUR + hour * HOUR));
      const events = Array.from({ length: 40 }, () => generate(clock.now()));
      await driver.stage(events);
      for (const { event } of events) {
        const uuid = String(event.event_uuid);
        staged.get(CONNECTIONS[0]!.connectionId)!.push(uuid);
        if (SELECTED.includes(String(event.event_name)) || SELECTED.includes(String(event.event_code)))
          staged.get(CONNECTIONS[1]!.connectionId)!.push(uuid);
      }
    }
    clock.set(new Date(DAY0 + (day + 1) * 24 * HOUR + 10 * 60_000));
    await driver.tick('DAILY', clock.now());
  }
  // Copy the bucket keeping keys, as the demo does.
  for (const file of await readBucket(s3, BUCKET)) {
    const path = join(outDir, BUCKET, file.key);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.body);
  }
  duck = await (await DuckDBInstance.create(':memory:')).connect();
}, 240_000);
afterAll(async () => {
  duck?.closeSync();
  await engines?.stop();
  rmSync(outDir, { recursive: true, force: true });
});

/** Where a connection's objects were copied: <out>/<bucket>/<[folder_]name>/. */
function locationOf(connectionId: string): string {
  const row = CONNECTIONS.find((c) => c.connectionId === connectionId)!;
  return join(outDir, BUCKET, `${row.folderPath ? `${row.folderPath}_` : ''}${row.connectionName}/`);
}

/** Every file under `dir`, recursively, as paths. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The event_uuids in the data files, read without DuckDB (gunzip, one JSON record per line). */
function uuidsInDataFiles(location: string): string[] {
  return filesUnder(location)
    .filter((path) => /\/export_day=[^/]+\/event_exports_\d+(_\d+)?\.json\.gz$/.test(path))
    .flatMap((path) =>
      gunzipSync(readFileSync(path))
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { event: { event_uuid: string } }).event.event_uuid),
    );
}

const anyConnection = parseConnection({
  connectionId: 'conn_01KXQUERYKIT000000000000',
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop',
  connectionName: 'unused',
  bucketName: 'unused-bucket',
  bucketRegion: 'us-east-1',
  events: { mode: 'ALL' },
  userAttributes: 'ALL',
  deviceAttributes: 'ALL',
  frequency: 'DAILY',
  status: 'ACTIVE',
  createdAt: '2026-11-22T00:00:00.000Z',
});

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await duck.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}

describe('the DuckDB query of `connections athena` over demo output', () => {
  it.each(CONNECTIONS.map((c) => c.connectionId))(
    '%s: every exported record once, export_day from the folder, no manifest or probe as data',
    async (connectionId) => {
      const location = locationOf(connectionId);
      // A connection-test probe: a valid one-line JSON record, gzipped, beside the export folders.
      mkdirSync(join(location, '_connection_test'), { recursive: true });
      const probe = {
        app_name: 'x',
        event: { event_uuid: 'probe-uuid', event_name: 'probe', event_time: 1 },
      };
      writeFileSync(
        join(location, '_connection_test', 'probe_1795000000.json.gz'),
        gzipSync(`${JSON.stringify(probe)}\n`),
      );
      expect(filesUnder(location).some((path) => path.endsWith('.manifest.json'))).toBe(true);
      if (connectionId === CONNECTIONS[0]!.connectionId)
        expect(filesUnder(location).some((path) => path.endsWith('_2.json.gz'))).toBe(true);

      const read = await rows(
        `SELECT event.event_uuid AS uuid, export_day, export_date::VARCHAR AS export_date, filename
         FROM (${duckdbQuery(anyConnection, { location, filename: true })})`,
      );
      const expected = staged.get(connectionId)!;
      expect(expected.length).toBeGreaterThan(0);
      expect(uuidsInDataFiles(location).sort()).toEqual([...expected].sort());
      expect(read.map((r) => r.uuid).sort()).toEqual([...expected].sort());
      expect(new Set(read.map((r) => r.uuid)).size).toBe(read.length);
      for (const row of read) {
        expect(String(row.filename)).toMatch(/\/event_exports_\d+(_\d+)?\.json\.gz$/);
        expect(String(row.filename)).toContain(`/export_day=${row.export_day}/`);
        const [day, month, year] = String(row.export_day).split('-');
        expect(row.export_date).toBe(`${year}-${month}-${day}`);
      }

      const manifests = await rows(duckdbManifestsQuery(anyConnection, { location }));
      expect(manifests.map((m) => Number(m.sequence))).toEqual([1, 2, 3]);
      expect(manifests.reduce((n, m) => n + Number(m.totalRecords), 0)).toBe(read.length);
      expect(await rows(duckdbCompletenessQuery(anyConnection, { location }))).toEqual([]);
    },
  );

  it('the completeness query reports a data file that is missing, with its sequence and expected records', async () => {
    const location = locationOf(CONNECTIONS[0]!.connectionId);
    const victim = filesUnder(location).find(
      (path) => path.endsWith('.json.gz') && path.includes('/export_day='),
    )!;
    unlinkSync(victim);
    const problems = await rows(duckdbCompletenessQuery(anyConnection, { location }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ problem: 'file', read: null });
    expect(victim.endsWith(`/${problems[0]!.key}`)).toBe(true);
    expect(Number(problems[0]!.expected)).toBeGreaterThan(0);
  });
});
