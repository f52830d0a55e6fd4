/**
 * The verification the demo and the simulation share (local/verify.ts), on objects put straight
 * into a bucket: superseded objects are not counted, an object no manifest lists or supersedes is
 * a problem, and so are a gap between windows, a wrong record count and a wrong record frame.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createS3Client } from '../../lambdas/adapters/aws-clients.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { buildManifest, type ManifestSupersedes, serializeManifest } from '../../lambdas/domain/manifest.ts';
import { dataObjectKey, manifestObjectKey } from '../../lambdas/domain/object-keys.ts';
import { verifyConnection } from '../../local/verify.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

const at = (hhmm: string) => new Date(`2026-11-02T${hhmm}:00Z`);
let counter = 0;

function setup() {
  const e = engines();
  counter += 1;
  const bucket = `verify-${counter}`;
  const connection = parseConnection({
    connectionId: `conn_verify00000000000000${counter}`,
    appId: 'app-verify',
    appName: 'Verify',
    dbName: 'Verify DB',
    connectionName: 'verified',
    bucketName: bucket,
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: at('10:00').toISOString(),
  });
  const s3 = createS3Client({ region: e.region, endpoint: e.s3Endpoint, credentials: e.credentials });
  const put = (key: string, body: Buffer) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  /** A data part of the window ending at `windowEnd` holding `uuids` (framed for `frameEnd`). */
  async function part(windowEnd: Date, n: number, uuids: string[], frameEnd = windowEnd) {
    const lines = uuids.map((uuid) =>
      JSON.stringify({
        app_name: connection.appName,
        export_hour: String(frameEnd.getUTCHours()),
        db_name: connection.dbName,
        event: { event_uuid: uuid, event_name: 'VIEW' },
        export_day: frameEnd.toISOString().slice(0, 10),
      }),
    );
    const body = gzipSync(`${lines.join('\n')}\n`);
    const key = dataObjectKey(connection, windowEnd, n);
    await put(key, body);
    return { key, records: uuids.length, bytes: body.length, sha256: sha256(body) };
  }

  async function manifest(
    sequence: number,
    windowStart: Date,
    windowEnd: Date,
    parts: Awaited<ReturnType<typeof part>>[],
    supersedes?: ManifestSupersedes,
  ) {
    const m = buildManifest({
      connectionId: connection.connectionId,
      sequence,
      windowStart,
      windowEnd,
      parts,
      supersedes,
    });
    await put(manifestObjectKey(connection, windowEnd), Buffer.from(serializeManifest(m)));
  }

  const verify = (expected: string[], windows?: { from: Date; to: Date }) =>
    verifyConnection(s3, connection, expected, {
      decrypt: async () => undefined,
      ...(windows ? { windows } : {}),
    });

  return { e, bucket, connection, s3, part, manifest, verify };
}

function sha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

