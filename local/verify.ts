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
import { connectionPrefix, exportDayFolder } from '../lambdas/domain/object-keys.ts';
import { gzipRecords, isDataKey, isManifestKey, listKeys, readBucket, type StoredFile } from './harness.ts';

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
  /** Data files counted: listed by a manifest, or by none and not reported as superseded. */
  files: ExportedFile[];
  /**
   * Data files no manifest lists and one reports as superseded (not counted), and every object
   * under a former prefix (`formerPrefixes`), all reported as superseded.
   */
  superseded: string[];
  manifests: WindowManifest[];
  /**
   * What does not hold: manifests (sequence, tiling, listed files, sizes, SHA-256, record counts),
   * data files listed by no manifest or by several, records (frame, selection), files that cannot be read.
   */
  problems: string[];
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

export interface VerifyOptions {
  /** Decrypts `.gpg` data files (default {@link gpgDecrypt}). */
  decrypt?: Decrypt;
  /**
   * Read only the `export_day=` folders of the days from `from` to `to`, one listing each (the S3
   * emulator fails to page past 1000 keys of one prefix); default: the whole prefix in one listing.
   */
  exportDays?: { from: Date; to: Date };
  /** The manifests must tile [from, to): each window starts where the one before it ended. */
  windows?: { from: Date; to: Date };
  /** The event an expected record must hold (selected and projected as the connection says). */
  expectedEvent?: (uuid: string) => Record<string, unknown> | undefined;
  /**
   * Prefixes the connection wrote under before (its folder or name changed since): every object
   * there must be reported as superseded by a manifest under its prefix now, and is not counted.
   */
  formerPrefixes?: readonly string[];
  /**
   * Keys the connection's state will report as superseded with its next manifest (its
   * `pendingSupersedes`, and the objects of a window a backfill dropped), when that export has not
   * happened yet: they belong to no committed window, so a manifest among them does not stand and
   * a data file among them is not counted.
   */
  pendingSuperseded?: readonly string[];
}

/**
 * Read back one connection's files and manifests and compare them with the expected events (each
 * uuid once). Data files a manifest reports as superseded (and none lists) are not counted; every
 * other data file must be listed by exactly one manifest. Objects under a former prefix must all be
 * reported as superseded.
 */
export async function verifyConnection(
  s3: S3Client,
  connection: Connection,
  expected: string[],
  options: VerifyOptions = {},
): Promise<ConnectionVerification> {
  const stored = await readConnectionObjects(s3, connection, options.exportDays);
  const all = stored
    .filter((f) => isManifestKey(f.key))
    .map((f) => ({ key: f.key, manifest: JSON.parse(f.body.toString('utf8')) as WindowManifest }));
  const pending = new Set(options.pendingSuperseded ?? []);
  const reported = new Set([
    ...all
      .flatMap(({ manifest }) => manifest.supersedes?.objects ?? [])
      .filter((o) => o.bucketName === connection.bucketName)
      .map((o) => o.key),
    ...pending,
  ]);
  const { live, supersededManifests } = liveManifests(all, reported, pending);
  const manifests = live.sort((a, b) => a.sequence - b.sequence);
  const listed = new Map<string, number>();
  for (const entry of manifests.flatMap((m) => m.files))
    listed.set(entry.key, (listed.get(entry.key) ?? 0) + 1);

  const problems: string[] = [];
  const files: ExportedFile[] = [];
  const superseded: string[] = [...supersededManifests];
  const uuids: string[] = [];
  const records = new RecordCheck(connection, options.expectedEvent);
  for (const file of stored.filter((f) => isDataKey(f.key))) {
    const n = listed.get(file.key) ?? 0;
    if (n === 0 && reported.has(file.key)) {
      superseded.push(file.key);
      continue;
    }
    if (n !== 1) problems.push(`${file.key} is listed in ${n} manifests (and not reported as superseded)`);
    const read = await readDataFile(file, options.decrypt ?? gpgDecrypt);
    files.push(read.file);
    if (!read.records) {
      problems.push(`${file.key}: cannot decrypt (no secret key for it)`);
      continue;
    }
    for (const r of read.records) uuids.push((r.event as ReceivedEvent).event_uuid);
    problems.push(...records.check(file.key, read.records));
  }
  for (const prefix of options.formerPrefixes ?? []) {
    for (const key of await listKeys(s3, connection.bucketName, prefix)) {
      if (reported.has(key)) superseded.push(key);
      else
        problems.push(`${key} is under the former prefix ${prefix} and no manifest reports it as superseded`);
    }
  }
  const bodies = new Map(stored.map((f) => [f.key, f.body]));
  const counts = new Map(files.map((f) => [f.key, f.records]));
  problems.push(...manifestProblems(manifests, bodies, counts, options.windows));
  const diff = compareMultisets(expected, uuids);
  problems.push(...unexpectedExamples(expected, uuids, diff.unexpected));
  return {
    connectionId: connection.connectionId,
    expected: expected.length,
    exported: uuids.length,
    ...diff,
    files,
    superseded,
    manifests,
    problems,
  };
}

