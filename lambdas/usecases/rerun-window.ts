/**
 * Re-export one committed window from staging: the same data keys and the same manifest (same
 * sequence, same window start and end), for a customer who lost or damaged a past window's
 * files. The export state is never written — watermark, sequence, history and usage stay as
 * the original commit left them (the window was metered once; a rerun is not billed again).
 *
 * Refused when the window is not in the history, is no longer committed (a backfill moved the
 * watermark back before it: the exporter will write it again), reaches back beyond the
 * staging retention (its staged objects may be gone), or when the connection's keys for that
 * window changed since (renamed, new folder, PGP added or removed): a rerun must overwrite the
 * window's files, never add a second copy elsewhere.
 *
 * The parts are written by the exporter's own part writer (same record writer, same split at
 * staged-object boundaries), so with unchanged settings and staging a rerun reproduces the
 * window byte for byte (gzip is deterministic; PGP output is not, so its sizes and digests
 * change). What still differs from the history (part keys, record counts) is reported.
 */
import type { Connection } from '../domain/connection.ts';
import { validateConnection } from '../domain/connection.ts';
import type { WindowManifest } from '../domain/manifest.ts';
import { dataObjectKey, manifestObjectKey } from '../domain/object-keys.ts';
import type { Clock, ConnectionRepository, ExportState, WrittenPart } from '../ports/index.ts';
import {
  type CommittedWindow,
  ConnectionProblem,
  type ExportDeps,
  type ExportSettings,
  sinkTargetOf,
  WindowRecords,
  type WindowWriterDeps,
  windowRecordWriter,
  writeWindowManifest,
  writeWindowPart,
} from './export-window.ts';

/** The history of committed windows (the ExportState table's WINDOW# rows). */
export interface WindowHistory {
  listHistory(connectionId: string, options?: { newestFirst?: boolean }): Promise<CommittedWindow[]>;
}

export interface RerunDeps extends WindowWriterDeps {
  connections: ConnectionRepository;
  state: { get(connectionId: string): Promise<ExportState | undefined> };
  history: WindowHistory;
  clock: Clock;
  settings: Pick<ExportSettings, 'partSizeBytes' | 'gzipLevel' | 'stagingRetentionDays'>;
  /** KMS allowlist and PGP key checks, as for an export. */
  preflight?: ExportDeps['preflight'];
}

export type RerunRefusal =
  | 'CONNECTION_NOT_FOUND'
  | 'INVALID_CONNECTION'
  | 'WINDOW_NOT_IN_HISTORY'
  | 'WINDOW_NOT_COMMITTED'
  | 'BEYOND_RETENTION'
  | 'KEYS_CHANGED'
  | 'CONNECTION_PROBLEM';

