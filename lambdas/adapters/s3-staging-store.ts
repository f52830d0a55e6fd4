/**
 * StagingStore on the staging bucket (layout: lambdas/domain/staging-layout.ts). Slot indexes
 * never change once written, so they are cached per container.
 */
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { mapBounded } from '../domain/bounded.ts';
import {
  decodeRefKey,
  findInSlotIndex,
  planWindowRefs,
  rangeRunKey,
  rangeRuns,
  type SlotEntries,
  type StoredRange,
} from '../domain/staged-segment.ts';
import { slotDataKey, slotIndexKey, slotsOfWindow } from '../domain/staging-layout.ts';
import { readAll } from '../domain/stream-bytes.ts';
import {
  SlotsNotCompactedError,
  type StagedObjectRef,
  type StagingStore,
  type StoredKey,
} from '../ports/index.ts';
import { ContinuedRangeReads } from './continued-range-reads.ts';

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

/** Index reads in flight at once for one window. */
const READ_CONCURRENCY = 16;

/** Slot indexes kept per container (each is a few KB to ~1 MB; immutable once written). */
const INDEX_CACHE_ENTRIES = 512;

/** Run ends remembered from listings (one per chunk listed; ~100 B each). */
const RUN_ENTRIES = 200_000;

export class S3StagingStore implements StagingStore {
  private readonly indexCache = new Map<string, string>();
  /** Where the run of each listed chunk ends (domain rangeRuns), so its reads continue one GET. */
  private readonly runEnds = new Map<string, number>();
  private readonly reads = new ContinuedRangeReads((key, offset, length) =>
    this.open(key, { offset, length }),
  );

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async createObject(key: string, body: Uint8Array): Promise<'created' | 'exists'> {
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: 'application/octet-stream',
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

  async listPrefix(prefix: string): Promise<StoredKey[]> {
    const found: StoredKey[] = [];
    let continuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ...(continuationToken ? { ContinuationToken: continuationToken } : {}),
        }),
      );
      for (const object of page.Contents ?? [])
        if (object.Key) found.push({ key: object.Key, size: object.Size ?? 0 });
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async readBytes(key: string, range?: { offset: number; length: number }): Promise<Uint8Array | undefined> {
    if (range && range.length === 0) return new Uint8Array(0);
    try {
      return await readAll(await this.open(key, range));
    } catch (error) {
      if (isNotFoundError(error)) return undefined;
      throw error;
    }
  }

  async writeStream(key: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    const upload = new Upload({
      client: this.s3,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: Readable.from(body, { objectMode: false }),
        ContentType: 'application/octet-stream',
      },
      queueSize: 2,
      partSize: 8 * 1024 * 1024,
    });
    await upload.done();
  }

  async listWindow(appId: string, start: Date, end: Date, groupBytes?: number): Promise<StagedObjectRef[]> {
    const slots = slotsOfWindow(start, end);
    const indexes = await mapBounded(slots, READ_CONCURRENCY, (slot) => this.slotIndex(slot));
    const missing = slots.filter((_slot, i) => indexes[i] === undefined);
    if (missing.length > 0) throw new SlotsNotCompactedError(missing);
    const entries: SlotEntries[] = slots.map((slotStart, i) => ({
      slotStart,
      dataKey: slotDataKey(slotStart),
      entries: findInSlotIndex(slotIndexKey(slotStart), indexes[i]!, appId),
    }));
    this.rememberRuns(entries);
    return planWindowRefs(entries, groupBytes);
  }

  async openObject(refKey: string): Promise<Readable> {
    const ranges = decodeRefKey(refKey);
    if (ranges.length === 1) return this.readRange(ranges[0]!);
    const self = this;
    // Several small chunks of one window: their gzip members concatenated, read one after another.
    async function* concatenated(): AsyncGenerator<Uint8Array> {
      for (const range of ranges) yield* (await self.readRange(range)) as AsyncIterable<Uint8Array>;
    }
    return Readable.from(concatenated(), { objectMode: false });
  }

  /** A listed chunk continues the GET of its run when the chunk before it was read last. */
  private readRange(range: StoredRange): Promise<Readable> {
    const runEnd = this.runEnds.get(rangeRunKey(range.objectKey, range.offset));
    return this.reads.read(range.objectKey, range.offset, range.length, runEnd);
  }

  private rememberRuns(slots: readonly SlotEntries[]): void {
    for (const [key, end] of rangeRuns(slots)) {
      this.runEnds.delete(key);
      this.runEnds.set(key, end);
    }
    for (const key of this.runEnds.keys()) {
      if (this.runEnds.size <= RUN_ENTRIES) break;
      this.runEnds.delete(key);
    }
  }

  private async slotIndex(slotStart: Date): Promise<string | undefined> {
    const key = slotIndexKey(slotStart);
    const cached = this.indexCache.get(key);
    if (cached !== undefined) return cached;
    const bytes = await this.readBytes(key);
    if (bytes === undefined) return undefined;
    const text = Buffer.from(bytes).toString('utf8');
    if (this.indexCache.size >= INDEX_CACHE_ENTRIES) {
      const oldest = this.indexCache.keys().next().value;
      if (oldest !== undefined) this.indexCache.delete(oldest);
    }
    this.indexCache.set(key, text);
    return text;
  }

  private async open(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    const response = await this.s3.send(
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
      }),
    );
    const body = response.Body;
    if (body instanceof Readable) return body;
    if (!body) throw new Error(`staged object ${key} has no body`);
    // Runtimes where the SDK hands back a web stream.
    return Readable.fromWeb(body.transformToWebStream() as Parameters<typeof Readable.fromWeb>[0]);
  }
}