/**
 * The manifests that stand, and the keys of those that do not. A manifest another one reports as
 * superseded stands down when another manifest has its sequence (a pending window a backfill
 * dropped, whose sequence a later window reused), or when it lies past the last standing manifest
 * and starts before that one ends (the windows exported since ended fewer sequences later). It
 * stands otherwise: its key was written again by the window that reused it. One the state has yet
 * to report (`pending`) never stands.
 */
function liveManifests(
  all: { key: string; manifest: WindowManifest }[],
  reported: Set<string>,
  pending: Set<string>,
): { live: WindowManifest[]; supersededManifests: string[] } {
  const bySequence = new Map<number, number>();
  for (const { manifest: m } of all) bySequence.set(m.sequence, (bySequence.get(m.sequence) ?? 0) + 1);
  const standing = all.filter(({ key }) => !reported.has(key)).map(({ manifest }) => manifest);
  const lastSequence = Math.max(0, ...standing.map((m) => m.sequence));
  const lastEnd = Math.max(0, ...standing.map((m) => Date.parse(m.windowEnd)));
  const live: WindowManifest[] = [];
  const supersededManifests: string[] = [];
  for (const { key, manifest: m } of all) {
    const pastTheEnd = m.sequence > lastSequence && Date.parse(m.windowStart) < lastEnd;
    const standsDown =
      pending.has(key) || (reported.has(key) && (bySequence.get(m.sequence)! > 1 || pastTheEnd));
    if (standsDown) supersededManifests.push(key);
    else live.push(m);
  }
  return { live, supersededManifests };
}

const DAY_MS = 86_400_000;

/** The objects under a connection's prefix: at once, or `export_day=` folder by folder. */
async function readConnectionObjects(
  s3: S3Client,
  connection: Connection,
  days: VerifyOptions['exportDays'],
): Promise<StoredFile[]> {
  const prefix = connectionPrefix(connection);
  if (!days) return readBucket(s3, connection.bucketName, prefix);
  const stored: StoredFile[] = [];
  const first = Math.floor(days.from.getTime() / DAY_MS) * DAY_MS;
  for (let day = first; day <= days.to.getTime(); day += DAY_MS) {
    const folder = `${prefix}export_day=${exportDayFolder(new Date(day))}/`;
    stored.push(...(await readBucket(s3, connection.bucketName, folder)));
  }
  return stored;
}

async function readDataFile(
  file: StoredFile,
  decrypt: Decrypt,
): Promise<{ file: ExportedFile; records?: Record<string, unknown>[] }> {
  const encrypted = file.key.endsWith('.gpg');
  const gzipped = encrypted ? await decrypt(file.body) : file.body;
  if (!gzipped) return { file: { key: file.key, bytes: file.body.length, records: Number.NaN, encrypted } };
  const records = gzipRecords(gzipped);
  return { file: { key: file.key, bytes: file.body.length, records: records.length, encrypted }, records };
}

