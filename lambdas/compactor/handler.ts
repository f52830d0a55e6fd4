/**
 * Compaction schedule tick → every staging slot due by the tick's scheduled time is compacted
 * (lambdas/usecases/compact-slot.ts). Thin: parses the tick, runs the use case, emits metrics.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { z } from 'zod';
import { METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import { compactDueSlots, readBudgetForMemory } from '../usecases/compact-slot.ts';

const logger = createLogger(SERVICE_NAMES.compactor);
const metrics = createMetrics(SERVICE_NAMES.compactor);

/** The schedule's input: `{"scheduledTime": "<aws.scheduler.scheduled-time>"}`. */
const compactionTick = z.object({ scheduledTime: z.iso.datetime({ offset: true }) }).strict();

export function parseCompactionTick(event: unknown): Date {
  const parsed = compactionTick.safeParse(event);
  if (!parsed.success)
    throw new Error(
      `compaction tick must be {"scheduledTime": "<ISO-8601 instant>"}: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
    );
  return new Date(parsed.data.scheduledTime);
}

async function compact(event: unknown) {
  const at = parseCompactionTick(event);
  const runtime = lambdaRuntime();
  const done = await compactDueSlots(at, {
    store: runtime.staging,
    clock: runtime.clock,
    // Lambda sets the function's memory (MB): the larger the budget, the fewer ranged GETs.
    readChunkBytes: readBudgetForMemory(Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE)),
  });
  for (const { slotStart, outcome } of done) {
    if (outcome.status !== 'compacted') continue;
    metrics.addMetric(METRICS.slotsCompacted, MetricUnit.Count, 1);
    metrics.addMetric(METRICS.eventsCompacted, MetricUnit.Count, outcome.events);
    logger.info('slot compacted', { slotStart: slotStart.toISOString(), ...outcome });
  }
  return { compacted: done.filter((d) => d.outcome.status === 'compacted').length };
}

export const handler = middy(compact).use(injectLambdaContext(logger)).use(logMetrics(metrics));
