import { describe, expect, it } from 'vitest';
import {
  createAwsClients,
  createDynamoDocumentClient,
  createS3Client,
  endpointFromEnv,
} from '../../lambdas/adapters/aws-clients.ts';

const credentials = { accessKeyId: 'x', secretAccessKey: 'y' };

describe('aws client factories', () => {
  it('an S3 client for an emulator endpoint uses path-style and only required checksums', async () => {
    const s3 = createS3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:4568', credentials }, {});
    expect(s3.config.forcePathStyle).toBe(true);
    expect(await s3.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
  });

  it('a client for an emulator endpoint times out a request that never answers', async () => {
    const s3 = createS3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:4568', credentials }, {});
    const handler = s3.config.requestHandler as unknown as {
      configProvider: Promise<Record<string, unknown>>;
    };
    const config = await handler.configProvider;
    expect(config.requestTimeout).toBe(60_000);
    expect(config.connectionTimeout).toBe(5_000);
  });

  it('an endpoint from AWS_ENDPOINT_URL_S3 counts as an emulator too', async () => {
    const s3 = createS3Client(
      { region: 'us-east-1', credentials },
      { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1' },
    );
    expect(s3.config.forcePathStyle).toBe(true);
  });

  it('an S3 client for AWS keeps virtual-hosted addressing and the SDK default checksums', async () => {
    const s3 = createS3Client({ region: 'ap-south-1', credentials }, {});
    expect(s3.config.forcePathStyle ?? false).toBe(false);
    expect(await s3.config.requestChecksumCalculation()).toBe('WHEN_SUPPORTED');
    expect(await s3.config.region()).toBe('ap-south-1');
  });

  it('the document client drops undefined attributes instead of failing', () => {
    const dynamo = createDynamoDocumentClient({ region: 'us-east-1', credentials });
    expect(dynamo.config.translateConfig?.marshallOptions?.removeUndefinedValues).toBe(true);
  });

  it('per-service endpoint variables win over the global one', () => {
    const env = { AWS_ENDPOINT_URL: 'http://global', AWS_ENDPOINT_URL_DYNAMODB: 'http://dynamo' };
    expect(endpointFromEnv('DYNAMODB', env)).toBe('http://dynamo');
    expect(endpointFromEnv('S3', env)).toBe('http://global');
    expect(endpointFromEnv('SQS', {})).toBeUndefined();
  });

  it('createAwsClients builds each client once, on first use', () => {
    const clients = createAwsClients({ region: 'us-east-1', credentials }, {});
    expect(clients.s3).toBe(clients.s3);
    expect(clients.dynamo).toBe(clients.dynamo);
    expect(clients.sqs).toBe(clients.sqs);
    expect(clients.eventBridge).toBe(clients.eventBridge);
  });
});
