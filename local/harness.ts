/**
 * The harness: a LocalDriver (local/driver.ts, which drives the use cases) wired to running
 * local engines (the demo, the simulation and the integration tests share this), plus readers of
 * what landed in customer buckets, so results are checked from the stored objects themselves.
 */

import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { createDynamoDocumentClient, createS3Client } from '../lambdas/adapters/aws-clients.ts';
import { regionalS3Clients, S3ExportSink } from '../lambdas/adapters/s3-export-sink.ts';
import { configFromEnv, type RuntimeConfig } from '../lambdas/config.ts';
import type { Clock, ExportSink } from '../lambdas/ports/index.ts';
import { createDeploymentPreflight } from '../lambdas/runtime.ts';
import { LocalDriver, type LocalDriverOptions } from './driver.ts';
import type { LocalEngines } from './engines.ts';

export interface HarnessOptions {
  clock: Clock;
  /** Overrides of the runtime configuration (e.g. part size, KMS allowlist). */
  config?: Partial<RuntimeConfig>;
  /** Wrap or replace the customer sink (fault injection, request recording). */
  sink?: (real: ExportSink) => ExportSink;
  exportOverrides?: LocalDriverOptions['exportOverrides'];
  notifier?: LocalDriverOptions['notifier'];
}

export interface Harness {
  driver: LocalDriver;
  config: RuntimeConfig;
  /** S3 client of the local endpoint, for reading customer buckets. */
  s3: S3Client;
}

/**
 * Staging slots are shared by every app, and tests sharing engines reuse the same simulated
 * instants: each simulated world (one clock) stages into a bucket of its own.
 */
const stagingBuckets = new WeakMap<Clock, Promise<string>>();
let stagingBucketCount = 0;

function stagingBucketFor(engines: LocalEngines, clock: Clock): Promise<string> {
  let bucket = stagingBuckets.get(clock);
  if (!bucket) {
    stagingBucketCount += 1;
    const name = `${engines.stagingBucket}-w${stagingBucketCount}`;
    bucket = engines.createBucket(name).then(() => name);
    stagingBuckets.set(clock, bucket);
  }
  return bucket;
}

export async function createHarness(engines: LocalEngines, options: HarnessOptions): Promise<Harness> {
  const stagingBucket = options.config?.stagingBucket ?? (await stagingBucketFor(engines, options.clock));
  const config = { ...configFromEnv({ ...engines.env }), stagingBucket, ...options.config };
  const clientOptions = {
    region: engines.region,
    endpoint: engines.s3Endpoint,
    credentials: engines.credentials,
  };
  const s3 = createS3Client(clientOptions);
  const realSink = new S3ExportSink(
    regionalS3Clients({ endpoint: engines.s3Endpoint, credentials: engines.credentials }),
  );
  const driver = new LocalDriver({
    config,
    clock: options.clock,
    documentClient: createDynamoDocumentClient({
      region: engines.region,
      endpoint: engines.dynamoEndpoint,
      credentials: engines.credentials,
    }),
    stagingS3: s3,
    sink: options.sink ? options.sink(realSink) : realSink,
    preflight: createDeploymentPreflight(config.kmsKeyAllowlist),
    exportOverrides: options.exportOverrides,
    notifier: options.notifier,
  });
  return { driver, config, s3 };
}

export interface StoredFile {
  key: string;
  body: Buffer;
}

export async function listKeys(s3: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export async function readObject(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

export async function readBucket(s3: S3Client, bucket: string, prefix = ''): Promise<StoredFile[]> {
  const files: StoredFile[] = [];
  for (const key of await listKeys(s3, bucket, prefix))
    files.push({ key, body: await readObject(s3, bucket, key) });
  return files;
}

/** The records of a plain (not PGP) `.json.gz` data file, parsed line by line. */
export function gzipRecords(body: Buffer): Record<string, unknown>[] {
  return gunzipSync(body)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function isDataKey(key: string): boolean {
  return /\.json\.gz(\.gpg)?$/.test(key) && !key.includes('/_connection_test/');
}

export function isManifestKey(key: string): boolean {
  return key.endsWith('.manifest.json');
}
