/**
 * Kinesis → staging bucket. Thin: adapts the event, runs the stager use case, reports partial
 * failures. The event is the Kinesis event source mapping's (typed by `aws-lambda`); the records'
 * payloads are the untrusted part and are validated by the use case (usecases/stage-batch.ts),
 * which quarantines what it refuses instead of failing the batch.
 */

import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import { StagingSlotSettlingError } from '../usecases/stage-batch.ts';
import { stageKinesisEvent } from './kinesis-batch.ts';

const logger = createLogger(SERVICE_NAMES.stager);
const metrics = createMetrics(SERVICE_NAMES.stager);

async function stage(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  const runtime = lambdaRuntime();
  const outcome = await stageKinesisEvent(event, runtime.stagerDeps());
  // A failed batch is returned as a batch item failure, not thrown: Lambda's Errors metric stays 0,
  // so this metric is what the StagingFailures alarm watches. A batch waiting (at most
  // COMPACTION_DELAY_SECONDS) for its unit's slot to be final is retried too, and is not a failure.
  metrics.addMetric(
    METRICS.stagingFailures,
    MetricUnit.Count,
    outcome.results.filter((r) => !r.result && !(r.error instanceof StagingSlotSettlingError)).length,
  );
  for (const { shardId, result, error } of outcome.results) {
    if (result) {
      metrics.addMetric(METRICS.eventsStaged, MetricUnit.Count, result.stagedEvents);
      metrics.addMetric(METRICS.recordsQuarantined, MetricUnit.Count, result.quarantinedRecords);
      metrics.addMetric(METRICS.stagingRangesAbandoned, MetricUnit.Count, result.abandoned.length);
      if (result.abandoned.length > 0)
        logger.error(
          'the event source gave up on records that were not staged; see the StagingRangesAbandoned runbook',
          {
            shardId,
            abandoned: result.abandoned,
          },
        );
      logger.info('batch staged', {
        shardId,
        stagedEvents: result.stagedEvents,
        quarantinedRecords: result.quarantinedRecords,
        alreadyStagedRecords: result.alreadyStagedRecords,
        objectsCreated: result.objectsCreated.length,
      });
    } else if (error instanceof StagingSlotSettlingError) {
      logger.warn("batch waits for its unit's slot to be final; it will be retried", {
        shardId,
        reason: error.message,
      });
    } else {
      logger.error('batch not staged; it will be retried from its first record', {
        shardId,
        error: error instanceof Error ? { name: error.name, message: error.message } : String(error),
      });
    }
  }
  return outcome.response;
}

export const handler = middy(stage).use(injectLambdaContext(logger)).use(logMetrics(metrics));
