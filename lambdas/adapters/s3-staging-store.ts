/**
 * StagingStore on the staging bucket (layout: lambdas/domain/staging-layout.ts).
 */
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  compareStagedObjects,
  hourPrefixesForWindow,
  keyInWindow,
  stageTimeOfKey,
} from '../domain/staging-layout.ts';
import type { StagedObjectRef, StagingStore } from '../ports/index.ts';

interface ErrorWithMetadata {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * True when a conditional create (`If-None-Match: *`) failed because the key exists (412), or
 * because a concurrent conditional write of the same key is in flight (409
 * ConditionalRequestConflict): either way an earlier attempt has staged (or is staging) it.
 */
export function isAlreadyExistsError(error: unknown): boolean {
  const e = error as ErrorWithMetadata | undefined;
  if (!e || typeof e !== 'object') return false;
  const status = e.$metadata?.httpStatusCode;
  return (
    e.name === 'PreconditionFailed' ||
    status === 412 ||
    (e.name === 'ConditionalRequestConflict' && (status === undefined || status === 409))
  );
}

function isNotFoundError(error: unknown): boolean {
  const e = error as ErrorWithMetadata | undefined;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

export class S3StagingStore implements StagingStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async createObject(key: string, gzippedBody: Uint8Array): Promise<'created' | 'exists'> {
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: gzippedBody,
          ContentLength: gzippedBody.byteLength,
          // Stored gzipped as-is: no Content-Encoding, so no client decompresses it on the way out.
          ContentType: 'application/gzip',
          IfNoneMatch: '*',
        }),
      );
      return 'created';
    } catch (error) {
      if (isAlreadyExistsError(error)) return 'exists';
      throw error;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (error) {
      if (isNotFoundError(error)) return false;
      throw error;
    }
  }

  async listWindow(appId: string, start: Date, end: Date): Promise<StagedObjectRef[]> {
    const found: StagedObjectRef[] = [];
    for (const prefix of hourPrefixesForWindow(appId, start, end)) {
      let continuationToken: string | undefined;
      do {
        const page = await this.s3.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(continuationToken ? { ContinuationToken: continuationToken } : {}),
          }),
        );
        for (const object of page.Contents ?? []) {
          const key = object.Key;
          if (!key || !keyInWindow(key, start, end)) continue;
          const stageTime = stageTimeOfKey(key)!;
          found.push(object.Size === undefined ? { key, stageTime } : { key, stageTime, size: object.Size });
        }
        continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (continuationToken);
    }
    // The port's order, which the exporter's cursor and shared reads rely on (not S3's lexical one).
    return found.sort(compareStagedObjects);
  }

  async openObject(key: string): Promise<Readable> {
    const response = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const body = response.Body;
    if (body instanceof Readable) return body;
    if (!body) throw new Error(`staged object ${key} has no body`);
    // Runtimes where the SDK hands back a web stream.
    return Readable.fromWeb(body.transformToWebStream() as Parameters<typeof Readable.fromWeb>[0]);
  }
}
