/**
 * SQS export jobs → executeExportJob (one connection, or a group of one app's connections run
 * concurrently with shared staged reads), one message at a time, partial batch failures for
 * retries/DLQ.
 */

import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { gapMs } from '../domain/data-expiry.ts';
import { METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import type { ExportJob } from '../ports/index.ts';
import { type ExportJobRun, executeExportJob, type MemberRun } from '../usecases/export-job.ts';
import { sharedRecordWorkers } from '../usecases/record-workers.ts';

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
  'export job must be {"connectionId": string} or {"connectionIds": [string, ...]}, with "windowEnd": ISO string, "reason": ...';

/** A single connection's job (`connectionId`) or a group job (`connectionIds`), never both. */
export function parseExportJob(body: string): ExportJob {
  const job = JSON.parse(body) as {
    connectionId?: unknown;
    connectionIds?: unknown;
    windowEnd?: unknown;
    reason?: ExportJob['reason'];
  };
  const ids = job.connectionIds;
  const group = Array.isArray(ids) && ids.length > 0 && ids.every((id) => typeof id === 'string');
  const single = typeof job.connectionId === 'string';
  if (!(single ? ids === undefined : group) || typeof job.windowEnd !== 'string') {
    throw new Error(JOB_SHAPE);
  }
  if (Number.isNaN(new Date(job.windowEnd).getTime()))
    throw new Error('export job windowEnd is not an ISO instant');
  const reason = job.reason ?? 'schedule';
  return single
    ? { connectionId: job.connectionId as string, windowEnd: job.windowEnd, reason }
    : { connectionIds: ids as string[], windowEnd: job.windowEnd, reason };
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
