/**
 * Hourly schedule → validate every connection row (usecases/sweep-connections.ts): refused
 * rows get their diagnosis on their export state, and their count is the `InvalidConnections`
 * metric of the `connection-sweep` service (alarmed in lib/monitoring.ts).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createConnectionChecks } from '../adapters/connection-checks.ts';
import { METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import { sweepConnections } from '../usecases/sweep-connections.ts';

const logger = createLogger(SERVICE_NAMES.connectionSweep);
const metrics = createMetrics(SERVICE_NAMES.connectionSweep);

async function sweep() {
  const runtime = lambdaRuntime();
  const result = await sweepConnections({
    connections: runtime.connections,
    state: runtime.state,
    checks: createConnectionChecks(runtime.config.kmsKeyAllowlist),
    clock: runtime.clock,
  });
  metrics.addMetric(METRICS.invalidConnections, MetricUnit.Count, result.invalid.length);
  if (result.invalid.length) {
    // Ids, codes and fields only: messages can quote row values.
    logger.warn('invalid connection rows', {
      invalid: result.invalid.map((r) => ({
        connectionId: r.connectionId,
        code: r.code,
        fields: r.errors.map((e) => e.field),
      })),
    });
  }
  logger.info('connections swept', { rows: result.rows, invalid: result.invalid.length });
  return { rows: result.rows, invalid: result.invalid.length };
}

export const handler = middy(sweep).use(injectLambdaContext(logger)).use(logMetrics(metrics));
