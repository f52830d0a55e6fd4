/**
 * A Runtime on running local engines, from their environment variables alone, so the
 * exporter child process (which measures its own peak RSS) can build one without starting
 * anything.
 */
import { createDynamoDocumentClient, createS3Client } from '../lambdas/adapters/aws-clients.ts';
import { InProcessJobQueue } from '../lambdas/adapters/in-process-job-queue.ts';
import { regionalS3Clients, S3ExportSink } from '../lambdas/adapters/s3-export-sink.ts';
import { configFromEnv } from '../lambdas/config.ts';
import type { Clock } from '../lambdas/ports/index.ts';
import { createDeploymentPreflight, createRuntime, type Runtime } from '../lambdas/runtime.ts';

export function localRuntime(env: Record<string, string | undefined>, clock: Clock): Runtime {
  const config = configFromEnv(env);
  const credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! };
  const endpoint = { dynamo: env.AWS_ENDPOINT_URL_DYNAMODB!, s3: env.AWS_ENDPOINT_URL_S3! };
  return createRuntime(config, {
    clients: {
      documentClient: createDynamoDocumentClient({
        region: config.region,
        endpoint: endpoint.dynamo,
        credentials,
      }),
      stagingS3: createS3Client({ region: config.region, endpoint: endpoint.s3, credentials }),
    },
    sink: new S3ExportSink(regionalS3Clients({ endpoint: endpoint.s3, credentials })),
    jobs: new InProcessJobQueue(),
    clock,
    preflight: createDeploymentPreflight(config.kmsKeyAllowlist),
  });
}
