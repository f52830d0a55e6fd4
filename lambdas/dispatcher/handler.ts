/**
 * EventBridge Scheduler tick → the export jobs of the frequency's ACTIVE connections: one group
 * job per app for the connections on time, one job per connection catching up.
 */

import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { FREQUENCIES, type Frequency } from '../definitions.ts';
import { DIMENSIONS, METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import type { ScheduleInput } from '../domain/schedules.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import { dispatchTick } from '../usecases/dispatch-tick.ts';

const logger = createLogger(SERVICE_NAMES.dispatcher);
const metrics = createMetrics(SERVICE_NAMES.dispatcher);

/** The schedule's input (domain/schedules.ts scheduleInput): `{"frequency": …, "scheduledTime": "<instant>"}`. */
const tickEvent = z.object({
  frequency: z.enum(FREQUENCIES),
  scheduledTime: z.string().refine((s) => !Number.isNaN(new Date(s).getTime())),
});

export function parseTickEvent(event: unknown): { frequency: Frequency; scheduledTime: Date } {
  const parsed = tickEvent.safeParse(event ?? {});
  if (!parsed.success) {
    const { frequency, scheduledTime } = (event ?? {}) as Partial<ScheduleInput>;
    if (parsed.error.issues.some((issue) => issue.path[0] === 'frequency'))
      throw new Error(
        `tick event frequency must be one of ${FREQUENCIES.join(', ')}, got ${JSON.stringify(frequency)}`,
      );
    throw new Error(
      `tick event scheduledTime must be an ISO-8601 instant, got ${JSON.stringify(scheduledTime)}`,
    );
  }
  return { frequency: parsed.data.frequency, scheduledTime: new Date(parsed.data.scheduledTime) };
}

/** A tick that ran out of time: its progress is saved, and Lambda's retry of the event continues it. */
export class DispatchIncompleteError extends Error {
  override readonly name = 'DispatchIncompleteError';
}

async function tick(event: ScheduleInput, context?: Context) {
  const runtime = lambdaRuntime();
  const input = parseTickEvent(event);
  const result = await dispatchTick(
    input,
    runtime.dispatchDeps(),
    runtime.config.settleDelayMinutes * 60_000,
    {
      stagingRetentionDays: runtime.config.stagingRetentionDays,
      ...(context?.getRemainingTimeInMillis
        ? { remainingTimeMs: () => context.getRemainingTimeInMillis() }
        : {}),
    },
  );
  metrics.addDimension(DIMENSIONS.frequency, input.frequency);
  // Connections dispatched (a group message carries several).
  metrics.addMetric(METRICS.exportJobsEnqueued, MetricUnit.Count, result.connections);
  metrics.addMetric(METRICS.invalidConnections, MetricUnit.Count, result.invalidConnections.length);
  metrics.addMetric(METRICS.exportLagSeconds, MetricUnit.Seconds, result.maxLagSeconds);
  metrics.addMetric(METRICS.unexportedDataAgeSeconds, MetricUnit.Seconds, result.maxUnexportedAgeSeconds);
  metrics.addMetric(METRICS.dataAtRiskConnections, MetricUnit.Count, result.atRisk.length);
  if (result.atRisk.length) {
    logger.warn('unexported staged data close to or past its expiry', {
      atRisk: result.atRisk.slice(0, 100),
    });
  }
  if (result.invalidConnections.length) {
    logger.warn('invalid connection rows skipped', { connectionIds: result.invalidConnections });
  }
  if (result.lagging.length) logger.warn('connections behind schedule', { lagging: result.lagging });
  logger.info('tick dispatched', {
    frequency: input.frequency,
    windowEnd: result.windowEnd.toISOString(),
    jobs: result.connections,
    messages: result.jobs.length,
    inactive: result.inactiveConnections,
    pages: result.pages,
    status: result.status,
  });
  if (result.status === 'continued') {
    throw new DispatchIncompleteError(
      `tick ${input.frequency} ${result.windowEnd.toISOString()} ran low on time after ${result.pages} page(s); its progress is saved and a retry continues it`,
    );
  }
  return {
    windowEnd: result.windowEnd.toISOString(),
    jobs: result.connections,
    messages: result.jobs.length,
  };
}

export const handler = middy(tick).use(injectLambdaContext(logger)).use(logMetrics(metrics));
