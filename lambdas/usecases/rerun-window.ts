/**
 * Re-export one committed window from staging, for a customer who lost or damaged its files: the
 * same data keys and manifest, written by the exporter's own part writer, after recomputing the
 * window and comparing it with the history row (refused on a difference unless `force`). The
 * export state is never written. What is refused and why: docs/operations.md, "Rerun" under
 * "Manual operations".
 */
import { createHash } from 'node:crypto';
import type { Connection } from '../domain/connection.ts';
import { validateConnection } from '../domain/connection.ts';
import type { WindowManifest } from '../domain/manifest.ts';
import { dataObjectKey, manifestObjectKey } from '../domain/object-keys.ts';
import type {
  Clock,
  ConnectionRepository,
  ExportSink,
  ExportState,
  SinkTarget,
  StagedObjectRef,
  WrittenPart,
} from '../ports/index.ts';
import { listSettledWindow } from './compact-slot.ts';
import { UseCaseError } from './errors.ts';
import {
  type CommittedWindow,
  ConnectionProblemError,
  claimNamespace,
  type Encryptor,
  type ExportDeps,
  type ExportSettings,
  refGroupBytes,
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
  | 'CONNECTION_PROBLEM'
  | 'DIFFERS_FROM_HISTORY';

/** The rerun was refused before anything was written; the message says why and what to do. */
export class RerunRefusedError extends UseCaseError {
  override readonly name = 'RerunRefusedError';
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
  /** Where the recomputed window differs from its history row (part keys, records, SHA-256); empty when identical. */
  differences: string[];
  /** True when the gzip SHA-256 of each part was compared with the history (false for PGP connections). */
  hashesCompared: boolean;
  /** True when the window was written despite differences because the operator passed `force`. */
  forced: boolean;
}

const DAY_MS = 86_400_000;

export async function rerunWindow(
  input: { connectionId: string; windowEnd: Date; force?: boolean },
  deps: RerunDeps,
): Promise<RerunResult> {
  const { connectionId } = input;
  const now = deps.clock.now();
  const raw = await deps.connections.getRaw(connectionId);
  if (!raw) throw new RerunRefusedError('CONNECTION_NOT_FOUND', `connection ${connectionId} not found`);
  const validation = validateConnection(raw);
  if (!validation.ok) {
    throw new RerunRefusedError(
      'INVALID_CONNECTION',
      `connection ${connectionId} is invalid (${validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}); fix the row first`,
    );
  }
  const connection = validation.connection;

  const history = await deps.history.listHistory(connectionId, { newestFirst: true });
  const window = history.find((w) => w.windowEnd.getTime() === input.windowEnd.getTime());
  if (!window) {
    const latest = history[0]?.windowEnd.toISOString();
    throw new RerunRefusedError(
      'WINDOW_NOT_IN_HISTORY',
      `connection ${connectionId} has no committed window ending at ${input.windowEnd.toISOString()}` +
        (latest
          ? ` (latest: ${latest}; "history --connection ${connectionId}" lists them)`
          : ' (nothing committed yet)'),
    );
  }

  const state = await deps.state.get(connectionId);
  if (!state || state.watermark.getTime() < window.windowEnd.getTime()) {
    throw new RerunRefusedError(
      'WINDOW_NOT_COMMITTED',
      `the window ending at ${window.windowEnd.toISOString()} is after the watermark ` +
        `(${state?.watermark.toISOString() ?? 'none'}): it will be exported again by the schedule, not rerun`,
    );
  }

  const earliest = new Date(now.getTime() - deps.settings.stagingRetentionDays * DAY_MS);
  if (window.windowStart.getTime() < earliest.getTime()) {
    throw new RerunRefusedError(
      'BEYOND_RETENTION',
      `the window [${window.windowStart.toISOString()}, ${window.windowEnd.toISOString()}) starts before the staging ` +
        `retention (${deps.settings.stagingRetentionDays} days: ${earliest.toISOString()}); its staged events may have expired`,
    );
  }

  assertSameKeys(connection, window);

  let encrypt: Awaited<ReturnType<NonNullable<ExportDeps['preflight']>>>['encrypt'];
  try {
    encrypt = (await deps.preflight?.(connection, now))?.encrypt;
    await claimNamespace(connection, deps);
  } catch (error) {
    if (error instanceof ConnectionProblemError)
      throw new RerunRefusedError('CONNECTION_PROBLEM', `${error.code}: ${error.message}`);
    throw error;
  }

  const target = sinkTargetOf(connection);
  const objects = await listSettledWindow(
    deps.staging,
    deps.clock,
    connection.appId,
    window.windowStart,
    window.windowEnd,
    refGroupBytes(deps.settings.partSizeBytes),
  );
  // Dry pass: the same part writer into a sink that only measures; nothing reaches the bucket.
  const recomputed = await writeParts(connection, target, window, objects, undefined, {
    ...deps,
    sink: measuringSink,
  });
  const hashesCompared = !connection.pgpPublicKey;
  const differences = differencesFrom(window, recomputed, hashesCompared);
  if (differences.length > 0 && !input.force) {
    throw new RerunRefusedError(
      'DIFFERS_FROM_HISTORY',
      `the window recomputed from staging differs from what was committed, nothing was written: ${differences.join('; ')}. ` +
        'Rewriting would change files the customer already has; pass --force to write it anyway',
    );
  }

  const parts = await writeParts(connection, target, window, objects, encrypt, deps);
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
    differences,
    hashesCompared,
    forced: differences.length > 0,
  };
}

