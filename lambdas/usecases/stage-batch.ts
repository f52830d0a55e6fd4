/**
 * Stage one Kinesis batch of one shard, exactly once (DESIGN-NOTES §1, §2).
 *
 * Kinesis delivers a shard in order and a retried batch starts at the same
 * record, so one checkpoint row per shard is enough: `stagedThrough` says what
 * is durably staged, and `pending` fixes the identity of the batch in flight —
 * its sequence range and, per app, the stage time `T` and object key. The
 * pending unit is written *before* any object, so a retry rewrites the same
 * keys (conditional create: an existing key is "already staged"). An attempt
 * that finds an object missing whose `T` is too old to still be inside the
 * safe horizon takes a fresh `T` (the export of the window holding the old `T`
 * may have started), after checking the old object really is not there.
 */
import { gzipSync } from 'node:zlib';
import { eventDefect } from '../domain/export-record.ts';
import { compareSequenceNumbers, quarantineObjectKey, stagedObjectKey } from '../domain/staging-layout.ts';
import type {
  Clock,
  PendingStagingUnit,
  ShardCheckpoint,
  StagingLedger,
  StagingStore,
} from '../ports/index.ts';

export interface IncomingRecord {
  sequenceNumber: string;
  /** The record's data, already base64-decoded. */
  data: Uint8Array;
  /** Kinesis ApproximateArrivalTimestamp (epoch seconds), kept in quarantine for diagnosis. */
  approximateArrivalTimestamp?: number;
}

export interface StageBatchInput {
  shardId: string;
  /** Records of one shard, in sequence order. */
  records: IncomingRecord[];
}

export interface StageBatchDeps {
  ledger: StagingLedger;
  store: StagingStore;
  clock: Clock;
  /**
   * A pending object whose stage time is older than this when its (re)write is attempted
   * takes a fresh stage time. Must be below settle delay minus the stager's maximum run time.
   */
  horizonGuardMs: number;
}

export interface StageBatchResult {
  /** Events written into staged objects by this attempt (0 for records already staged). */
  stagedEvents: number;
  quarantinedRecords: number;
  /** Records skipped because an earlier attempt staged them. */
  alreadyStagedRecords: number;
  objectsCreated: string[];
}

/** Thrown when a checkpoint update lost a race or a retry is smaller than the unit it must complete. */
export class StagingRetryError extends Error {
  override readonly name = 'StagingRetryError';
}

const QUARANTINE = '$quarantine';

interface ParsedRecord {
  sequenceNumber: string;
  appId?: string;
  /** The staged line (event JSON) or, for quarantine, the quarantine line. */
  line: string;
}

function parseRecord(record: IncomingRecord): ParsedRecord {
  const quarantine = (reason: string): ParsedRecord => ({
    sequenceNumber: record.sequenceNumber,
    line: JSON.stringify({
      reason,
      sequenceNumber: record.sequenceNumber,
      approximateArrivalTimestamp: record.approximateArrivalTimestamp,
      data: Buffer.from(record.data).toString('base64'),
    }),
  });
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(record.data).toString('utf8'));
  } catch {
    return quarantine('record data is not valid UTF-8 JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return quarantine('record data is not a JSON object {"app_id": ..., "event": {...}}');
  }
  const { app_id: appId, event } = body as { app_id?: unknown; event?: unknown };
  if (typeof appId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(appId)) {
    return quarantine('app_id is missing or not 1-64 characters of letters, digits, "_", "." or "-"');
  }
  const defect = eventDefect(event);
  if (defect) return quarantine(defect);
  return { sequenceNumber: record.sequenceNumber, appId, line: JSON.stringify(event) };
}

function groupOf(record: ParsedRecord): string {
  return record.appId ?? QUARANTINE;
}

function objectKeyFor(group: string, stageTime: Date, shardId: string, firstSequence: string): string {
  return group === QUARANTINE
    ? quarantineObjectKey(stageTime, shardId, firstSequence)
    : stagedObjectKey(group, stageTime, shardId, firstSequence);
}

function gzipLines(lines: string[]): Uint8Array {
  // Deterministic bytes: a retry of the same unit produces the same object.
  return gzipSync(`${lines.join('\n')}\n`);
}