describe('verifyConnection', () => {
  it('does not count an object a manifest reports as superseded, and flags one that nothing lists or supersedes', async () => {
    const { e, bucket, connection, part, manifest, verify } = setup();
    await e.createBucket(bucket);
    const w1 = await part(at('10:15'), 1, ['a', 'b']);
    // Written by an earlier attempt under settings since changed: reported, not listed.
    const old = await part(at('10:15'), 2, ['a']);
    await manifest(1, at('10:00'), at('10:15'), [w1], {
      objects: [{ bucketName: connection.bucketName, key: old.key }],
    });
    const w2 = await part(at('10:30'), 1, ['c']);
    await manifest(2, at('10:15'), at('10:30'), [w2]);
    const stray = await part(at('10:30'), 2, ['d']);

    const result = await verify(['a', 'b', 'c', 'd'], { from: at('10:00'), to: at('10:30') });
    expect(result.superseded).toEqual([old.key]);
    expect(result.files.map((f) => f.key).sort()).toEqual([w1.key, w2.key, stray.key].sort());
    expect({ duplicates: result.duplicates, missing: result.missing, unexpected: result.unexpected }).toEqual(
      {
        duplicates: 0,
        missing: 0,
        unexpected: 0,
      },
    );
    expect(result.problems).toEqual([
      `${stray.key} is listed in 0 manifests (and not reported as superseded)`,
    ]);
  });

  it('does not count a manifest (and its part) a later manifest reports as superseded: a pending window a backfill dropped, its sequence reused', async () => {
    const { e, bucket, connection, part, manifest, verify } = setup();
    await e.createBucket(bucket);
    // Window 2 was pending (part and manifest written, not committed) under a wrong row when a
    // backfill dropped it; the re-export of window 1 reports both, and window 2 is exported again
    // with another end.
    const dropped = await part(at('10:45'), 1, ['not-this-connections']);
    await manifest(2, at('10:15'), at('10:45'), [dropped]);
    const droppedManifest = manifestObjectKey(connection, at('10:45'));
    // And a dropped window numbered past the last one exported since (its sequence not reused).
    await manifest(5, at('10:15'), at('10:30'), []);
    const pastTheEnd = manifestObjectKey(connection, at('10:30'));
    const w1 = await part(at('10:15'), 1, ['a']);
    await manifest(1, at('10:00'), at('10:15'), [w1], {
      sequence: 1,
      windowStart: at('10:00').toISOString(),
      objects: [dropped.key, droppedManifest, pastTheEnd].map((key) => ({
        bucketName: connection.bucketName,
        key,
      })),
    });
    const w2 = await part(at('11:00'), 1, ['c']);
    await manifest(2, at('10:15'), at('11:00'), [w2]);

    const result = await verify(['a', 'c'], { from: at('10:00'), to: at('11:00') });
    expect(result.problems).toEqual([]);
    expect(result.superseded.sort()).toEqual([dropped.key, droppedManifest, pastTheEnd].sort());
    expect(result.manifests.map((m) => [m.sequence, m.windowEnd])).toEqual([
      [1, at('10:15').toISOString()],
      [2, at('11:00').toISOString()],
    ]);
    expect({ duplicates: result.duplicates, missing: result.missing, unexpected: result.unexpected }).toEqual(
      { duplicates: 0, missing: 0, unexpected: 0 },
    );
  });

  it('keeps a manifest reported as superseded that was written again at the same key (the only one of its sequence)', async () => {
    const { e, bucket, connection, part, manifest, verify } = setup();
    await e.createBucket(bucket);
    const w1 = await part(at('10:15'), 1, ['a']);
    const w2 = await part(at('10:30'), 1, ['b']);
    const w2Manifest = manifestObjectKey(connection, at('10:30'));
    // Window 1 reports what a dropped attempt of the window ending 10:30 had written; window 2 then
    // ended at 10:30 too and wrote both keys again.
    await manifest(1, at('10:00'), at('10:15'), [w1], {
      objects: [w2.key, w2Manifest].map((key) => ({ bucketName: connection.bucketName, key })),
    });
    await manifest(2, at('10:15'), at('10:30'), [w2]);

    const result = await verify(['a', 'b'], { from: at('10:00'), to: at('10:30') });
    expect(result.problems).toEqual([]);
    expect(result.superseded).toEqual([]);
    expect(result.manifests.map((m) => m.sequence)).toEqual([1, 2]);
    expect({ duplicates: result.duplicates, missing: result.missing, unexpected: result.unexpected }).toEqual(
      { duplicates: 0, missing: 0, unexpected: 0 },
    );
  });

  it('does not count what the state has yet to report as superseded (a dropped window, no export since)', async () => {
    const { e, bucket, connection, s3, part, manifest, verify } = setup();
    await e.createBucket(bucket);
    const w1 = await part(at('10:15'), 1, ['a']);
    await manifest(1, at('10:00'), at('10:15'), [w1]);
    // Window 2 was written, then a backfill dropped it; the next export (after the check) reports it.
    const dropped = await part(at('10:30'), 1, ['b']);
    await manifest(2, at('10:15'), at('10:30'), [dropped]);
    const droppedManifest = manifestObjectKey(connection, at('10:30'));

    const without = await verify(['a'], { from: at('10:00'), to: at('10:15') });
    expect(without.problems).toContain(
      'manifests end at 2026-11-02T10:30:00.000Z, not at 2026-11-02T10:15:00.000Z',
    );
    const result = await verifyConnection(s3, connection, ['a'], {
      decrypt: async () => undefined,
      windows: { from: at('10:00'), to: at('10:15') },
      pendingSuperseded: [dropped.key, droppedManifest],
    });
    expect(result.problems).toEqual([]);
    expect(result.superseded.sort()).toEqual([dropped.key, droppedManifest].sort());
    expect(result.manifests.map((m) => m.sequence)).toEqual([1]);
    expect({ duplicates: result.duplicates, missing: result.missing, unexpected: result.unexpected }).toEqual(
      { duplicates: 0, missing: 0, unexpected: 0 },
    );
  });

  it('flags a gap between windows, a wrong record count and a wrong record frame', async () => {
    const { e, bucket, part, manifest, verify } = setup();
    await e.createBucket(bucket);
    const w1 = await part(at('10:15'), 1, ['a', 'b'], at('11:15'));
    await manifest(1, at('10:00'), at('10:15'), [{ ...w1, records: 3 }]);
    const w2 = await part(at('10:45'), 1, ['c']);
    await manifest(2, at('10:30'), at('10:45'), [w2]);

    const result = await verify(['a', 'b', 'c'], { from: at('10:00'), to: at('11:00') });
    expect(result.problems).toEqual(
      expect.arrayContaining([
        `${w1.key}: 2 records have a wrong frame (app/db name, export day/hour)`,
        `manifest 1: record count of ${w1.key} does not match`,
        'manifest 2 starts at 2026-11-02T10:30:00.000Z, previous window ended 2026-11-02T10:15:00.000Z',
        'manifests end at 2026-11-02T10:45:00.000Z, not at 2026-11-02T11:00:00.000Z',
      ]),
    );
  });
});
