/**
 * The operations commands (stage, tick, export, status, history, usage, rerun) on the local
 * engines, configured as an operator configures the CLI (environment variables), with the real
 * adapters: staging bucket and customer bucket in s3rver, the three tables in DynamoDB Local.
 * Every assertion reads what the command left in the buckets and tables.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { createDynamoDocumentClient, createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { DynamoStagingLedger } from '../../lambdas/adapters/dynamo-staging-ledger.ts';
import { S3StagingStore } from '../../lambdas/adapters/s3-staging-store.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import type { WindowManifest } from '../../lambdas/domain/manifest.ts';
import { compactDueSlots } from '../../lambdas/usecases/compact-slot.ts';
import { ManualClock } from '../../local/clock.ts';
import { gzipRecords, isDataKey, isManifestKey, listKeys, readObject } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const BUCKET = 'customer-operations-cli';
const clock = new ManualClock(new Date('2026-11-02T10:00:00Z'));
const dir = mkdtempSync(join(tmpdir(), 'operations-cli-'));

beforeAll(async () => {
  // The CLI reads its settings from the environment, and the SDK its endpoints and credentials.
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
  await engines().createBucket(BUCKET);
});
afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

function adapters() {
  const e = engines();
  const documentClient = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  return {
    connections: new DynamoConnectionRepository(documentClient, e.tables.connections, e.tables.exportState),
    state: new DynamoExportStateStore(documentClient, e.tables.exportState),
    ledger: new DynamoStagingLedger(documentClient, e.tables.stagingLedger),
    documentClient,
    s3: createS3Client({ region: e.region, endpoint: e.s3Endpoint, credentials: e.credentials }),
  };
}

async function cli(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env: { ...engines().env },
    clock,
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

function ndjson(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function eventLines(appId: string, prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      app_id: appId,
      event: { event_uuid: `${prefix}-${i}`, event_name: 'VIEW_RADAR', event_time: 1_790_000_000 + i },
    }),
  );
}

const connection = parseConnection({
  connectionId: 'conn_opscli00000001',
  appId: 'app-ops-cli',
  appName: 'Ops CLI',
  dbName: 'Ops CLI DB',
  connectionName: 'ops',
  bucketName: BUCKET,
  bucketRegion: 'us-east-1',
  events: { mode: 'ALL' },
  frequency: 'FIFTEEN_MINUTES',
  createdAt: '2026-11-02T10:00:00.000Z',
});
const INVALID_ID = 'conn_opscli0000bad';

async function bucketWindows() {
  const { s3 } = adapters();
  const keys = await listKeys(s3, BUCKET, 'ops/');
  const manifests: WindowManifest[] = [];
  for (const key of keys.filter(isManifestKey))
    manifests.push(JSON.parse((await readObject(s3, BUCKET, key)).toString('utf8')) as WindowManifest);
  const uuids: string[] = [];
  for (const key of keys.filter(isDataKey))
    for (const record of gzipRecords(await readObject(s3, BUCKET, key)))
      uuids.push((record.event as { event_uuid: string }).event_uuid);
  return { keys, manifests: manifests.sort((a, b) => a.sequence - b.sequence), uuids: uuids.sort() };
}

// The tests of this file build on each other, in order: one connection's life through the CLI.
describe('cli operations on the local engines', () => {
  it('stage: well-formed lines are staged under the app, a malformed one is quarantined, a file is its own shard and a re-run stages nothing twice', async () => {
    const { connections, ledger, s3, documentClient } = adapters();
    await connections.put(connection);
    // A row that fails validation: the tick records its error on a state row of its own.
    await documentClient.send(
      new PutCommand({
        TableName: engines().tables.connections,
        Item: {
          ...connection,
          connectionId: INVALID_ID,
          connectionName: 'broken',
          bucketName: 'Not_A_Bucket',
        },
      }),
    );
    clock.set(new Date('2026-11-02T10:05:00Z'));
    const first = await cli([
      'stage',
      ndjson('a.ndjson', [...eventLines(connection.appId, 'a', 4), '{"app_id": 42']),
      '--json',
    ]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const firstTotals = JSON.parse(first.stdout) as {
      shardId: string;
      stagedEvents: number;
      quarantinedRecords: number;
      lastSequence: string;
    };
    expect(firstTotals).toMatchObject({
      records: 5,
      stagedEvents: 4,
      quarantinedRecords: 1,
    });
    // A file is its own shard (named by its content), never a shard of the stream.
    expect(firstTotals.shardId).toMatch(/^cli-[0-9a-f]{16}$/);

    // Running it again (after an interrupted run, or by mistake) stages nothing twice.
    const again = await cli(['stage', join(dir, 'a.ndjson')]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^staged 0 event\(s\), quarantined 0 record\(s\) from 5 line\(s\)/);
    expect(again.stdout).toContain('5 record(s) were already staged (an earlier run of this file)');

    clock.set(new Date('2026-11-02T10:07:00Z'));
    const second = await cli([
      'stage',
      ndjson('b.ndjson', eventLines(connection.appId, 'b', 2)),
      '--batch-size',
      '1',
    ]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(
      /^staged 2 event\(s\), quarantined 0 record\(s\) from 2 line\(s\) in 2 batch\(es\)/,
    );
    const shardB = (/shard (cli-[0-9a-f]{16})/.exec(second.stdout) ?? [])[1] as string;
    expect(shardB).not.toBe(firstTotals.shardId);
    const checkpoint = await ledger.getCheckpoint(shardB);
    // Each file's lines are numbered from the same base: b's 2 lines end 3 before a's 5.
    expect(BigInt(checkpoint.stagedThrough ?? '0')).toBe(BigInt(firstTotals.lastSequence) - 3n);
    expect(checkpoint.pending).toBeUndefined();

    const staged = await listKeys(s3, engines().stagingBucket, 'segments/');
    expect(staged).toHaveLength(3); // one segment per batch, whatever its apps
    // The compactor gathers the slot's refused records into its quarantine file.
    const settled = { now: () => new Date(clock.now().getTime() + 20 * 60_000) };
    const store = new S3StagingStore(s3, engines().stagingBucket);
    await compactDueSlots(settled.now(), { store, clock: settled });
    // The slot of 10:00 is compacted now: a machine whose clock says 10:08 must not stage into it.
    const late = await cli(['stage', ndjson('late.ndjson', eventLines(connection.appId, 'late', 1))]);
    expect(late.code).not.toBe(0);
    expect(late.stderr).toContain('is already compacted: the clock is behind');
    expect(await listKeys(s3, engines().stagingBucket, 'segments/')).toHaveLength(3);
    const quarantined = await listKeys(s3, engines().stagingBucket, 'quarantine/');
    expect(quarantined).toHaveLength(1);
    const [line] = gzipRecords(await readObject(s3, engines().stagingBucket, quarantined[0]!));
    expect(String(line?.reason)).toMatch(/JSON/);
    expect(Buffer.from(String(line?.data), 'base64').toString('utf8')).toBe('{"app_id": 42');
  });

  it("stage: a re-run just after an interrupted run's slot closed waits for the slot to be final, then stages each line once", async () => {
    const { ledger, s3 } = adapters();
    const staging = new S3StagingStore(s3, engines().stagingBucket);
    const path = ndjson('settle.ndjson', eventLines('app-cli-settle', 'settle', 2));
    const run = async (store: S3StagingStore) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(['stage', path, '--json'], {
        env: { ...engines().env },
        clock,
        io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
        overrides: { stagingLedger: async () => ledger, stagingStore: async () => store },
      });
      return { code, stdout, stderr };
    };
    // The first run is killed with its segment PUT in flight, 20 s before its slot closes.
    const killed: S3StagingStore = Object.create(staging);
    killed.createObject = async () => {
      throw new Error('the run was killed with its segment PUT in flight');
    };
    clock.set(new Date('2026-11-02T11:14:40Z'));
    expect((await run(killed)).code).not.toBe(0);

    clock.set(new Date('2026-11-02T11:15:20Z'));
    const early = await run(staging);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toContain('Run the same command again after 2026-11-02T11:17:00.000Z');
    expect(await listKeys(s3, engines().stagingBucket, 'segments/1793618100000/')).toEqual([]);

    clock.set(new Date('2026-11-02T11:17:30Z'));
    const later = await run(staging);
    expect(later.code).toBe(0);
    expect(JSON.parse(later.stdout)).toMatchObject({ records: 2, stagedEvents: 2 });
    // Its slot had closed without the segment: a fresh stage time, in the next slot.
    expect(await listKeys(s3, engines().stagingBucket, 'segments/1793618100000/')).toHaveLength(1);
  });

  it('tick (no queue): dispatches and runs each job in-process, printing connection, window, files and records', async () => {
    clock.set(new Date('2026-11-02T10:20:00Z'));
    const run = await cli(['tick', '--frequency', 'FIFTEEN_MINUTES', '--at', '2026-11-02T10:20:00Z']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'tick FIFTEEN_MINUTES at 2026-11-02T10:20:00.000Z: window end 2026-11-02T10:15:00.000Z: 1 job(s)',
    );
    expect(run.stdout).toContain(
      `${connection.connectionId}  committed  [2026-11-02T10:00:00.000Z, 2026-11-02T10:15:00.000Z)  seq 1  1 file(s)  6 record(s)`,
    );
    expect(run.stderr).toContain(`invalid connection row ${INVALID_ID}`);
    const { manifests, uuids } = await bucketWindows();
    expect(manifests.map((m) => [m.sequence, m.totalRecords])).toEqual([[1, 6]]);
    expect(uuids).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'b-0', 'b-1']);
  });

  it('export: exports one connection up to the window end of its frequency at --at', async () => {
    clock.set(new Date('2026-11-02T10:40:00Z'));
    await cli(['stage', ndjson('c.ndjson', eventLines(connection.appId, 'c', 3))]);
    clock.set(new Date('2026-11-02T11:10:00Z'));
    const run = await cli([
      'export',
      '--connection',
      connection.connectionId,
      '--at',
      '2026-11-02T11:07:00Z',
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      connectionId: connection.connectionId,
      windowEnd: '2026-11-02T11:00:00.000Z',
      status: 'committed',
      windows: [
        {
          windowStart: '2026-11-02T10:15:00.000Z',
          windowEnd: '2026-11-02T11:00:00.000Z',
          sequence: 2,
          files: 1,
          records: 3,
        },
      ],
    });
    const again = await cli([
      'export',
      '--connection',
      connection.connectionId,
      '--at',
      '2026-11-02T11:07:00Z',
    ]);
    expect(again.stdout).toContain(`${connection.connectionId}  up-to-date`);
    expect((await bucketWindows()).manifests.map((m) => m.sequence)).toEqual([1, 2]);
    expect((await cli(['export', '--connection', 'conn_nosuch000000'])).stderr).toBe(
      'error: connection conn_nosuch000000 not found\n',
    );
  });

  it('status: watermark, lag, sequence and last file per connection, and the row whose state holds only an error', async () => {
    clock.set(new Date('2026-11-02T12:10:00Z'));
    const run = await cli(['status', '--json']);
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as Record<string, unknown>[];
    const ok = rows.find((r) => r.connectionId === connection.connectionId);
    expect(ok).toMatchObject({
      frequency: 'FIFTEEN_MINUTES',
      status: 'ACTIVE',
      watermark: '2026-11-02T11:00:00.000Z',
      lagSeconds: 3600, // latest boundary 12:00
      sequence: 2,
      lastFileKey: expect.stringMatching(/^ops\/export_day=02-11-2026\/event_exports_\d+\.json\.gz$/),
    });
    expect(ok?.lastError).toBeUndefined();
    const bad = rows.find((r) => r.connectionId === INVALID_ID);
    expect(bad?.watermark).toBeUndefined();
    expect(bad?.lastError).toMatchObject({ code: 'INVALID_CONNECTION' });

    const text = await cli(['status']);
    expect(text.stdout.split('\n')[0]).toMatch(/^CONNECTION ID +NAME +FREQUENCY +STATUS +WATERMARK +LAG/);
    expect(text.stdout).toMatch(
      new RegExp(
        `^${connection.connectionId} +ops +FIFTEEN_MINUTES +ACTIVE +2026-11-02T11:00:00.000Z +1h +2 `,
        'm',
      ),
    );
    expect(text.stdout).toMatch(
      new RegExp(`^${INVALID_ID} .* INVALID_CONNECTION: the connection row is invalid`, 'm'),
    );
  });

  it('history: the committed windows, newest first, as the manifests in the bucket record them', async () => {
    const run = await cli(['history', '--connection', connection.connectionId, '--json']);
    expect(run.code).toBe(0);
    const windows = JSON.parse(run.stdout) as {
      sequence: number;
      windowStart: string;
      windowEnd: string;
      files: number;
      records: number;
      bytes: number;
      manifestKey: string;
    }[];
    const { manifests, keys } = await bucketWindows();
    expect(windows.map((w) => [w.sequence, w.windowStart, w.windowEnd, w.files, w.records, w.bytes])).toEqual(
      [...manifests]
        .reverse()
        .map((m) => [m.sequence, m.windowStart, m.windowEnd, m.files.length, m.totalRecords, m.totalBytes]),
    );
    for (const w of windows) expect(keys).toContain(w.manifestKey);
    const limited = await cli(['history', '--connection', connection.connectionId, '--limit', '1']);
    expect(limited.stdout.trim().split('\n')).toHaveLength(2);
    expect(limited.stdout).toMatch(/^2 +2026-11-02T10:15:00.000Z +2026-11-02T11:00:00.000Z +1 +3 /m);
  });

  it('usage: events, files and bytes of the month equal the manifests in the bucket', async () => {
    const run = await cli(['usage', '--month', '2026-11', '--json']);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as {
      connections: { connectionId: string; events: number; files: number; bytes: number }[];
    };
    const { manifests } = await bucketWindows();
    expect(out.connections.find((u) => u.connectionId === connection.connectionId)).toEqual({
      connectionId: connection.connectionId,
      month: '2026-11',
      events: manifests.reduce((n, m) => n + m.totalRecords, 0),
      files: manifests.reduce((n, m) => n + m.files.length, 0),
      bytes: manifests.reduce((n, m) => n + m.totalBytes, 0),
    });
    const october = await cli(['usage', '--month', '2026-10', '--connection', connection.connectionId]);
    expect(october.stdout).toMatch(new RegExp(`^${connection.connectionId} +- +0 +0 +0 \\(0 B\\)$`, 'm'));
    expect((await cli(['usage', '--month', '2026-13'])).code).toBe(2);
  });

  it('rerun: a deleted data file comes back byte for byte under the same key, the manifest is the same, the state is untouched', async () => {
    const { s3, state } = adapters();
    const before = await bucketWindows();
    const first = before.manifests[0]!;
    const dataKey = first.files[0]!.key;
    const dataBefore = await readObject(s3, BUCKET, dataKey);
    const manifestKey = dataKey.replace(/\.json\.gz$/, '.manifest.json');
    const manifestBefore = await readObject(s3, BUCKET, manifestKey);
    const stateBefore = await state.get(connection.connectionId);
    const usageBefore = await state.getUsage(connection.connectionId, '2026-11');
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: dataKey }));

    const run = await cli([
      'rerun',
      '--connection',
      connection.connectionId,
      '--window-end',
      first.windowEnd,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `rewrote window [${first.windowStart}, ${first.windowEnd}) of ${connection.connectionId}: sequence 1, 1 file(s), 6 record(s)`,
    );
    expect((await readObject(s3, BUCKET, dataKey)).equals(dataBefore)).toBe(true);
    expect((await readObject(s3, BUCKET, manifestKey)).equals(manifestBefore)).toBe(true);
    expect(await state.get(connection.connectionId)).toEqual(stateBefore);
    expect(await state.getUsage(connection.connectionId, '2026-11')).toEqual(usageBefore);
    expect(await state.listHistory(connection.connectionId)).toHaveLength(2);
  });

  it('rerun verifies before it writes: staged data that changed since the commit is refused with no object in the bucket modified; --force writes it and says so', async () => {
    const { s3 } = adapters();
    const first = (await bucketWindows()).manifests[0]!;
    const snapshot = async () => {
      const keys = await listKeys(s3, BUCKET, '');
      return new Map(await Promise.all(keys.map(async (k) => [k, await readObject(s3, BUCKET, k)] as const)));
    };
    // The slot was compacted before: drop its index (staging refuses a compacted slot, and the
    // rerun compacts it again with the late segment).
    const slotIndexes = await listKeys(s3, engines().stagingBucket, 'slots/2026-11-02/1793613600000.index');
    expect(slotIndexes).toHaveLength(1);
    await s3.send(new DeleteObjectCommand({ Bucket: engines().stagingBucket, Key: slotIndexes[0]! }));
    // Three more events staged inside the committed window [10:00, 10:15): staging no longer matches the history.
    const saved = clock.now();
    clock.set(new Date('2026-11-02T10:07:00Z'));
    expect((await cli(['stage', ndjson('late2.ndjson', eventLines(connection.appId, 'late', 3))])).code).toBe(
      0,
    );
    clock.set(saved);
    const before = await snapshot();
    const argv = ['rerun', '--connection', connection.connectionId, '--window-end', first.windowEnd];

    const refused = await cli(argv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('rerun refused (DIFFERS_FROM_HISTORY)');
    expect(refused.stderr).toContain('9 records now, 6 when committed');
    expect(refused.stderr).toContain('nothing was written');
    const after = await snapshot();
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [key, bytes] of before) expect(after.get(key)?.equals(bytes), key).toBe(true);

    const forced = await cli([...argv, '--force', '--json']);
    expect(forced.code).toBe(0);
    const report = JSON.parse(forced.stdout) as { forced: boolean; records: number; differences: string[] };
    expect(report).toMatchObject({ forced: true, records: 9, hashesCompared: true });
    expect(report.differences[0]).toContain('9 records now, 6 when committed');
    const dataKey = first.files[0]!.key;
    expect(gzipRecords(await readObject(s3, BUCKET, dataKey))).toHaveLength(9);
  });

  it('rerun refuses a window that is not in the history, and one that starts before the staging retention', async () => {
    const missing = await cli([
      'rerun',
      '--connection',
      connection.connectionId,
      '--window-end',
      '2026-11-02T10:30:00Z',
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^error: rerun refused \(WINDOW_NOT_IN_HISTORY\): connection conn_opscli00000001 has no committed window ending at 2026-11-02T10:30:00.000Z \(latest: 2026-11-02T11:00:00.000Z/,
    );

    // 14 days after 10:10: the first window [10:00, 10:15) reaches before it, the second [10:15, 11:00) does not.
    clock.set(new Date('2026-11-16T10:10:00Z'));
    const expired = await cli([
      'rerun',
      '--connection',
      connection.connectionId,
      '--window-end',
      '2026-11-02T10:15:00Z',
    ]);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toContain('rerun refused (BEYOND_RETENTION)');
    // The later window, still within the retention, is accepted.
    const recent = await cli([
      'rerun',
      '--connection',
      connection.connectionId,
      '--window-end',
      '2026-11-02T11:00:00Z',
    ]);
    expect(recent.code).toBe(0);
  });
});