/** The rerun was refused before anything was written; the message says why and what to do. */
export class RerunRefused extends Error {
  override readonly name = 'RerunRefused';
  constructor(
    readonly code: RerunRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface RerunResult {
  connectionId: string;
  windowStart: Date;
  windowEnd: Date;
  /** The manifest sequence: the original commit's. */
  sequence: number;
  parts: WrittenPart[];
  manifestKey: string;
  manifest: WindowManifest;
  records: number;
  /** Where the rewritten window differs from its history row (part keys, record counts); empty when identical. */
  differences: string[];
}

const DAY_MS = 86_400_000;

export async function rerunWindow(
  input: { connectionId: string; windowEnd: Date },
  deps: RerunDeps,
): Promise<RerunResult> {
  const { connectionId } = input;
  const now = deps.clock.now();
  const raw = await deps.connections.getRaw(connectionId);
  if (!raw) throw new RerunRefused('CONNECTION_NOT_FOUND', `connection ${connectionId} not found`);
  const validation = validateConnection(raw);
  if (!validation.ok) {
    throw new RerunRefused(
      'INVALID_CONNECTION',
      `connection ${connectionId} is invalid (${validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}); fix the row first`,
    );
  }
  const connection = validation.connection;

  const history = await deps.history.listHistory(connectionId, { newestFirst: true });
  const window = history.find((w) => w.windowEnd.getTime() === input.windowEnd.getTime());
  if (!window) {
    const latest = history[0]?.windowEnd.toISOString();
    throw new RerunRefused(
      'WINDOW_NOT_IN_HISTORY',
      `connection ${connectionId} has no committed window ending at ${input.windowEnd.toISOString()}` +
        (latest
          ? ` (latest: ${latest}; "history --connection ${connectionId}" lists them)`
          : ' (nothing committed yet)'),
    );
  }

  const state = await deps.state.get(connectionId);
  if (!state || state.watermark.getTime() < window.windowEnd.getTime()) {
    throw new RerunRefused(
      'WINDOW_NOT_COMMITTED',
      `the window ending at ${window.windowEnd.toISOString()} is after the watermark ` +
        `(${state?.watermark.toISOString() ?? 'none'}): it will be exported again by the schedule, not rerun`,
    );
  }

  const earliest = new Date(now.getTime() - deps.settings.stagingRetentionDays * DAY_MS);
  if (window.windowStart.getTime() < earliest.getTime()) {
    throw new RerunRefused(
      'BEYOND_RETENTION',
      `the window [${window.windowStart.toISOString()}, ${window.windowEnd.toISOString()}) starts before the staging ` +
        `retention (${deps.settings.stagingRetentionDays} days: ${earliest.toISOString()}); its staged events may have expired`,
    );
  }

  assertSameKeys(connection, window);

  let encrypt: Awaited<ReturnType<NonNullable<ExportDeps['preflight']>>>['encrypt'];
  try {
    encrypt = (await deps.preflight?.(connection, now))?.encrypt;
  } catch (error) {
    if (error instanceof ConnectionProblem)
      throw new RerunRefused('CONNECTION_PROBLEM', `${error.code}: ${error.message}`);
    throw error;
  }

  const target = sinkTargetOf(connection);
  const objects = await deps.staging.listWindow(connection.appId, window.windowStart, window.windowEnd);
  const parts: WrittenPart[] = [];
  const cursor = { nextObjectIndex: 0, nextPartNumber: 1 };
  const noLease = async () => undefined;
  const source = new WindowRecords(objects, 0, windowRecordWriter(connection, window.windowEnd), deps);
  try {
    for (;;) {
      const part = await writeWindowPart(
        connection,
        target,
        window.windowEnd,
        objects,
        cursor,
        source,
        encrypt,
        noLease,
        deps,
      );
      if (!part) break;
      parts.push(part.written);
      cursor.nextObjectIndex = part.nextObjectIndex;
      cursor.nextPartNumber += 1;
    }
  } finally {
    source.close();
  }

  const { manifestKey, manifest } = await writeWindowManifest(
    connection,
    target,
    {
      sequence: window.sequence,
      windowStart: window.windowStart,
      windowEnd: window.windowEnd,
      parts,
      supersedes: window.supersedes,
    },
    deps.sink,
  );
  return {
    connectionId,
    windowStart: window.windowStart,
    windowEnd: window.windowEnd,
    sequence: window.sequence,
    parts,
    manifestKey,
    manifest,
    records: manifest.totalRecords,
    differences: differencesFrom(window, parts),
  };
}

/** The current row must name the window's files exactly as the original export did. */
function assertSameKeys(connection: Connection, window: CommittedWindow): void {
  const manifestKey = manifestObjectKey(connection, window.windowEnd);
  const firstPart = window.parts[0];
  const changed =
    manifestKey !== window.manifestKey ||
    (firstPart !== undefined && dataObjectKey(connection, window.windowEnd, 1) !== firstPart.key);
  if (changed) {
    throw new RerunRefused(
      'KEYS_CHANGED',
      `the connection's keys changed since the window was exported (now ${manifestKey}, then ${window.manifestKey}` +
        `${firstPart ? `, first part ${firstPart.key}` : ''}): a rerun would write a second copy instead of replacing the files; ` +
        'restore connectionName/folderPath/pgpPublicKey, or copy the files yourself',
    );
  }
}

function differencesFrom(window: CommittedWindow, parts: WrittenPart[]): string[] {
  const differences: string[] = [];
  const written = new Map(parts.map((p) => [p.key, p]));
  for (const original of window.parts) {
    const now = written.get(original.key);
    if (!now)
      differences.push(
        `${original.key}: written by the original export but not by the rerun: no longer in the manifest, delete it`,
      );
    else if (now.records !== original.records)
      differences.push(`${original.key}: ${now.records} records now, ${original.records} when committed`);
  }
  const originalKeys = new Set(window.parts.map((p) => p.key));
  for (const part of parts) {
    if (!originalKeys.has(part.key))
      differences.push(`${part.key}: a part the original export did not write`);
  }
  return differences;
}
