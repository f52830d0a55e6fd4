/** SQS export jobs → exportWindow, one message at a time, partial batch failures for retries/DLQ. */

import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import type { ExportJob } from '../ports/index.ts';
import { type ExportOutcome, exportWindow } from '../usecases/export-window.ts';

const logger = createLogger(SERVICE_NAMES.exporter);
const metrics = createMetrics(SERVICE_NAMES.exporter);

/** Stop between parts when less than this is left, leaving time to save the cursor and re-enqueue. */
const RESERVE_MS = 3 * 60_000;

export function parseExportJob(body: string): ExportJob {
  const job = JSON.parse(body) as Partial<ExportJob>;
  if (typeof job.connectionId !== 'string' || typeof job.windowEnd !== 'string') {
    throw new Error('export job must be {"connectionId": string, "windowEnd": ISO string, "reason": ...}');
  }
  if (Number.isNaN(new Date(job.windowEnd).getTime()))
    throw new Error('export job windowEnd is not an ISO instant');
  return { connectionId: job.connectionId, windowEnd: job.windowEnd, reason: job.reason ?? 'schedule' };
}

/**
 * Another exporter holds the lease. If it died, its lease expires long before SQS makes the
 * message visible again, so the job is retried instead of waiting for the next tick (a week for
 * WEEKLY). If it is alive, the retry finds the window committed and does nothing.
 */
export function retryLater(outcome: ExportOutcome): boolean {
  return outcome.status === 'lease-held';
}

async function exportJobs(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const runtime = lambdaRuntime();
  const failures: SQSBatchResponse['batchItemFailures'] = [];
  for (const message of event.Records) {
    try {
      const job = parseExportJob(message.body);
      const outcome = await exportWindow(
        { connectionId: job.connectionId, windowEnd: new Date(job.windowEnd) },
        runtime.exportDeps({
          remainingTimeMs: () => context.getRemainingTimeInMillis(),
          reserveMs: RESERVE_MS,
        }),
      );
      if (
        outcome.status === 'committed' ||
        outcome.status === 'continued' ||
        outcome.status === 'lost-race'
      ) {
        for (const w of outcome.windows) {
          metrics.addMetric(METRICS.eventsExported, MetricUnit.Count, w.records);
          metrics.addMetric(METRICS.filesExported, MetricUnit.Count, w.parts.length);
          metrics.addMetric(
            METRICS.bytesExported,
            MetricUnit.Bytes,
            w.parts.reduce((n, p) => n + p.bytes, 0),
          );
        }
      }
      if (outcome.status === 'refused') metrics.addMetric(METRICS.connectionsRefused, MetricUnit.Count, 1);
      if (retryLater(outcome)) failures.push({ itemIdentifier: message.messageId });
      logger.info('export job done', {
        connectionId: job.connectionId,
        windowEnd: job.windowEnd,
        status: outcome.status,
        ...('windows' in outcome ? { windows: outcome.windows.map((w) => w.windowEnd.toISOString()) } : {}),
        ...('diagnosis' in outcome ? { diagnosis: outcome.diagnosis.code } : {}),
      });
    } catch (error) {
      metrics.addMetric(METRICS.exportFailures, MetricUnit.Count, 1);
      logger.error('export job failed; SQS will retry it', {
        messageId: message.messageId,
        error: error instanceof Error ? { name: error.name, message: error.message } : String(error),
      });
      failures.push({ itemIdentifier: message.messageId });
    }
  }
  return { batchItemFailures: failures };
}

export const handler = middy(exportJobs).use(injectLambdaContext(logger)).use(logMetrics(metrics));