/** A sink that stores nothing: it reads the body and returns its size and SHA-256. */
const measuringSink: ExportSink = {
  async putObject(_target, key, body) {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      bytes += buffer.length;
    }
    return { key, bytes, sha256: hash.digest('hex') };
  },
};

/** Write every part of the window with the exporter's part writer, in order. */
async function writeParts(
  connection: Connection,
  target: SinkTarget,
  window: CommittedWindow,
  objects: StagedObjectRef[],
  encrypt: Encryptor | undefined,
  deps: WindowWriterDeps,
): Promise<WrittenPart[]> {
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
      if (!part) return parts;
      parts.push(part.written);
      cursor.nextObjectIndex = part.nextObjectIndex;
      cursor.nextPartNumber += 1;
    }
  } finally {
    source.close();
  }
}

/** The current row must name the window's files exactly as the original export did. */
function assertSameKeys(connection: Connection, window: CommittedWindow): void {
  const manifestKey = manifestObjectKey(connection, window.windowEnd);
  const firstPart = window.parts[0];
  const changed =
    manifestKey !== window.manifestKey ||
    (firstPart !== undefined && dataObjectKey(connection, window.windowEnd, 1) !== firstPart.key);
  if (changed) {
    throw new RerunRefusedError(
      'KEYS_CHANGED',
      `the connection's keys changed since the window was exported (now ${manifestKey}, then ${window.manifestKey}` +
        `${firstPart ? `, first part ${firstPart.key}` : ''}): a rerun would write a second copy instead of replacing the files; ` +
        'restore connectionName/folderPath/pgpPublicKey, or copy the files yourself',
    );
  }
}

function differencesFrom(window: CommittedWindow, parts: WrittenPart[], compareHashes: boolean): string[] {
  const differences: string[] = [];
  const recomputed = new Map(parts.map((p) => [p.key, p]));
  for (const original of window.parts) {
    const now = recomputed.get(original.key);
    if (!now)
      differences.push(
        `${original.key}: written by the original export but not by the rerun: no longer in the manifest, delete it`,
      );
    else if (now.records !== original.records)
      differences.push(`${original.key}: ${now.records} records now, ${original.records} when committed`);
    else if (compareHashes && now.sha256 !== original.sha256)
      differences.push(
        `${original.key}: same ${now.records} records but SHA-256 ${now.sha256} now, ${original.sha256} when committed`,
      );
  }
  const originalKeys = new Set(window.parts.map((p) => p.key));
  for (const part of parts) {
    if (!originalKeys.has(part.key))
      differences.push(`${part.key}: a part the original export did not write`);
  }
  return differences;
}
