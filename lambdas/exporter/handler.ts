/**
 * SQS export jobs → executeExportJob (one connection; a group of one app's connections run
 * concurrently with shared staged reads; or a batch of many apps' groups, 8 at a time), one
 * message at a time, partial batch failures for retries/DLQ. Thin: each message body is parsed with a schema (parseExportJob), the use case
 * runs with the container's Runtime (lambda-runtime.ts), and the outcome becomes metrics and logs.
 *
 * The SQS loop is written out here, not with `@aws-lambda-powertools/batch`: that package is not
 * a dependency of the project (only Powertools logger and metrics are), and a message's outcome
 * here is more than "processed or thrown" — a job that ran out of time or lost its lease is
 * reported as a batch item failure for redelivery (`run.redeliver`) after its metrics and logs,
 * and a group or batch job's failed members are re-enqueued alone while the message is
 * acknowledged. The event source delivers one message per invocation (a batch job already
 * carries up to 100 connections), so Powertools' per-record concurrency would add nothing.
 */

import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { z } from 'zod';
import { gapMs } from '../domain/data-expiry.ts';
import { METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import type { ExportJob } from '../ports/index.ts';
import { type ExportJobRun, executeExportJob, type MemberRun } from '../usecases/export-job.ts';
import { sharedRecordWorkers } from '../usecases/record-worker-pool.ts';

const logger = createLogger(SERVICE_NAMES.exporter);
const metrics = createMetrics(SERVICE_NAMES.exporter);

// Start the record worker threads during the init phase (not billed into the first export's time).
// A failure here is not fatal: the first job starts them again and reports the error if it persists.
sharedRecordWorkers()
  ?.warm()
  .catch((error: unknown) =>
    logger.warn('record workers did not start during init', {
      error: error instanceof Error ? error.message : String(error),
    }),
  );

/** Stop between parts when less than this is left, leaving time to save the cursor and re-enqueue. */
const RESERVE_MS = 3 * 60_000;

const JOB_SHAPE =
  'export job must be {"connectionId": string}, {"connectionIds": [string, ...]} or {"groups": [[string, ...], ...]}, with "windowEnd": ISO string, "reason": ...';

const JOB_REASONS = [
  'schedule',
  'continuation',
  'backfill',
  'manual',
  'retry',
] as const satisfies readonly ExportJob['reason'][];
const ids = z.array(z.string()).min(1);
const jobBase = {
  windowEnd: z
    .string()
    .refine((t) => !Number.isNaN(new Date(t).getTime()), 'windowEnd is not an ISO instant'),
  reason: z.enum(JOB_REASONS).default('schedule'),
};
const exportJobSchema = z.union([
  z.object({ connectionId: z.string(), ...jobBase }).strict(),
  z.object({ connectionIds: ids, ...jobBase }).strict(),
  z.object({ groups: z.array(ids).min(1), ...jobBase }).strict(),
]);

/** A single connection's job, a group job (`connectionIds`) or a batch job (`groups`), exactly one. */
export function parseExportJob(body: string): ExportJob {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`${JOB_SHAPE}; the message body is not JSON`);
  }
  const parsed = exportJobSchema.safeParse(json);
  if (!parsed.success) {
    const windowEndIssue = parsed.error.issues.some((i) =>
      JSON.stringify(i).includes('windowEnd is not an ISO instant'),
    );
    throw new Error(windowEndIssue ? 'export job windowEnd is not an ISO instant' : JOB_SHAPE);
  }
  return parsed.data as ExportJob;
}

