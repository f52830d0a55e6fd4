import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { compareSequenceNumbers } from '../domain/staging-layout.ts';
import {
  type IncomingRecord,
  type StageBatchDeps,
  type StageBatchResult,
  stageBatch,
} from '../usecases/stage-batch.ts';

/** `shardId-000000000000:4954...` → `shardId-000000000000`. */
export function shardIdOf(eventID: string): string {
  const colon = eventID.indexOf(':');
  return colon > 0 ? eventID.slice(0, colon) : eventID;
}

export interface KinesisBatchOutcome {
  response: KinesisStreamBatchResponse;
  results: { shardId: string; result?: StageBatchResult; error?: unknown }[];
}

/**
 * Adapt a Kinesis event to the stager use case. Lambda delivers one shard per batch; a failed
 * shard reports its FIRST record, so the retry starts at the same record and the checkpoint
 * recognizes the unit (records before it are never reported as failed: that would split a unit).
 */
export async function stageKinesisEvent(
  event: KinesisStreamEvent,
  deps: StageBatchDeps,
): Promise<KinesisBatchOutcome> {
  const byShard = new Map<string, IncomingRecord[]>();
  for (const record of event.Records) {
    const shardId = shardIdOf(record.eventID);
    const records = byShard.get(shardId) ?? [];
    records.push({
      sequenceNumber: record.kinesis.sequenceNumber,
      data: Buffer.from(record.kinesis.data, 'base64'),
      approximateArrivalTimestamp: record.kinesis.approximateArrivalTimestamp,
    });
    byShard.set(shardId, records);
  }
  const outcome: KinesisBatchOutcome = { response: { batchItemFailures: [] }, results: [] };
  for (const [shardId, records] of byShard) {
    records.sort((a, b) => compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber));
    try {
      outcome.results.push({ shardId, result: await stageBatch({ shardId, records }, deps) });
    } catch (error) {
      outcome.results.push({ shardId, error });
      outcome.response.batchItemFailures.push({ itemIdentifier: records[0]!.sequenceNumber });
    }
  }
  return outcome;
}