/** The frame of every record (names, export day and hour of its window), and its event when expected. */
class RecordCheck {
  constructor(
    private readonly connection: Connection,
    private readonly expectedEvent: VerifyOptions['expectedEvent'],
  ) {}

  check(key: string, records: Record<string, unknown>[]): string[] {
    const windowEnd = new Date(Number(/event_exports_(\d+)/.exec(key)?.[1]) * 1000);
    let badFrames = 0;
    let badEvents = 0;
    for (const record of records) {
      if (
        record.export_day !== windowEnd.toISOString().slice(0, 10) ||
        record.export_hour !== String(windowEnd.getUTCHours()) ||
        record.app_name !== this.connection.appName ||
        record.db_name !== this.connection.dbName
      )
        badFrames += 1;
      const event = record.event as ReceivedEvent;
      const want = this.expectedEvent?.(event.event_uuid);
      if (want && JSON.stringify(want) !== JSON.stringify(event)) badEvents += 1;
    }
    return [
      ...(badFrames
        ? [`${key}: ${badFrames} records have a wrong frame (app/db name, export day/hour)`]
        : []),
      ...(badEvents ? [`${key}: ${badEvents} records are not the event as selected/projected`] : []),
    ];
  }
}

/**
 * Manifests numbered 1..n, windows not empty (and tiling `windows` when given), every listed file
 * stored with its size, SHA-256 and record count, totals that add up.
 */
function manifestProblems(
  manifests: WindowManifest[],
  bodies: Map<string, Buffer>,
  recordCounts: Map<string, number>,
  windows: VerifyOptions['windows'],
): string[] {
  const problems: string[] = [];
  let previousEnd = windows?.from.getTime();
  manifests.forEach((m, i) => {
    if (m.sequence !== i + 1) problems.push(`manifest sequence ${m.sequence} where ${i + 1} was expected`);
    const start = Date.parse(m.windowStart);
    if (previousEnd !== undefined && start !== previousEnd) {
      problems.push(
        `manifest ${m.sequence} starts at ${m.windowStart}, previous window ended ${new Date(previousEnd).toISOString()}`,
      );
    }
    if (Date.parse(m.windowEnd) <= start)
      problems.push(`manifest ${m.sequence} has an empty or inverted window`);
    previousEnd = Date.parse(m.windowEnd);
    for (const entry of m.files) {
      const body = bodies.get(entry.key);
      if (!body) problems.push(`manifest ${m.sequence} lists ${entry.key}, which is not in the bucket`);
      else if (
        body.length !== entry.bytes ||
        createHash('sha256').update(body).digest('hex') !== entry.sha256
      ) {
        problems.push(
          `manifest ${m.sequence}: size or SHA-256 of ${entry.key} does not match the stored object`,
        );
      }
      const records = recordCounts.get(entry.key);
      if (records !== undefined && !Number.isNaN(records) && records !== entry.records)
        problems.push(`manifest ${m.sequence}: record count of ${entry.key} does not match`);
    }
    if (m.files.reduce((n, f) => n + f.records, 0) !== m.totalRecords)
      problems.push(`manifest ${m.sequence}: total records is not the sum of its files`);
  });
  if (windows && (previousEnd ?? windows.from.getTime()) !== windows.to.getTime()) {
    problems.push(
      `manifests end at ${new Date(previousEnd ?? windows.from.getTime()).toISOString()}, not at ${windows.to.toISOString()}`,
    );
  }
  return problems;
}

/** A few of the exported uuids that were not expected at all, in words. */
function unexpectedExamples(expected: string[], actual: string[], unexpected: number): string[] {
  if (unexpected === 0) return [];
  const want = new Set(expected);
  const examples = [...new Set(actual.filter((id) => !want.has(id)))].slice(0, 3);
  return [`${unexpected} exported events were not expected, e.g. ${examples.join(', ')}`];
}
