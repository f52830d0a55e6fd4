/**
 * ExportSink on customers' buckets: streams a body into S3 (multipart when it is
 * large), counting bytes and hashing them on the way, never holding more than a
 * few parts in memory.
 */
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { HeadObjectCommand, type PutObjectCommandInput, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ExportSink, PutOptions, SinkTarget, StoredObject } from '../ports/index.ts';
import { type CredentialsOption, createS3Client } from './aws-clients.ts';
import { translateAwsError } from './aws-errors.ts';

/** The S3 client to write one target with (region, credentials, assumed role ...). */
export type SinkClientProvider = (target: SinkTarget) => S3Client | Promise<S3Client>;

/** S3's minimum part size; parts are buffered, so memory is about partSize × (queueSize + 1). */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;

export interface S3ExportSinkOptions {
  /** Multipart part size (default and minimum 5 MiB). */
  partSizeBytes?: number;
  /** Parts uploaded concurrently (default 2). */
  queueSize?: number;
}

export interface RegionalClientOptions {
  /** Endpoint for every region (local engines); absent on AWS. */
  endpoint?: string | undefined;
  credentials?: CredentialsOption | undefined;
}

/**
 * Default provider: the exporter's own credentials, one S3Client per bucket region,
 * created on first use and reused for the container's lifetime.
 */
export function regionalS3Clients(options: RegionalClientOptions = {}): SinkClientProvider {
  const clients = new Map<string, S3Client>();
  return (target) => {
    let client = clients.get(target.bucketRegion);
    if (!client) {
      client = createS3Client({
        region: target.bucketRegion,
        endpoint: options.endpoint,
        credentials: options.credentials,
      });
      clients.set(target.bucketRegion, client);
    }
    return client;
  };
}

/** Passes bytes through unchanged, counting them and hashing them (SHA-256). */
class DigestingPassThrough extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }

  digestHex(): string {
    return this.hash.digest('hex');
  }
}

/** The write parameters every object in a customer's bucket gets (docs/product.md#security). */
export function writeParamsFor(
  target: SinkTarget,
): Pick<
  PutObjectCommandInput,
  'ACL' | 'ExpectedBucketOwner' | 'ServerSideEncryption' | 'SSEKMSKeyId' | 'BucketKeyEnabled'
> {
  return {
    ACL: 'bucket-owner-full-control',
    ...(target.bucketOwnerAccountId ? { ExpectedBucketOwner: target.bucketOwnerAccountId } : {}),
    ...(target.kmsKeyArn
      ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: target.kmsKeyArn, BucketKeyEnabled: true }
      : {}),
  };
}

export class S3ExportSink implements ExportSink {
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(
    private readonly clientFor: SinkClientProvider = regionalS3Clients(),
    options: S3ExportSinkOptions = {},
  ) {
    this.partSize = Math.max(MIN_PART_SIZE_BYTES, options.partSizeBytes ?? MIN_PART_SIZE_BYTES);
    this.queueSize = Math.max(1, options.queueSize ?? 2);
  }

  async putObject(
    target: SinkTarget,
    key: string,
    body: Readable,
    contentType: string,
    options: PutOptions = {},
  ): Promise<StoredObject> {
    options.signal?.throwIfAborted();
    let client: S3Client;
    try {
      client = await this.clientFor(target);
    } catch (error) {
      throw translateAwsError(error);
    }
    const digest = new DigestingPassThrough();
    // Errors of the source reach the upload through the pass-through, which then aborts it.
    let sourceError: Error | undefined;
    body.once('error', (error) => {
      sourceError = error;
      digest.destroy(error);
    });
    body.pipe(digest);
    // The caller's signal abandons the upload: the request in flight is cut, a multipart upload aborted.
    const abortController = new AbortController();
    const abort = () => abortController.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', abort, { once: true });
    const upload = new Upload({
      client,
      params: {
        Bucket: target.bucketName,
        Key: key,
        Body: digest,
        ContentType: contentType,
        ...writeParamsFor(target),
      },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
      abortController,
    });
    try {
      await upload.done();
    } catch (error) {
      body.unpipe(digest);
      body.destroy();
      if (options.signal?.aborted) throw options.signal.reason;
      // The source's failure is the cause; what the upload reports may be its abort's aftermath.
      if (sourceError && error !== sourceError) throw Object.assign(sourceError, { uploadError: error });
      throw error === sourceError ? error : translateAwsError(error);
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
    return { key, bytes: digest.bytes, sha256: digest.digestHex() };
  }

  async exists(target: SinkTarget, key: string): Promise<boolean> {
    let client: S3Client;
    try {
      client = await this.clientFor(target);
    } catch (error) {
      throw translateAwsError(error);
    }
    try {
      await client.send(
        new HeadObjectCommand({
          Bucket: target.bucketName,
          Key: key,
          ...(target.bucketOwnerAccountId ? { ExpectedBucketOwner: target.bucketOwnerAccountId } : {}),
        }),
      );
      return true;
    } catch (error) {
      // Not found, refused, or a bucket elsewhere (a wrong row): nothing of ours is there.
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== undefined && [301, 400, 403, 404].includes(status)) return false;
      throw translateAwsError(error);
    }
  }
}
