/**
 * "Test connection": `{ connectionId }` → usecases/test-connection.ts testStoredConnection → the
 * report. Thin: parses the event, runs the use case with the container's Runtime (the same
 * composition root as the other functions, lambda-runtime.ts), logs and counts the outcome.
 * A failing report is also recorded on the connection's export state (lastError), where the CLI
 * and the dashboard show it; a passing one clears the error recorded before it.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { z } from 'zod';
import { METRICS, SERVICE_NAMES } from '../domain/metrics.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger, createMetrics } from '../observability.ts';
import { type ConnectionTestReport, diagnosisOf, testStoredConnection } from '../usecases/test-connection.ts';

const logger = createLogger(SERVICE_NAMES.connectionTest);
const metrics = createMetrics(SERVICE_NAMES.connectionTest);

// Defined with the use case so the CLI shares it without loading this handler (and its logger).
export { diagnosisOf };

/** The function's input: `{"connectionId": "conn_..."}`. */
const connectionTestEvent = z.object({ connectionId: z.string().min(1) });
export type ConnectionTestEvent = z.infer<typeof connectionTestEvent>;

export function parseConnectionTestEvent(event: unknown): ConnectionTestEvent {
  const parsed = connectionTestEvent.safeParse(event);
  if (!parsed.success) throw new Error('connection-test event must be {"connectionId": "conn_..."}');
  return parsed.data;
}

async function testConnectionHandler(event: unknown): Promise<ConnectionTestReport> {
  const { connectionId } = parseConnectionTestEvent(event);
  const report = await testStoredConnection(connectionId, lambdaRuntime().connectionTestDeps());
  metrics.addMetric(METRICS.connectionTestsFailed, MetricUnit.Count, report.ok ? 0 : 1);
  logger.info('connection tested', {
    connectionId,
    ok: report.ok,
    failed: report.checks.filter((c) => !c.ok && !c.skipped).map((c) => c.code ?? c.name),
  });
  return report;
}

export const handler = middy(testConnectionHandler).use(injectLambdaContext(logger)).use(logMetrics(metrics));
