import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { COMPACTION_DELAY_SECONDS, STAGING_SLOT_MINUTES } from '../../lambdas/definitions.ts';
import type { StagingLedger } from '../../lambdas/ports/index.ts';
import type { IncomingRecord, StageBatchResult } from '../../lambdas/usecases/stage-batch.ts';
import { type CliCommand, CliError, onePositional, stringOption, UsageError } from '../command.ts';
import { operationSettings, positiveInteger } from '../operations.ts';

/**
 * The CLI stages as its own "shard", never as one of the stream's: its sequence numbers continue
 * after its own checkpoint, and a real shard's checkpoint moved past the stream's numbers would
 * make the stager drop that shard's next records as already staged.
 */
export const CLI_SHARD = 'cli-stage';
/** Kinesis-like 56-digit sequence numbers (as the local driver's). */
const SEQUENCE_BASE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;
/** Kinesis hands a stager at most this many records per batch. */
const MAX_BATCH = 10_000;

/**
 * A file's own shard: `cli-` + the first 16 hex digits of its SHA-256. Its lines get the same
 * sequence numbers on every run (SEQUENCE_BASE + line number), so a re-run — after an interrupted
 * run, or by mistake — skips what the shard's checkpoint says is staged: every line once.
 */
export async function fileShardOf(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `cli-${hash.digest('hex').slice(0, 16)}`;
}

/** Like Kinesis, never reuse a shard's sequence numbers: continue after what its checkpoint has seen. */
export async function lastSequenceOf(ledger: StagingLedger, shardId: string): Promise<bigint> {
  const checkpoint = await ledger.getCheckpoint(shardId);
  let highest = SEQUENCE_BASE;
  for (const sequence of [checkpoint.stagedThrough, checkpoint.pending?.lastSequence]) {
    if (sequence !== undefined && /^\d+$/.test(sequence) && BigInt(sequence) > highest)
      highest = BigInt(sequence);
  }
  return highest;
}

/** The lines of a file (or stdin) as bytes, without their line ends; blank lines are skipped. */
async function* lines(path: string): AsyncGenerator<Buffer> {
  const input = path === '-' ? process.stdin : createReadStream(path);
  let rest = Buffer.alloc(0);
  const line = (bytes: Buffer) => (bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes);
  for await (const chunk of input) {
    let buffer = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    for (let newline = buffer.indexOf(0x0a); newline >= 0; newline = buffer.indexOf(0x0a)) {
      const bytes = line(buffer.subarray(0, newline));
      if (bytes.toString('utf8').trim() !== '') yield bytes;
      buffer = buffer.subarray(newline + 1);
    }
    rest = Buffer.from(buffer);
  }
  const last = line(rest);
  if (last.toString('utf8').trim() !== '') yield last;
}

export interface StageTotals {
  shardId: string;
  records: number;
  batches: number;
  stagedEvents: number;
  quarantinedRecords: number;
  alreadyStagedRecords: number;
  objectsCreated: string[];
  firstSequence?: string;
  lastSequence?: string;
}