/** Metrics and the log line of one connection's export, the same for a single job and a group member. */
function reportMember(
  job: ExportJob,
  member: MemberRun,
  run: ExportJobRun,
  messageId: string,
  readFigures: Record<string, number>,
) {
  const { outcome, error } = member;
  if (!outcome) {
    metrics.addMetric(METRICS.exportFailures, MetricUnit.Count, 1);
    logger.error(
      run.redeliver
        ? 'export job failed; SQS will retry it'
        : 'export job failed; it is retried as a job of its own',
      {
        messageId,
        connectionId: member.connectionId,
        windowEnd: job.windowEnd,
        error: error instanceof Error ? { name: error.name, message: error.message } : String(error),
      },
    );
    return;
  }
  if (outcome.status === 'committed' || outcome.status === 'continued' || outcome.status === 'lost-race') {
    for (const w of outcome.windows) {
      metrics.addMetric(METRICS.eventsExported, MetricUnit.Count, w.records);
      metrics.addMetric(METRICS.filesExported, MetricUnit.Count, w.parts.length);
      metrics.addMetric(
        METRICS.bytesExported,
        MetricUnit.Bytes,
        w.parts.reduce((n, p) => n + p.bytes, 0),
      );
      // How many events a gap lost is unknown once they expired: count the windows and the time.
      if (w.gaps?.length) {
        metrics.addMetric(METRICS.expiredDataWindows, MetricUnit.Count, 1);
        metrics.addMetric(
          METRICS.expiredDataSeconds,
          MetricUnit.Seconds,
          Math.round(w.gaps.reduce((n, g) => n + gapMs(g), 0) / 1000),
        );
        logger.warn('window committed with a gap: staged data older than the retention may have expired', {
          connectionId: member.connectionId,
          windowEnd: w.windowEnd.toISOString(),
          gaps: w.gaps,
        });
      }
    }
  }
  if (outcome.status === 'refused') metrics.addMetric(METRICS.connectionsRefused, MetricUnit.Count, 1);
  logger.info('export job done', {
    connectionId: member.connectionId,
    windowEnd: job.windowEnd,
    status: outcome.status,
    ...('windows' in outcome ? { windows: outcome.windows.map((w) => w.windowEnd.toISOString()) } : {}),
    ...('diagnosis' in outcome ? { diagnosis: outcome.diagnosis.code } : {}),
    ...readFigures,
  });
}

async function exportJobs(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const runtime = lambdaRuntime();
  const failures: SQSBatchResponse['batchItemFailures'] = [];
  for (const message of event.Records) {
    let run: ExportJobRun;
    try {
      const job = parseExportJob(message.body);
      run = await executeExportJob(
        job,
        runtime.exportDeps({
          remainingTimeMs: () => context.getRemainingTimeInMillis(),
          reserveMs: RESERVE_MS,
        }),
      );
    } catch (error) {
      metrics.addMetric(METRICS.exportFailures, MetricUnit.Count, 1);
      logger.error('export job failed; SQS will retry it', {
        messageId: message.messageId,
        error: error instanceof Error ? { name: error.name, message: error.message } : String(error),
      });
      failures.push({ itemIdentifier: message.messageId });
      continue;
    }
    const reads = { stagedBytesRead: run.stagedReads.bytes, stagedObjectsRead: run.stagedReads.objects };
    metrics.addMetric(METRICS.stagedBytesRead, MetricUnit.Bytes, run.stagedReads.bytes);
    const group = run.members.length > 1;
    // A single job's read figures go on its line; a group's on the group's line below.
    for (const member of run.members)
      reportMember(run.job, member, run, message.messageId, group ? {} : reads);
    if (group) {
      logger.info('export group done', {
        connectionIds: run.members.map((m) => m.connectionId),
        windowEnd: run.job.windowEnd,
        ...reads,
        sharedOpens: run.shared?.shared ?? 0,
        lookAheadWaits: run.shared?.waits ?? 0,
        peakObjectsHeld: run.shared?.peakHeld ?? 0,
        retriedAlone: run.retried.map((j) => j.connectionId),
      });
    }
    if (run.redeliver) failures.push({ itemIdentifier: message.messageId });
  }
  return { batchItemFailures: failures };
}

export const handler = middy(exportJobs).use(injectLambdaContext(logger)).use(logMetrics(metrics));
