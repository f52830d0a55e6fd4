/**
 * Checks what landed in customer buckets against what was staged, from the
 * stored objects themselves: every data file is read back (and decrypted with
 * GnuPG when it is PGP-encrypted), every manifest is checked against the files
 * it lists.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Connection } from '../lambdas/domain/connection.ts';
import { compileShaper, type ReceivedEvent } from '../lambdas/domain/export-record.ts';
import type { WindowManifest } from '../lambdas/domain/manifest.ts';
import { connectionPrefix } from '../lambdas/domain/object-keys.ts';
import { gzipRecords, isDataKey, isManifestKey, readBucket } from './harness.ts';

const execFileAsync = promisify(execFile);

export interface StagedEventRecord {
  appId: string;
  event: ReceivedEvent;
  /** Stage time of the batch the event was staged in. */
  stageTime: Date;
}

export interface ExportedFile {
  key: string;
  bytes: number;
  records: number;
  encrypted: boolean;
}

export interface ConnectionVerification {
  connectionId: string;
  expected: number;
  exported: number;
  duplicates: number;
  missing: number;
  unexpected: number;
  files: ExportedFile[];
  manifests: WindowManifest[];
  /** Problems found in manifests: sequence gaps/repeats, counts or checksums not matching the files. */
  manifestProblems: string[];
}

/** Decrypts a `.gpg` object; undefined when no secret key is available. */
export type Decrypt = (body: Buffer) => Promise<Buffer | undefined>;

/** Decrypt with the `gpg` CLI and the keyring of GNUPGHOME (or ~/.gnupg). */
export const gpgDecrypt: Decrypt = async (body) => {
  try {
    const child = execFileAsync('gpg', ['--batch', '--quiet', '--decrypt'], {
      encoding: 'buffer',
      maxBuffer: 1024 * 1024 * 1024,
    });
    child.child.stdin?.end(body);
    return (await child).stdout;
  } catch {
    return undefined;
  }
};

/** Events a connection must have exported: selected, and staged in [from, to). */
export function expectedUuids(
  connection: Connection,
  staged: StagedEventRecord[],
  from: Date,
  to: Date,
): string[] {
  const shaper = compileShaper(connection);
  return staged
    .filter(
      (s) =>
        s.appId === connection.appId &&
        s.stageTime.getTime() >= from.getTime() &&
        s.stageTime.getTime() < to.getTime() &&
        shaper.shape(s.event) !== undefined,
    )
    .map((s) => s.event.event_uuid);
}

export function compareMultisets(
  expected: string[],
  actual: string[],
): { duplicates: number; missing: number; unexpected: number } {
  const want = new Map<string, number>();
  for (const id of expected) want.set(id, (want.get(id) ?? 0) + 1);
  const got = new Map<string, number>();
  for (const id of actual) got.set(id, (got.get(id) ?? 0) + 1);
  let duplicates = 0;
  let missing = 0;
  let unexpected = 0;
  for (const [id, n] of got) {
    const w = want.get(id) ?? 0;
    if (w === 0) unexpected += n;
    else if (n > w) duplicates += n - w;
  }
  for (const [id, n] of want) missing += Math.max(0, n - (got.get(id) ?? 0));
  return { duplicates, missing, unexpected };
}

/** Read back one connection's files and manifests and compare with the expected events. */
export async function verifyConnection(
  s3: S3Client,
  connection: Connection,
  expected: string[],
  decrypt: Decrypt = gpgDecrypt,
): Promise<ConnectionVerification> {
  const stored = await readBucket(s3, connection.bucketName, connectionPrefix(connection));
  const files: ExportedFile[] = [];
  const uuids: string[] = [];
  const byKey = new Map(stored.map((f) => [f.key, f.body]));
  const problems: string[] = [];
  for (const file of stored.filter((f) => isDataKey(f.key))) {
    const encrypted = file.key.endsWith('.gpg');
    const gzipped = encrypted ? await decrypt(file.body) : file.body;
    if (!gzipped) {
      problems.push(`${file.key}: cannot decrypt (no secret key in the gpg keyring)`);
      files.push({ key: file.key, bytes: file.body.length, records: Number.NaN, encrypted });
      continue;
    }
    const records = gzipRecords(gzipped);
    for (const r of records) uuids.push((r.event as ReceivedEvent).event_uuid);
    files.push({ key: file.key, bytes: file.body.length, records: records.length, encrypted });
  }
  const manifests = stored
    .filter((f) => isManifestKey(f.key))
    .map((f) => JSON.parse(f.body.toString('utf8')) as WindowManifest)
    .sort((a, b) => a.sequence - b.sequence);
  manifests.forEach((m, i) => {
    if (m.sequence !== i + 1) problems.push(`manifest sequence ${m.sequence} where ${i + 1} was expected`);
    for (const entry of m.files) {
      const body = byKey.get(entry.key);
      if (!body) problems.push(`manifest ${m.sequence} lists ${entry.key}, which is not in the bucket`);
      else if (
        body.length !== entry.bytes ||
        createHash('sha256').update(body).digest('hex') !== entry.sha256
      ) {
        problems.push(
          `manifest ${m.sequence}: size or SHA-256 of ${entry.key} does not match the stored object`,
        );
      }
    }
  });
  const listed = new Set(manifests.flatMap((m) => m.files.map((f) => f.key)));
  for (const f of files) if (!listed.has(f.key)) problems.push(`${f.key} is not listed in any manifest`);
  const diff = compareMultisets(expected, uuids);
  return {
    connectionId: connection.connectionId,
    expected: expected.length,
    exported: uuids.length,
    ...diff,
    files,
    manifests,
    manifestProblems: problems,
  };
}
