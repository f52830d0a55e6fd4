/**
 * "Test connection": `{ connectionId }` → the connection's row → testConnection → the report.
 * A failing report is also recorded on the connection's export state (lastError), where the
 * CLI and the dashboard show it; a passing one clears the error recorded before it.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createKmsKeyInspector } from '../adapters/kms-key-inspector.ts';
import { type EncryptionKey, encryptStream, loadEncryptionKey } from '../adapters/pgp.ts';
import { createS3ClientProvider } from '../adapters/s3-client-provider.ts';
import { lambdaRuntime } from '../lambda-runtime.ts';
import { createLogger } from '../observability.ts';
import type { ConnectionRepository, ExportStateStore } from '../ports/index.ts';
import {
  type ConnectionTestReport,
  diagnosisOf,
  type TestConnectionDeps,
  testConnection,
} from '../usecases/test-connection.ts';

const logger = createLogger('connection-test');

export interface ConnectionTestEvent {
  connectionId: string;
}

export interface ConnectionTestHandlerDeps<K = unknown> {
  connections: Pick<ConnectionRepository, 'getRaw'>;
  state: Pick<ExportStateStore, 'recordError' | 'recordPassedTest'>;
  test: TestConnectionDeps<K>;
}

// Defined with the use case so the CLI shares it without loading this handler (and its logger).
export { diagnosisOf };

export async function runConnectionTest<K>(
  event: ConnectionTestEvent,
  deps: ConnectionTestHandlerDeps<K>,
): Promise<ConnectionTestReport> {
  const connectionId = event?.connectionId;
  if (typeof connectionId !== 'string' || connectionId === '') {
    throw new Error('connection-test event must be {"connectionId": "conn_..."}');
  }
  const row = await deps.connections.getRaw(connectionId);
  if (!row) {
    return {
      connectionId,
      ok: false,
      testedAt: deps.test.clock.now().toISOString(),
      checks: [
        {
          name: 'connection',
          ok: false,
          message: `there is no connection ${connectionId}`,
          fix: 'check the connection id (s3-event-export connections list)',
        },
      ],
    };
  }
  const report = await testConnection(row, deps.test);
  const diagnosis = diagnosisOf(report);
  if (diagnosis) await deps.state.recordError(connectionId, diagnosis);
  else if (report.ok) await deps.state.recordPassedTest(connectionId, new Date(report.testedAt));
  logger.info('connection tested', {
    connectionId,
    ok: report.ok,
    failed: report.checks.filter((c) => !c.ok && !c.skipped).map((c) => c.code ?? c.name),
  });
  return report;
}

let container: ConnectionTestHandlerDeps<EncryptionKey> | undefined;

/** Adapters of this container, from the environment (lambdas/definitions.ts ENV) the stack sets. */
function containerDeps(): ConnectionTestHandlerDeps<EncryptionKey> {
  if (container) return container;
  const runtime = lambdaRuntime();
  const { config } = runtime;
  // Its own provider only for KMS DescribeKey credentials: same identities as the sink's writes.
  const sessions = createS3ClientProvider({
    region: config.region,
    exporterRoleArn: config.exporterRoleArn,
    clock: runtime.clock,
  });
  container = {
    connections: runtime.connections,
    state: runtime.state,
    test: {
      sink: runtime.sink,
      pgp: { loadEncryptionKey, encryptStream },
      kmsKeyAllowlist: config.kmsKeyAllowlist,
      kmsKeys: config.exporterRoleArn
        ? createKmsKeyInspector({ credentialsFor: (target) => sessions.credentialsFor(target) })
        : undefined,
      clock: runtime.clock,
      exporterRoleArn: config.exporterRoleArn,
    },
  };
  return container;
}

export const handler = middy(async (event: ConnectionTestEvent) =>
  runConnectionTest(event, containerDeps()),
).use(injectLambdaContext(logger));
