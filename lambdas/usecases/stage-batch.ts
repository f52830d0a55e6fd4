/**
 * Stage one Kinesis batch of one shard, exactly once, as ONE segment object whatever the number
 * of apps in it (docs/platform-scale.md, docs/exactly-once.md §1–2).
 *
 * One checkpoint row per shard: `stagedThrough` says what is durably staged, `pending` fixes the
 * unit in flight (sequence range, stage time, segment key) before its segment is written, so a
 * retry rewrites the same key. A unit is one object, so it is either staged whole or not at all:
 * a later batch that does not cover it (the event source gave up, or split it) completes the
 * checkpoint when the segment exists and otherwise records the skipped range as abandoned —
 * the shard never stops.
 */
import { gzipSync } from 'node:zlib';
import { decodeRecordData } from '../domain/incoming-records.ts';
import { encodeSegment, QUARANTINE_SECTION } from '../domain/staged-segment.ts';
import {
  compactionStartOf,
  compareSequenceNumbers,
  segmentKey,
  segmentWritableAt,
  slotEndOf,
  slotStartOf,
} from '../domain/staging-layout.ts';
import type {
  AbandonedRange,
  Clock,
  ShardCheckpoint,
  StagingLedger,
  StagingStore,
  StagingUnitInFlight,
} from '../ports/index.ts';
import { UseCaseError } from './errors.ts';

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
}

export interface StageBatchResult {
  /** Events written into segments by this attempt (0 for records already staged). */
  stagedEvents: number;
  /** Events or records refused and kept in quarantine by this attempt. */
  quarantinedRecords: number;
  /** Records skipped because an earlier attempt staged them. */
  alreadyStagedRecords: number;
  /** Ranges this attempt recorded as abandoned (not staged, not to be delivered again). */
  abandoned: AbandonedRange[];
  objectsCreated: string[];
}

/** Thrown when a checkpoint update lost a race: the batch is retried. */
export class StagingRetryError extends UseCaseError {
  override readonly name = 'StagingRetryError';
}

/**
 * Thrown when a unit's slot has closed and its segment is not there yet, before the slot's set of
 * segments is final: an attempt that timed out may still have its PUT of that segment in flight
 * (it began before the slot closed, so it lands before the slot may be compacted). Giving the
 * unit a fresh stage time now could stage it twice; the batch is retried once the slot is final.
 */
export class StagingSlotSettlingError extends UseCaseError {
  override readonly name = 'StagingSlotSettlingError';

  constructor(
    message: string,
    /** From when the slot's segments are final: the batch goes through then. */
    readonly retryAt: Date,
  ) {
    super(message);
  }
}

/** Abandoned ranges kept on the checkpoint row (latest last): the row must not grow. */
const MAX_ABANDONED = 10;

interface BuiltSegment {
  body: Buffer;
  events: number;
  quarantined: number;
}

function quarantineLine(record: IncomingRecord, item: { reason: string; data: Buffer; position?: object }) {
  return Buffer.from(
    JSON.stringify({
      reason: item.reason,
      sequenceNumber: record.sequenceNumber,
      ...(item.position ? { position: item.position } : {}),
      approximateArrivalTimestamp: record.approximateArrivalTimestamp,
      data: item.data.toString('base64'),
    }),
  );
}

function decode(record: IncomingRecord): ReturnType<typeof decodeRecordData> {
  try {
    return decodeRecordData(record.data);
  } catch (error) {
    // The decoder is built not to throw; if it ever does, the record is kept, not the batch failed.
    const reason = `record could not be decoded (${error instanceof Error ? error.name : 'error'})`;
    return { events: [], quarantined: [{ reason, data: Buffer.from(record.data) }] };
  }
}

/** The unit's segment: one gzip member per app (by app id) and one for its refused records. */
export function buildSegment(records: readonly IncomingRecord[]): BuiltSegment {
  const sections = new Map<string, Buffer[]>();
  const add = (section: string, line: Buffer) => {
    const lines = sections.get(section);
    if (lines) lines.push(line);
    else sections.set(section, [line]);
  };
  let events = 0;
  let quarantined = 0;
  for (const record of records) {
    const decoded = decode(record);
    for (const event of decoded.events) add(event.appId, event.event);
    for (const item of decoded.quarantined) add(QUARANTINE_SECTION, quarantineLine(record, item));
    events += decoded.events.length;
    quarantined += decoded.quarantined.length;
  }
  const newline = Buffer.from('\n');
  const members = [...sections].map(([section, lines]) => ({
    section,
    // Deterministic bytes: a retry of the same unit produces the same segment.
    gzip: gzipSync(Buffer.concat(lines.flatMap((line) => [line, newline]))),
    count: lines.length,
  }));
  return { body: encodeSegment(members), events, quarantined };
}

function emptyResult(): StageBatchResult {
  return {
    stagedEvents: 0,
    quarantinedRecords: 0,
    alreadyStagedRecords: 0,
    abandoned: [],
    objectsCreated: [],
  };
}