export async function stageBatch(input: StageBatchInput, deps: StageBatchDeps): Promise<StageBatchResult> {
  const result: StageBatchResult = {
    stagedEvents: 0,
    quarantinedRecords: 0,
    alreadyStagedRecords: 0,
    objectsCreated: [],
  };
  const { shardId } = input;
  let checkpoint = await deps.ledger.getCheckpoint(shardId);

  let records = input.records;
  if (checkpoint.stagedThrough !== undefined) {
    const through = checkpoint.stagedThrough;
    const fresh = records.filter((r) => compareSequenceNumbers(r.sequenceNumber, through) > 0);
    result.alreadyStagedRecords += records.length - fresh.length;
    records = fresh;
  }
  if (records.length === 0) return result;

  if (checkpoint.pending) {
    const pending = checkpoint.pending;
    const last = records[records.length - 1]!;
    const inUnit = records.filter((r) => compareSequenceNumbers(r.sequenceNumber, pending.lastSequence) <= 0);
    const coversUnit =
      inUnit.length > 0 &&
      inUnit[0]!.sequenceNumber === pending.firstSequence &&
      compareSequenceNumbers(last.sequenceNumber, pending.lastSequence) >= 0;
    if (coversUnit) {
      checkpoint = await completeUnit(shardId, checkpoint, pending, inUnit.map(parseRecord), deps, result);
      records = records.slice(inUnit.length);
    } else if (await noneWritten(pending, deps.store)) {
      // A smaller (or shifted) retry of a unit none of whose objects exist: forget the unit.
      const ok = await deps.ledger.putCheckpoint(
        { shardId, stagedThrough: checkpoint.stagedThrough },
        checkpoint.version,
      );
      if (!ok)
        throw new StagingRetryError(`checkpoint of ${shardId} moved while staging; retrying the batch`);
      checkpoint = await deps.ledger.getCheckpoint(shardId);
    } else {
      throw new StagingRetryError(
        `batch of ${shardId} starting at ${inUnit[0]?.sequenceNumber ?? records[0]!.sequenceNumber} does not cover the partly staged unit ` +
          `${pending.firstSequence}..${pending.lastSequence}; retrying until Kinesis delivers the whole unit`,
      );
    }
  }
  if (records.length === 0) return result;

  // A new unit: fix its identity (stage time and keys) before writing anything.
  const parsed = records.map(parseRecord);
  const stageTime = deps.clock.now();
  const firstSequence = records[0]!.sequenceNumber;
  const objects: PendingStagingUnit['objects'] = {};
  for (const record of parsed) {
    const group = groupOf(record);
    objects[group] ??= {
      stageTimeMs: stageTime.getTime(),
      key: objectKeyFor(group, stageTime, shardId, firstSequence),
    };
  }
  const unit: PendingStagingUnit = {
    firstSequence,
    lastSequence: records[records.length - 1]!.sequenceNumber,
    objects,
  };
  const ok = await deps.ledger.putCheckpoint(
    { shardId, stagedThrough: checkpoint.stagedThrough, pending: unit },
    checkpoint.version,
  );
  if (!ok) throw new StagingRetryError(`checkpoint of ${shardId} moved while staging; retrying the batch`);
  checkpoint = {
    shardId,
    stagedThrough: checkpoint.stagedThrough,
    pending: unit,
    version: checkpoint.version + 1,
  };
  await completeUnit(shardId, checkpoint, unit, parsed, deps, result);
  return result;
}

async function noneWritten(unit: PendingStagingUnit, store: StagingStore): Promise<boolean> {
  for (const { key } of Object.values(unit.objects)) if (await store.exists(key)) return false;
  return true;
}

/** Write every object of the unit (re-timing stale missing ones), then mark the unit staged. */
async function completeUnit(
  shardId: string,
  checkpoint: ShardCheckpoint,
  unit: PendingStagingUnit,
  records: ParsedRecord[],
  deps: StageBatchDeps,
  result: StageBatchResult,
): Promise<ShardCheckpoint> {
  const byGroup = new Map<string, string[]>();
  for (const record of records) {
    const group = groupOf(record);
    const lines = byGroup.get(group) ?? [];
    lines.push(record.line);
    byGroup.set(group, lines);
  }

  let current = checkpoint;
  let objects = unit.objects;
  for (const [group, lines] of byGroup) {
    let target = objects[group];
    if (!target)
      throw new StagingRetryError(`unit ${unit.firstSequence} of ${shardId} has no object for ${group}`);
    const now = deps.clock.now();
    if (now.getTime() - target.stageTimeMs > deps.horizonGuardMs && !(await deps.store.exists(target.key))) {
      // The old stage time may already be behind an export that started: take a fresh one.
      target = { stageTimeMs: now.getTime(), key: objectKeyFor(group, now, shardId, unit.firstSequence) };
      objects = { ...objects, [group]: target };
      const ok = await deps.ledger.putCheckpoint(
        { shardId, stagedThrough: current.stagedThrough, pending: { ...unit, objects } },
        current.version,
      );
      if (!ok)
        throw new StagingRetryError(`checkpoint of ${shardId} moved while staging; retrying the batch`);
      current = { ...current, pending: { ...unit, objects }, version: current.version + 1 };
    }
    const outcome = await deps.store.createObject(target.key, gzipLines(lines));
    if (outcome === 'created') {
      result.objectsCreated.push(target.key);
      if (group === QUARANTINE) result.quarantinedRecords += lines.length;
      else result.stagedEvents += lines.length;
    }
  }

  const ok = await deps.ledger.putCheckpoint({ shardId, stagedThrough: unit.lastSequence }, current.version);
  if (!ok) throw new StagingRetryError(`checkpoint of ${shardId} moved while staging; retrying the batch`);
  return { shardId, stagedThrough: unit.lastSequence, version: current.version + 1 };
}
