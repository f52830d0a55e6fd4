/**
 * SDK clients, created once per container (at module scope of a handler, or once
 * by the CLI / a test) and passed into the adapters, so tests can hand in clients
 * pointed at the local engines or wrapped with fault injection.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type CredentialsOption = StaticCredentials | (() => Promise<StaticCredentials>);

export interface AwsClientOptions {
  region: string;
  /**
   * Endpoint override (local engines). When absent, the SDK's own resolution applies,
   * including its `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL` variables.
   */
  endpoint?: string | undefined;
  credentials?: CredentialsOption | undefined;
  /** SDK retry attempts (default: the SDK's, 3). */
  maxAttempts?: number | undefined;
}

/** Endpoint from the SDK's per-service variable, then the global one. */
export function endpointFromEnv(
  service: 'DYNAMODB' | 'S3' | 'SQS' | 'EVENTBRIDGE',
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return env[`AWS_ENDPOINT_URL_${service}`] || env['AWS_ENDPOINT_URL'] || undefined;
}

function common(options: AwsClientOptions) {
  return {
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
    // Local emulators: a request that never answers becomes an error (retried by callers)
    // instead of hanging a test or the demo. AWS endpoints keep the SDK's defaults.
    ...(options.endpoint ? { requestHandler: LOCAL_REQUEST_TIMEOUTS } : {}),
  };
}

/** Timeouts for requests to local emulators (ms); far above any request they answer here. */
export const LOCAL_REQUEST_TIMEOUTS = { connectionTimeout: 5_000, requestTimeout: 60_000 } as const;

/** Document client: plain JS values in and out; undefined attributes are dropped, not an error. */
export function createDynamoDocumentClient(options: AwsClientOptions): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient(common(options)), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    unmarshallOptions: { wrapNumbers: false },
  });
}

/**
 * S3 client. With an endpoint (given, or from `AWS_ENDPOINT_URL_S3`) it uses path-style
 * addressing, which emulators need, and computes checksums only where S3 requires them:
 * the SDK's default trailing checksums (aws-chunked bodies) are not understood by s3rver.
 */
export function createS3Client(options: AwsClientOptions, env: NodeJS.ProcessEnv = process.env): S3Client {
  const local = Boolean(options.endpoint ?? endpointFromEnv('S3', env));
  return new S3Client({
    ...common(options),
    ...(local
      ? {
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : {}),
  });
}

export function createSqsClient(options: AwsClientOptions): SQSClient {
  return new SQSClient(common(options));
}

export function createEventBridgeClient(options: AwsClientOptions): EventBridgeClient {
  return new EventBridgeClient(common(options));
}

export interface AwsClients {
  dynamo: DynamoDBDocumentClient;
  s3: S3Client;
  sqs: SQSClient;
  eventBridge: EventBridgeClient;
}

export interface AwsClientsOptions {
  region: string;
  /** Per-service endpoint overrides; absent ones follow the SDK's resolution. */
  endpoints?: { dynamodb?: string; s3?: string; sqs?: string; eventBridge?: string };
  credentials?: CredentialsOption | undefined;
  maxAttempts?: number | undefined;
}

/**
 * Every client a Lambda needs, created lazily on first use and then reused for
 * the container's lifetime (a handler that never touches SQS never builds its client).
 */
export function createAwsClients(
  options: AwsClientsOptions,
  env: NodeJS.ProcessEnv = process.env,
): AwsClients {
  const base = { region: options.region, credentials: options.credentials, maxAttempts: options.maxAttempts };
  const endpoints = options.endpoints ?? {};
  let dynamo: DynamoDBDocumentClient | undefined;
  let s3: S3Client | undefined;
  let sqs: SQSClient | undefined;
  let eventBridge: EventBridgeClient | undefined;
  return {
    get dynamo() {
      dynamo ??= createDynamoDocumentClient({ ...base, endpoint: endpoints.dynamodb });
      return dynamo;
    },
    get s3() {
      s3 ??= createS3Client({ ...base, endpoint: endpoints.s3 }, env);
      return s3;
    },
    get sqs() {
      sqs ??= createSqsClient({ ...base, endpoint: endpoints.sqs });
      return sqs;
    },
    get eventBridge() {
      eventBridge ??= createEventBridgeClient({ ...base, endpoint: endpoints.eventBridge });
      return eventBridge;
    },
  };
}

/** Region of the running Lambda (or CLI), from the standard variables. */
export function regionFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const region = env['AWS_REGION'] || env['AWS_DEFAULT_REGION'];
  if (!region) throw new Error('AWS_REGION (or AWS_DEFAULT_REGION) must be set, e.g. us-east-1');
  return region;
}