export async function stageBatch(input: StageBatchInput, deps: StageBatchDeps): Promise<StageBatchResult> {
  const result = emptyResult();
  const { shardId } = input;
  let checkpoint = await deps.ledger.getCheckpoint(shardId);
  let records = afterCheckpoint(input.records, checkpoint.stagedThrough, result);
  if (records.length === 0) return result;

  if (checkpoint.pending) {
    ({ checkpoint, records } = await settlePending(
      shardId,
      checkpoint,
      checkpoint.pending,
      records,
      deps,
      result,
    ));
    if (records.length === 0) return result;
  }

  // A new unit: fix its identity (stage time and key) before writing anything.
  const stageTime = deps.clock.now();
  const firstSequence = records[0]!.sequenceNumber;
  const lastSequence = records[records.length - 1]!.sequenceNumber;
  const unit: StagingUnitInFlight = {
    firstSequence,
    lastSequence,
    stageTimeMs: stageTime.getTime(),
    key: segmentKey(stageTime, shardId, firstSequence, lastSequence),
  };
  checkpoint = await putCheckpoint(deps, { ...checkpoint, pending: unit });
  await completeUnit(checkpoint, unit, records, deps, result);
  return result;
}

function afterCheckpoint(
  records: IncomingRecord[],
  stagedThrough: string | undefined,
  result: StageBatchResult,
): IncomingRecord[] {
  if (stagedThrough === undefined) return records;
  const fresh = records.filter((r) => compareSequenceNumbers(r.sequenceNumber, stagedThrough) > 0);
  result.alreadyStagedRecords += records.length - fresh.length;
  return fresh;
}

async function putCheckpoint(deps: StageBatchDeps, next: ShardCheckpoint): Promise<ShardCheckpoint> {
  const { version, ...row } = next;
  if (!(await deps.ledger.putCheckpoint(row, version)))
    throw new StagingRetryError(`checkpoint of ${next.shardId} moved while staging; retrying the batch`);
  return { ...next, version: version + 1 };
}

/**
 * The checkpoint holds a unit from an earlier attempt. Complete it when this batch covers it;
 * otherwise it is either staged (its one segment exists) or not at all, and the batch goes on.
 */
async function settlePending(
  shardId: string,
  checkpoint: ShardCheckpoint,
  pending: StagingUnitInFlight,
  records: IncomingRecord[],
  deps: StageBatchDeps,
  result: StageBatchResult,
): Promise<{ checkpoint: ShardCheckpoint; records: IncomingRecord[] }> {
  const inUnit = records.filter((r) => compareSequenceNumbers(r.sequenceNumber, pending.lastSequence) <= 0);
  const last = records[records.length - 1]!;
  const covers =
    records[0]!.sequenceNumber === pending.firstSequence &&
    compareSequenceNumbers(last.sequenceNumber, pending.lastSequence) >= 0;
  if (covers) {
    const next = await completeUnit(checkpoint, pending, inUnit, deps, result);
    return { checkpoint: next, records: records.slice(inUnit.length) };
  }
  if (await deps.store.exists(pending.key)) {
    // Staged whole by an earlier attempt that could not record it: record it now.
    result.alreadyStagedRecords += inUnit.length;
    const next = await putCheckpoint(deps, {
      ...checkpoint,
      stagedThrough: pending.lastSequence,
      pending: undefined,
    });
    return { checkpoint: next, records: records.slice(inUnit.length) };
  }
  // Not staged at all. Records the event source will not deliver again are recorded as abandoned.
  const abandoned = [...(checkpoint.abandoned ?? [])];
  if (compareSequenceNumbers(records[0]!.sequenceNumber, pending.firstSequence) > 0) {
    const range = {
      firstSequence: pending.firstSequence,
      lastSequence: pending.lastSequence,
      at: deps.clock.now().toISOString(),
    };
    abandoned.push(range);
    result.abandoned.push(range);
  }
  const next = await putCheckpoint(deps, {
    shardId,
    stagedThrough: checkpoint.stagedThrough,
    abandoned: abandoned.slice(-MAX_ABANDONED),
    version: checkpoint.version,
  });
  return { checkpoint: next, records };
}

/** Write the unit's segment (re-timing it when its slot has closed), then mark the unit staged. */
async function completeUnit(
  checkpoint: ShardCheckpoint,
  unit: StagingUnitInFlight,
  records: readonly IncomingRecord[],
  deps: StageBatchDeps,
  result: StageBatchResult,
): Promise<ShardCheckpoint> {
  const segment = buildSegment(records);
  let current = checkpoint;
  let target = unit;
  for (;;) {
    const now = deps.clock.now();
    if (segmentWritableAt(new Date(target.stageTimeMs), now)) break;
    if (await deps.store.exists(target.key)) break;
    const slot = slotStartOf(new Date(target.stageTimeMs));
    const final = compactionStartOf(slot);
    if (now < final)
      throw new StagingSlotSettlingError(
        `unit ${unit.firstSequence}-${unit.lastSequence} of ${checkpoint.shardId}: its slot closed at ${slotEndOf(slot).toISOString()} without its segment, which an attempt that timed out may still write until ${final.toISOString()}; retrying the batch then`,
        final,
      );
    // The slot of the old stage time may already be compacted: take a fresh one.
    target = {
      ...target,
      stageTimeMs: now.getTime(),
      key: segmentKey(now, checkpoint.shardId, unit.firstSequence, unit.lastSequence),
    };
    current = await putCheckpoint(deps, { ...current, pending: target });
  }
  const outcome = await deps.store.createObject(target.key, segment.body);
  if (outcome === 'created') {
    result.objectsCreated.push(target.key);
    result.stagedEvents += segment.events;
    result.quarantinedRecords += segment.quarantined;
  } else {
    result.alreadyStagedRecords += records.length;
  }
  return putCheckpoint(deps, { ...current, stagedThrough: unit.lastSequence, pending: undefined });
}
