/**
 * The Runtime of a Lambda container: SDK clients created once, adapters from
 * the environment the stack sets, SQS for jobs, EventBridge for notifications,
 * tagged STS sessions for customer writes.
 */

import {
  createDynamoDocumentClient,
  createEventBridgeClient,
  createS3Client,
  createSqsClient,
} from './adapters/aws-clients.ts';
import { EventBridgeNotifier } from './adapters/eventbridge-notifier.ts';
import { createKmsKeyInspector } from './adapters/kms-key-inspector.ts';
import { pgpEncryption } from './adapters/pgp.ts';
import { createS3ClientProvider } from './adapters/s3-client-provider.ts';
import { S3ExportSink } from './adapters/s3-export-sink.ts';
import { lazySqsJobQueue } from './adapters/sqs-job-queue.ts';
import { configFromEnv } from './config.ts';
import { systemClock } from './ports/index.ts';
import { createDeploymentPreflight, createRuntime, type Runtime } from './runtime.ts';

let runtime: Runtime | undefined;

export function lambdaRuntime(): Runtime {
  if (runtime) return runtime;
  const config = configFromEnv();
  const region = config.region;
  const provider = createS3ClientProvider({
    region,
    exporterRoleArn: config.exporterRoleArn,
    clock: systemClock,
  });
  const jobs = lazySqsJobQueue(() => createSqsClient({ region }), config.jobQueueUrl);
  runtime = createRuntime(config, {
    clients: {
      documentClient: createDynamoDocumentClient({ region }),
      stagingS3: createS3Client({ region }),
    },
    sink: new S3ExportSink((target) => provider.clientFor(target)),
    jobs,
    clock: systemClock,
    notifier: new EventBridgeNotifier(createEventBridgeClient({ region })),
    preflight: createDeploymentPreflight(config.kmsKeyAllowlist),
    connectionTest: {
      pgp: pgpEncryption,
      // DescribeKey as the identity that writes the connection's objects (the same sessions).
      kmsKeys: config.exporterRoleArn
        ? createKmsKeyInspector({ credentialsFor: (target) => provider.credentialsFor(target) })
        : undefined,
    },
  });
  return runtime;
}
