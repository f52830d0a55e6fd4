/**
 * A lease taken over while its exporter's PGP upload is in flight: the stalled upload must never
 * land after the new holder's, or the manifest's SHA-256 would not match the stored bytes (PGP
 * output differs on every encryption).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { dataObjectKey } from '../../lambdas/domain/object-keys.ts';
import type { ExportOutcome } from '../../lambdas/usecases/export-window.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('a PGP window whose lease is taken over during an upload', () => {
  it("never lets the stalled exporter's part land after the new holder's: every manifest SHA-256 matches the stored bytes", async () => {
    const e = engines();
    const bucket = 'customer-takeover-pgp';
    await e.createBucket(bucket);
    const { privateKey, publicKey } = await openpgp.generateKey({
      userIDs: [{ name: 'Customer', email: 'c@example.test' }],
      date: new Date('2026-01-01T00:00:00Z'),
      format: 'armored',
    });
    const clock = new ManualClock(new Date('2026-11-07T00:00:00Z'));
    const connection = parseConnection({
      connectionId: 'conn_takeover00001',
      appId: 'app-takeover',
      appName: 'Takeover',
      dbName: 'Takeover DB',
      connectionName: 'takeover',
      bucketName: bucket,
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'DAILY',
      createdAt: '2026-11-07T00:00:00Z',
      pgpPublicKey: publicKey,
    });
    const windowEnd = new Date('2026-11-08T00:00:00Z');
    const job = { connectionId: connection.connectionId, windowEnd: windowEnd.toISOString() };
    const stalledKey = dataObjectKey(connection, windowEnd, 2);

    let rival: ExportOutcome | undefined;
    let stalling = false;
    let stalledLanded = false;
    let leaseMs = 0;
    let runRival!: () => Promise<ExportOutcome>;
    const { driver, s3 } = await createHarness(e, {
      clock,
      // Parts of one staged object each: three parts.
      config: { partSizeBytes: 1 },
      exportOverrides: { fencePollMs: 10 },
      sink: (real) => ({
        async putObject(target, key, body, contentType, options) {
          if (key !== stalledKey || stalling) return real.putObject(target, key, body, contentType, options);
          stalling = true;
          // Exporter A's part 2 is sent, and its answer stalls past A's lease; B takes the window
          // over meanwhile, writes part 2 again (other PGP bytes), its manifest, and commits.
          const sent = await readAll(body);
          clock.advance(leaseMs + 1_000);
          rival = await runRival();
          await new Promise((resolve) => setTimeout(resolve, 50));
          // Now A's request would land, after B's, unless A abandoned it.
          const stored = await real.putObject(target, key, Readable.from([sent]), contentType, options);
          stalledLanded = true;
          return stored;
        },
      }),
    });
    leaseMs = driver.runtime.exportDeps().settings.leaseMs;
    runRival = () => driver.exportJob(job);
    await driver.runtime.connections.put(connection);
    const staged: string[] = [];
    for (let hour = 1; hour <= 3; hour++) {
      clock.set(new Date(Date.parse('2026-11-07T00:00:00Z') + hour * 3_600_000));
      const events = Array.from({ length: 3 }, (_, i) => ({
        app_id: connection.appId,
        event: { event_uuid: `t-${hour}-${i}`, event_name: 'VIEW', event_time: 1 },
      }));
      staged.push(...events.map((x) => x.event.event_uuid));
      await driver.stage(events);
    }
    clock.set(new Date('2026-11-08T00:05:00Z'));

    const stalled = await driver.exportJob(job);
    expect(rival?.status).toBe('committed');
    expect(stalled.status).toBe('lost-race');
    expect(stalledLanded).toBe(false);

    const files = await readBucket(s3, bucket);
    const manifest = JSON.parse(files.find((f) => isManifestKey(f.key))!.body.toString('utf8')) as {
      files: { key: string; sha256: string; bytes: number }[];
    };
    expect(manifest.files.map((f) => f.key)).toEqual(
      [1, 2, 3].map((n) => dataObjectKey(connection, windowEnd, n)),
    );
    const decryptionKey = await openpgp.readPrivateKey({ armoredKey: privateKey });
    const uuids: string[] = [];
    for (const listed of manifest.files) {
      const stored = files.find((f) => f.key === listed.key)!.body;
      expect(createHash('sha256').update(stored).digest('hex')).toBe(listed.sha256);
      expect(stored.length).toBe(listed.bytes);
      const { data } = await openpgp.decrypt({
        message: await openpgp.readMessage({ binaryMessage: stored }),
        decryptionKeys: decryptionKey,
        format: 'binary',
      });
      for (const line of gunzipSync(Buffer.from(data as Uint8Array))
        .toString('utf8')
        .split('\n'))
        if (line) uuids.push((JSON.parse(line).event as { event_uuid: string }).event_uuid);
    }
    expect(uuids.sort()).toEqual([...staged].sort());
    expect(files.filter((f) => f.key.endsWith('.gpg'))).toHaveLength(3);
  });
});
