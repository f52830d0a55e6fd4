/**
 * The examples of docs/producers.md and docs/customers.md, checked against the software on the
 * local engines: every producer record is staged (or quarantined) by `s3-event-export stage` as
 * the guide says, and a real PGP export is read the way the customer guide says — its keys,
 * record fields, manifest fields, and the GnuPG + gunzip command run as printed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { createDynamoDocumentClient, createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { dataObjectKey, manifestObjectKey } from '../../lambdas/domain/object-keys.ts';
import { ManualClock } from '../../local/clock.ts';
import { isDataKey, isManifestKey, listKeys, readObject } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';
import { createGpgHome, type GpgHome } from '../support/gpg.ts';

const engines = useLocalEngines();
const root = new URL('../../', import.meta.url);
const BUCKET = 'customer-guides';
const dir = mkdtempSync(join(tmpdir(), 'guides-'));
// gpg makes keys with the real clock: the export's window is the next quarter hour after it.
const QUARTER = 15 * 60_000;
const WINDOW_START = new Date(Math.floor(Date.now() / QUARTER) * QUARTER + QUARTER);
const WINDOW_END = new Date(WINDOW_START.getTime() + QUARTER);
const clock = new ManualClock(new Date(WINDOW_START.getTime() + 5 * 60_000));
let home: GpgHome;

/** The fenced blocks of a guide whose info string is `<language> <label>`. */
function blocks(doc: string, label: string): string[] {
  const text = readFileSync(new URL(`docs/${doc}`, root), 'utf8');
  return [...text.matchAll(/^```(\w+) ([\w-]+)\n([\s\S]*?)^```$/gm)]
    .filter((m) => m[2] === label)
    .map((m) => (m[3] ?? '').trim());
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

async function stageLine(line: string) {
  const path = join(dir, `line-${Math.random().toString(36).slice(2)}.ndjson`);
  writeFileSync(path, `${JSON.stringify(JSON.parse(line))}\n`);
  const run = await cli(['stage', path, '--json']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { stagedEvents: number; quarantinedRecords: number };
}

beforeAll(async () => {
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
  home = await createGpgHome();
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await home?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('docs/producers.md and docs/customers.md against a real export', () => {
  it('producer examples are staged or quarantined as documented; the customer reads the export as documented', async () => {
    const key = await home.createKey('curve25519');
    const e = engines();
    await e.createBucket(BUCKET);
    const dynamo = createDynamoDocumentClient({
      region: e.region,
      endpoint: e.dynamoEndpoint,
      credentials: e.credentials,
    });
    const connection = parseConnection({
      connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
      appId: 'acme-shop',
      appName: 'Acme Shop',
      dbName: 'Acme Shop Production',
      connectionName: 'daily',
      bucketName: BUCKET,
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'FIFTEEN_MINUTES',
      pgpPublicKey: key.armoredPublicKey,
      createdAt: WINDOW_START.toISOString(),
    });
    await new DynamoConnectionRepository(dynamo, e.tables.connections, e.tables.exportState).put(connection);

    // Producers: each accepted example is staged, each quarantined one is not.
    const accepted = blocks('producers.md', 'accepted');
    const quarantined = blocks('producers.md', 'quarantined');
    expect(accepted.length).toBeGreaterThan(0);
    expect(quarantined.length).toBeGreaterThan(1);
    for (const line of accepted)
      expect(await stageLine(line)).toMatchObject({ stagedEvents: 1, quarantinedRecords: 0 });
    for (const line of quarantined)
      expect(await stageLine(line)).toMatchObject({ stagedEvents: 0, quarantinedRecords: 1 });
    await stageLine(
      '{"app_id":"acme-shop","event":{"event_uuid":"a-0","event_name":"VIEW_RADAR","event_time":1790000000}}',
    );

    clock.set(new Date(WINDOW_END.getTime() + 5 * 60_000));
    const exported = await cli(['export', '--connection', connection.connectionId]);
    expect(exported.code, `${exported.stdout} ${exported.stderr}`).toBe(0);
    const s3 = createS3Client({ region: e.region, endpoint: e.s3Endpoint, credentials: e.credentials });
    const keys = await listKeys(s3, BUCKET, 'daily/');
    const dataKey = keys.find(isDataKey) as string;
    const manifestKey = keys.find(isManifestKey) as string;
    const windowEnd = WINDOW_END;

    // Keys: the examples are what the key functions produce, and the real keys have that form.
    const [part1, part2, manifestExample] = blocks('customers.md', 'keys')[0]!.split('\n');
    const example = { connectionName: 'daily_purchases', folderPath: 'my_folder' };
    const exampleEnd = new Date(Number(/event_exports_(\d+)/.exec(part1!)?.[1]) * 1000);
    expect([part1, part2, manifestExample]).toEqual([
      dataObjectKey(example, exampleEnd, 1),
      dataObjectKey(example, exampleEnd, 2),
      manifestObjectKey(example, exampleEnd),
    ]);
    expect(dataKey).toBe(`${dataObjectKey(connection, windowEnd, 1)}`);
    expect(dataKey).toMatch(/^daily\/export_day=\d{2}-\d{2}-\d{4}\/event_exports_\d+\.json\.gz\.gpg$/);
    expect(manifestKey).toBe(manifestObjectKey(connection, windowEnd));

    // Decrypt as documented: the command of the guide, run in a shell with the customer's keyring.
    const [command] = blocks('customers.md', 'decrypt');
    const work = mkdtempSync(join(dir, 'customer-'));
    writeFileSync(join(work, 'event_exports_1793614500.json.gz.gpg'), await readObject(s3, BUCKET, dataKey));
    execFileSync('sh', ['-c', command!], { cwd: work, env: { ...process.env, GNUPGHOME: home.homedir } });
    const lines = readFileSync(join(work, 'event_exports_1793614500.ndjson'), 'utf8').trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(2);

    // Records: the documented fields, in the documented order, with the documented day formats.
    const recordExample = JSON.parse(blocks('customers.md', 'record')[0]!) as Record<string, unknown>;
    const real = records.find((r) => (r.event as { event_uuid: string }).event_uuid === 'a-0') as Record<
      string,
      unknown
    >;
    expect(Object.keys(real)).toEqual(Object.keys(recordExample));
    expect({ ...real, export_day: 'd', export_hour: 'h' }).toEqual({
      ...recordExample,
      export_day: 'd',
      export_hour: 'h',
    });
    expect(real.export_day).toBe(WINDOW_END.toISOString().slice(0, 10));
    expect(real.export_hour).toBe(String(WINDOW_END.getUTCHours()));

    // Manifest: the documented fields; its file entry matches the object (size, SHA-256, records).
    const manifestDoc = JSON.parse(blocks('customers.md', 'manifest')[0]!) as Record<string, unknown>;
    const manifest = JSON.parse((await readObject(s3, BUCKET, manifestKey)).toString('utf8')) as {
      files: { key: string; records: number; bytes: number; sha256: string }[];
      sequence: number;
    } & Record<string, unknown>;
    expect(Object.keys(manifest)).toEqual(Object.keys(manifestDoc));
    // The examples describe one window: the record's day and hour are those of the manifest's end.
    const docEnd = new Date(manifestDoc.windowEnd as string);
    expect(recordExample.export_day).toBe((manifestDoc.windowEnd as string).slice(0, 10));
    expect(recordExample.export_hour).toBe(String(docEnd.getUTCHours()));
    expect(manifestDoc.windowEndEpoch).toBe(docEnd.getTime() / 1000);
    const docFiles = manifestDoc.files as Record<string, unknown>[];
    expect(Object.keys(manifest.files[0]!)).toEqual(Object.keys(docFiles[0]!));
    const stored = await readObject(s3, BUCKET, dataKey);
    const { createHash } = await import('node:crypto');
    expect(manifest.files).toEqual([
      {
        key: dataKey,
        records: 2,
        bytes: stored.length,
        sha256: createHash('sha256').update(stored).digest('hex'),
      },
    ]);
    expect(manifest.sequence).toBe(1);
    expect(
      gunzipSync(
        execFileSync('gpg', ['--batch', '--decrypt'], {
          input: stored,
          env: { ...process.env, GNUPGHOME: home.homedir },
        }),
      )
        .toString('utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(2);
  });
});
