/**
 * Composition root: builds the adapters and use-case dependencies from a
 * RuntimeConfig. The Lambda handlers build one Runtime per container; the CLI,
 * the demo and the simulation build one against the local engines with their
 * own clock and an in-process job queue.
 */

import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { translateAwsError } from './adapters/aws-errors.ts';
import { createConnectionChecks } from './adapters/connection-checks.ts';
import { DynamoConnectionRepository } from './adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from './adapters/dynamo-export-state-store.ts';
import { DynamoStagingLedger } from './adapters/dynamo-staging-ledger.ts';
import { DynamoTickProgressStore } from './adapters/dynamo-tick-progress.ts';
import { pgpEncryption } from './adapters/pgp.ts';
import { S3StagingStore } from './adapters/s3-staging-store.ts';
import type { RuntimeConfig } from './config.ts';
import type { Connection } from './domain/connection.ts';
import { diagnose } from './domain/diagnosis.ts';
import type {
  Clock,
  ConnectionDiagnosis,
  ExportNotifier,
  ExportSink,
  JobQueue,
  KmsKeyInspector,
  PayloadEncryption,
} from './ports/index.ts';
import type { DispatchDeps } from './usecases/dispatch-tick.ts';
import type { ExportDeps } from './usecases/export-window.ts';
import { createPreflight } from './usecases/preflight.ts';
import type { StageBatchDeps } from './usecases/stage-batch.ts';
import type { StoredConnectionTestDeps } from './usecases/test-connection.ts';

export interface RuntimeClients {
  documentClient: DynamoDBDocumentClient;
  /** S3 client for the staging bucket (our account). */
  stagingS3: S3Client;
}

export interface RuntimeParts {
  clients: RuntimeClients;
  /** Writes into customer buckets. */
  sink: ExportSink;
  jobs: JobQueue;
  clock: Clock;
  notifier?: ExportNotifier;
  preflight?: ExportDeps['preflight'];
  diagnose?: (error: unknown, connection: Connection) => ConnectionDiagnosis;
  /** What "test connection" needs besides the sink: PGP, and KMS DescribeKey as the writer's identity. */
  connectionTest?: { pgp: PayloadEncryption<unknown>; kmsKeys?: KmsKeyInspector | undefined };
}

export interface Runtime {
  config: RuntimeConfig;
  connections: DynamoConnectionRepository;
  state: DynamoExportStateStore;
  ledger: DynamoStagingLedger;
  staging: S3StagingStore;
  sink: ExportSink;
  jobs: JobQueue;
  clock: Clock;
  stagerDeps(): StageBatchDeps;
  dispatchDeps(): DispatchDeps;
  exportDeps(overrides?: Partial<ExportDeps>): ExportDeps;
  /** "Test connection" of stored rows; needs RuntimeParts.connectionTest. */
  connectionTestDeps(): StoredConnectionTestDeps;
}

export const DEFAULT_GZIP_LEVEL = 6;

/** The exporter's preflight with the deployment's adapters: the KMS key allowlist and OpenPGP. */
export function createDeploymentPreflight(
  kmsKeyAllowlist: readonly string[],
): NonNullable<ExportDeps['preflight']> {
  return createPreflight({ checks: createConnectionChecks(kmsKeyAllowlist), pgp: pgpEncryption });
}

export function createRuntime(config: RuntimeConfig, parts: RuntimeParts): Runtime {
  const connections = new DynamoConnectionRepository(
    parts.clients.documentClient,
    config.tables.connections,
    config.tables.exportState,
  );
  const state = new DynamoExportStateStore(parts.clients.documentClient, config.tables.exportState);
  const ledger = new DynamoStagingLedger(parts.clients.documentClient, config.tables.stagingLedger);
  const staging = new S3StagingStore(parts.clients.stagingS3, config.stagingBucket);
  const runtime: Runtime = {
    config,
    connections,
    state,
    ledger,
    staging,
    sink: parts.sink,
    jobs: parts.jobs,
    clock: parts.clock,
    stagerDeps: () => ({ ledger, store: staging, clock: parts.clock }),
    dispatchDeps: () => ({
      connections,
      state,
      jobs: parts.jobs,
      clock: parts.clock,
      progress: new DynamoTickProgressStore(parts.clients.documentClient, config.tables.exportState),
    }),
    exportDeps: (overrides = {}) => ({
      connections,
      state,
      staging,
      sink: parts.sink,
      clock: parts.clock,
      jobs: parts.jobs,
      notifier: parts.notifier,
      preflight: parts.preflight,
      diagnose:
        parts.diagnose ??
        ((error, connection) =>
          // Errors of other sinks and of the staged reads are translated here; S3ExportSink's already are.
          diagnose(translateAwsError(error), {
            connection,
            exporterRoleArn: config.exporterRoleArn,
            at: parts.clock.now(),
          })),
      settings: {
        leaseMs: 5 * 60_000,
        partSizeBytes: config.partSizeBytes,
        gzipLevel: DEFAULT_GZIP_LEVEL,
        stagingRetentionDays: config.stagingRetentionDays,
        settleDelayMs: config.settleDelayMinutes * 60_000,
      },
      ...overrides,
    }),
    connectionTestDeps: () => {
      if (!parts.connectionTest)
        throw new Error('this runtime was built without RuntimeParts.connectionTest (PGP and KMS adapters)');
      return {
        connections,
        state,
        test: {
          sink: parts.sink,
          pgp: parts.connectionTest.pgp,
          kmsKeyAllowlist: config.kmsKeyAllowlist,
          kmsKeys: parts.connectionTest.kmsKeys,
          clock: parts.clock,
          exporterRoleArn: config.exporterRoleArn,
        },
      };
    },
  };
  return runtime;
}