export const stage: CliCommand = {
  name: 'stage',
  summary: 'Stage an NDJSON file of events into the staging bucket, as the stager does with Kinesis batches',
  usage: 'FILE.ndjson [--shard ID] [--batch-size N]',
  description:
    'Each line is one record as a producer puts it on the stream: {"app_id": "...", "event": {...}}\n' +
    '("-" reads stdin). Lines become Kinesis-shaped records whose sequence numbers continue after\n' +
    "the shard's checkpoint in the StagingLedger, and each batch is staged by the stager's use case\n" +
    '(exactly-once checkpoint, stage time = now). Malformed lines are quarantined with the reason,\n' +
    'as the stager does. A FILE is staged as its own shard (cli-<sha256 prefix>) with one sequence\n' +
    'number per line, so running the command again on the same file (after an interruption) stages\n' +
    `only the lines not yet staged. stdin is staged as "${CLI_SHARD}", continuing after its checkpoint:\n` +
    'a second run stages it again. Never stage as a real shard of the stream.',
  options: {
    shard: {
      type: 'string',
      valueName: 'ID',
      description: `shard id of the checkpoint (default: the file's own, or ${CLI_SHARD} for stdin)`,
    },
    'batch-size': {
      type: 'string',
      valueName: 'N',
      description: `records per stager invocation (default 500, at most ${MAX_BATCH})`,
    },
  },
  async run(args, ctx) {
    const path = onePositional(
      args,
      'FILE.ndjson (one {"app_id": ..., "event": {...}} per line; - for stdin)',
    );
    const fromFile = path !== '-';
    const shardOption = stringOption(args, 'shard');
    const validShard = (id: string) => /^[A-Za-z0-9_.-]{1,128}$/.test(id);
    if (shardOption !== undefined && !validShard(shardOption))
      throw new UsageError('--shard must be 1-128 letters, digits, "_", "." or "-"');
    const batchSize = positiveInteger(stringOption(args, 'batch-size'), '--batch-size', 500);
    if (batchSize > MAX_BATCH) throw new UsageError(`--batch-size must be at most ${MAX_BATCH}`);
    if (path !== '-') {
      const file = await stat(path).catch(() => undefined);
      if (!file) throw new CliError(`${path}: no such file`);
      if (file.isDirectory()) throw new CliError(`${path}: is a directory, expected an NDJSON file`);
    }
    const shardId = shardOption ?? (fromFile ? await fileShardOf(path) : CLI_SHARD);

    // Staging from the CLI needs the deployment's settings like every export-affecting command.
    operationSettings(ctx);
    const [ledger, store, { stageBatch, StagingSlotSettlingError }] = await Promise.all([
      ctx.stagingLedger(),
      ctx.stagingStore(),
      import('../../lambdas/usecases/stage-batch.ts'),
    ]);
    const deps = { ledger, store, clock: ctx.clock };
    // A file's lines are numbered from the base (a re-run is skipped up to the checkpoint); stdin
    // continues after the shard's checkpoint.
    let sequence =
      fromFile && !stringOption(args, 'shard') ? SEQUENCE_BASE : await lastSequenceOf(ledger, shardId);
    const totals: StageTotals = {
      shardId,
      records: 0,
      batches: 0,
      stagedEvents: 0,
      quarantinedRecords: 0,
      alreadyStagedRecords: 0,
      objectsCreated: [],
    };
    const add = (result: StageBatchResult) => {
      totals.batches += 1;
      totals.stagedEvents += result.stagedEvents;
      totals.quarantinedRecords += result.quarantinedRecords;
      totals.alreadyStagedRecords += result.alreadyStagedRecords;
      totals.objectsCreated.push(...result.objectsCreated);
    };

    // The safe horizon: never stage into a slot that is already compacted (this machine's clock
    // behind), and say so loudly if a batch's segment landed after its slot was compacted.
    const { slotIndexKey, slotStartOf, stageTimeOfSegmentKey } = await import(
      '../../lambdas/domain/staging-layout.ts'
    );
    const compacted = (at: Date) => store.exists(slotIndexKey(slotStartOf(at)));
    const stageChecked = async (records: IncomingRecord[]) => {
      const now = ctx.clock.now();
      if (await compacted(now))
        throw new CliError(
          `the staging slot of this machine's time (${now.toISOString()}) is already compacted: the clock is behind the deployment's. Fix the clock (NTP) and run the command again; nothing of this batch was staged`,
        );
      const result = await stageBatch({ shardId, records }, deps).catch((error: unknown) => {
        if (!(error instanceof StagingSlotSettlingError)) throw error;
        throw new CliError(
          `a batch of an earlier, interrupted run of this shard is not staged and its ${STAGING_SLOT_MINUTES}-minute staging slot closed less than ${COMPACTION_DELAY_SECONDS} s ago: its segment may still be written. Run the same command again after ${error.retryAt.toISOString()}; lines already staged are skipped`,
        );
      });
      for (const key of result.objectsCreated) {
        const stageTime = stageTimeOfSegmentKey(key);
        if (stageTime && (await compacted(stageTime)))
          throw new CliError(
            `segment ${key} was written after its slot was compacted (a batch slower than the stager's timeout): its events will not be exported. Stage those lines again as another shard (--shard)`,
          );
      }
      return result;
    };

    let batch: IncomingRecord[] = [];
    for await (const data of lines(path)) {
      sequence += 1n;
      totals.firstSequence ??= sequence.toString();
      totals.lastSequence = sequence.toString();
      totals.records += 1;
      batch.push({
        sequenceNumber: sequence.toString(),
        data,
        approximateArrivalTimestamp: ctx.clock.now().getTime() / 1000,
      });
      if (batch.length >= batchSize) {
        add(await stageChecked(batch));
        batch = [];
      }
    }
    if (batch.length > 0) add(await stageChecked(batch));

    if (ctx.settings.json) {
      ctx.print(JSON.stringify(totals, null, 2));
      return 0;
    }
    if (totals.records === 0) {
      ctx.warn(`${path}: no records`);
      return 0;
    }
    ctx.print(
      `staged ${totals.stagedEvents} event(s), quarantined ${totals.quarantinedRecords} record(s) ` +
        `from ${totals.records} line(s) in ${totals.batches} batch(es); ${totals.objectsCreated.length} object(s) created ` +
        `(shard ${shardId}, sequence ${totals.firstSequence}..${totals.lastSequence})`,
    );
    if (totals.alreadyStagedRecords > 0)
      ctx.print(
        `${totals.alreadyStagedRecords} record(s) were already staged (an earlier run of this file): not staged again`,
      );
    if (totals.quarantinedRecords > 0)
      ctx.print('quarantined records are kept under quarantine/ in the staging bucket with the reason');
    return 0;
  },
};
