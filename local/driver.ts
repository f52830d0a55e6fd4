/**
 * The local driver (LocalDriver): the same use cases and adapters as the Lambdas, with the
 * SQS queue replaced by an in-process queue that is drained right after each tick. The demo,
 * the CLI's stage/tick/export commands, the simulation and the integration tests all drive the
 * product through this. (The harness, local/harness.ts, is what builds one against running local
 * engines, with readers of the customer buckets.)
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { InProcessJobQueue } from '../lambdas/adapters/in-process-job-queue.ts';
import type { RuntimeConfig } from '../lambdas/config.ts';
import type { Frequency } from '../lambdas/definitions.ts';
import type { Clock, ConnectionExportJob, ExportJob, ExportSink } from '../lambdas/ports/index.ts';
import { createRuntime, type Runtime, type RuntimeParts } from '../lambdas/runtime.ts';
import { dispatchTick, type TickResult } from '../lambdas/usecases/dispatch-tick.ts';
import { type ExportJobRun, executeExportJob } from '../lambdas/usecases/export-job.ts';
import { type ExportDeps, type ExportOutcome, exportWindow } from '../lambdas/usecases/export-window.ts';
import { type IncomingRecord, type StageBatchResult, stageBatch } from '../lambdas/usecases/stage-batch.ts';

export const DEFAULT_SHARD = 'shardId-000000000000';
/** Kinesis-like 56-digit sequence numbers. */
const SEQUENCE_BASE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;

export interface LocalDriverOptions {
  config: RuntimeConfig;
  clock: Clock;
  documentClient: DynamoDBDocumentClient;
  stagingS3: S3Client;
  sink: ExportSink;
  preflight?: RuntimeParts['preflight'];
  diagnose?: RuntimeParts['diagnose'];
  notifier?: RuntimeParts['notifier'];
  /** Overrides for every export (e.g. a tiny part size or time budget in tests). */
  exportOverrides?: Partial<ExportDeps>;
}

export interface IncomingEvent {
  app_id: string;
  event: Record<string, unknown>;
}

/** One connection's export: a single job, or one member of a group job. */
export interface ExportRun {
  job: ConnectionExportJob;
  outcome?: ExportOutcome;
  error?: unknown;
  /** The queued job it ran in (for a group, shared by its members), with the staged bytes it read. */
  run: ExportJobRun;
}

export interface TickRun {
  tick: TickResult;
  exports: ExportRun[];
}

export class LocalDriver {
  readonly queue = new InProcessJobQueue();
  readonly runtime: Runtime;
  private readonly nextSequence = new Map<string, bigint>();

  constructor(private readonly options: LocalDriverOptions) {
    this.runtime = createRuntime(options.config, {
      clients: { documentClient: options.documentClient, stagingS3: options.stagingS3 },
      sink: options.sink,
      jobs: this.queue,
      clock: options.clock,
      preflight: options.preflight,
      diagnose: options.diagnose,
      notifier: options.notifier,
    });
  }

  /** Kinesis records as a producer's PutRecords would create them, in shard order. */
  kinesisRecords(events: (IncomingEvent | Uint8Array)[], shardId = DEFAULT_SHARD): IncomingRecord[] {
    let next = this.nextSequence.get(shardId) ?? SEQUENCE_BASE;
    const records = events.map((e) => {
      next += 1n;
      return {
        sequenceNumber: next.toString(),
        data: e instanceof Uint8Array ? e : Buffer.from(JSON.stringify(e)),
        approximateArrivalTimestamp: this.options.clock.now().getTime() / 1000,
      };
    });
    this.nextSequence.set(shardId, next);
    return records;
  }

  /** Stage one batch (what one stager invocation does with one shard's batch). */
  async stageRecords(records: IncomingRecord[], shardId = DEFAULT_SHARD): Promise<StageBatchResult> {
    return stageBatch({ shardId, records }, this.runtime.stagerDeps());
  }

  async stage(events: (IncomingEvent | Uint8Array)[], shardId = DEFAULT_SHARD): Promise<StageBatchResult> {
    await this.resumeSequence(shardId);
    return this.stageRecords(this.kinesisRecords(events, shardId), shardId);
  }

  /** Like Kinesis, never reuse a shard's sequence numbers: continue after what the ledger has seen. */
  async resumeSequence(shardId = DEFAULT_SHARD): Promise<void> {
    if (this.nextSequence.has(shardId)) return;
    const checkpoint = await this.runtime.ledger.getCheckpoint(shardId);
    let highest = SEQUENCE_BASE;
    for (const sequence of [checkpoint.stagedThrough, checkpoint.pending?.lastSequence]) {
      // BigInt: Math.max does not apply.
      if (sequence !== undefined && BigInt(sequence) > highest) highest = BigInt(sequence);
    }
    this.nextSequence.set(shardId, highest);
  }

  /** What the schedule does at `scheduledTime`: dispatch, then drain the queue through the exporter. */
  async tick(frequency: Frequency, scheduledTime: Date): Promise<TickRun> {
    const tick = await dispatchTick(
      { frequency, scheduledTime },
      this.runtime.dispatchDeps(),
      this.options.config.settleDelayMinutes * 60_000,
    );
    return { tick, exports: await this.drain() };
  }

  /**
   * Run every queued job (continuations and the retries of failed group members included), one
   * report per connection; a failing connection is reported, the others go on.
   */
  async drain(): Promise<ExportRun[]> {
    const runs: ExportRun[] = [];
    await this.queue.drain(async (job) => {
      const run = await this.runJob(job);
      for (const member of run.members) {
        runs.push({
          job: { connectionId: member.connectionId, windowEnd: job.windowEnd, reason: job.reason },
          ...(member.outcome ? { outcome: member.outcome } : { error: member.error }),
          run,
        });
      }
    });
    return runs;
  }

  /** A queued job as the exporter Lambda runs it: a single connection, or a group with shared reads. */
  async runJob(job: ExportJob): Promise<ExportJobRun> {
    return executeExportJob(job, this.runtime.exportDeps(this.options.exportOverrides));
  }

  /** One connection's export, unwrapped: its outcome, or the error it threw. */
  async exportJob(job: { connectionId: string; windowEnd: string }): Promise<ExportOutcome> {
    return exportWindow(
      { connectionId: job.connectionId, windowEnd: new Date(job.windowEnd) },
      this.runtime.exportDeps(this.options.exportOverrides),
    );
  }
}
