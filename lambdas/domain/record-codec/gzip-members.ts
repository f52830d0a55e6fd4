/**
 * One staged object → its selected records as consecutive gzip members: gunzip → lines → the
 * record writer → blocks of records → one gzip member per block. Pure: the staged bytes come in
 * as a stream and the members go out as bytes; no I/O.
 */
import { Readable } from 'node:stream';
import { createGunzip, gzip } from 'node:zlib';
import { NEWLINE } from './json-bytes.ts';
import { CHUNK_BYTES, RecordBytes } from './record-bytes.ts';
import type { RecordBytesWriter, RecordWriterSpec, RecordWriterStats, WriterCache } from './record-writer.ts';

/** Yields the records of one staged object as byte chunks of about `chunkBytes` (cut after the record that fills one). */
export async function* objectRecordBytes(
  stagedKey: string,
  gzipped: Readable,
  write: RecordBytesWriter,
  stats: RecordWriterStats,
  chunkBytes = CHUNK_BYTES,
  /** Write into this buffer and yield views of it: each chunk is valid only until the next is asked for. */
  scratch?: RecordBytes,
): AsyncGenerator<Buffer> {
  const gunzip = gzipped.pipe(createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }));
  gzipped.on('error', (err) => gunzip.destroy(err));
  const out = scratch ?? new RecordBytes(chunkBytes);
  out.length = 0;
  const take = () => (scratch ? out.view() : out.take());
  // The start of a line that continues in the next chunk.
  let carry: Buffer[] = [];
  let lineNumber = 1;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let pos = 0;
      if (carry.length > 0) {
        const newline = chunk.indexOf(NEWLINE);
        if (newline < 0) {
          carry.push(chunk);
          continue;
        }
        carry.push(chunk.subarray(0, newline));
        const line = Buffer.concat(carry);
        carry = [];
        if (line.length > 0) stats.records += write(out, stagedKey, lineNumber++, line, 0, line.length);
        pos = newline + 1;
        if (out.length >= chunkBytes) yield take();
      }
      for (;;) {
        const newline = chunk.indexOf(NEWLINE, pos);
        if (newline < 0) break;
        if (newline > pos) stats.records += write(out, stagedKey, lineNumber++, chunk, pos, newline);
        pos = newline + 1;
        // Cut after the record that fills a chunk: where chunks end depends on the records only,
        // not on how the staged bytes arrived (gzip members are cut here: same input, same bytes).
        if (out.length >= chunkBytes) yield take();
      }
      if (pos < chunk.length) carry.push(chunk.subarray(pos));
    }
    if (carry.length > 0) {
      const line = Buffer.concat(carry);
      stats.records += write(out, stagedKey, lineNumber, line, 0, line.length);
    }
    if (out.length > 0) yield take();
  } finally {
    // Stopped early (a failure downstream): release the staged object's connection.
    if (!gzipped.readableEnded) gzipped.destroy();
  }
}

// ---------------------------------------------------------------- one staged object → gzip members

/** gunzip output chunk size: fewer, larger hand-offs from the zlib thread than the default 16 KiB. */
const GUNZIP_CHUNK_BYTES = 64 * 1024;

/** Uncompressed record bytes per gzip member (about; members end at record ends). */
export const DEFAULT_GZIP_BLOCK_BYTES = 1024 * 1024;

/** One staged object's selected records, compressed. */
export interface CompressedRecords {
  /**
   * Consecutive gzip members, one per ~block of records, in order: a valid RFC 1952 file (§2.2,
   * "a series of members") that gunzip, zcat, Python's gzip, Java's GZIPInputStream and Node's
   * zlib read as one stream, and that stays valid when appended to the members of the previous
   * object. Empty when no record was selected. Its own ArrayBuffer (transferable).
   */
  gzip: Uint8Array;
  records: number;
  /** Uncompressed bytes of those records (what a part's size counts). */
  bytes: number;
}

export type BlockCompressor = (block: Buffer, level: number) => Buffer | Promise<Buffer>;

/** gzip on libuv's threadpool: the main thread's compressor when no worker thread is used. */
const gzipOnThreadpool: BlockCompressor = (block, level) =>
  new Promise((resolve, reject) => {
    gzip(block, { level }, (error, member) => (error ? reject(error) : resolve(member)));
  });

/**
 * Select, project and compress one staged object: its records are cut into blocks of about
 * `blockBytes` at record ends and each block becomes one gzip member. The blocks depend only on
 * the object's bytes and the writer, so the same object always gives the same bytes (a retried part
 * rewrites the same object), whichever thread or compressor runs it.
 */
export async function compressObjectRecords(
  stagedKey: string,
  gzipped: Readable,
  write: RecordBytesWriter,
  options: { level: number; blockBytes?: number; scratch?: RecordBytes },
  compress: BlockCompressor = gzipOnThreadpool,
): Promise<CompressedRecords> {
  const stats: RecordWriterStats = { records: 0 };
  const members: Buffer[] = [];
  let bytes = 0;
  let size = 0;
  const blockBytes = options.blockBytes ?? DEFAULT_GZIP_BLOCK_BYTES;
  // A block is compressed before the next is written, so one scratch buffer can hold them all.
  const scratch = options.scratch ?? new RecordBytes(blockBytes);
  for await (const block of objectRecordBytes(stagedKey, gzipped, write, stats, blockBytes, scratch)) {
    bytes += block.length;
    const member = await compress(block, options.level);
    size += member.length;
    members.push(member);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const member of members) {
    out.set(member, at);
    at += member.length;
  }
  return { gzip: out, records: stats.records, bytes };
}

/** One staged object to turn into records. `body` is the object's stored (gzipped) bytes. */
export interface ObjectJob {
  stagedKey: string;
  body: Uint8Array;
  writer: RecordWriterSpec;
  level: number;
  blockBytes?: number;
}

/** One job's work, wherever it runs: the worker thread (sync gzip, scratch buffer) or this one. */
export function compressJob(
  job: ObjectJob,
  writers: WriterCache,
  options: { scratch?: RecordBytes; compress?: BlockCompressor } = {},
): Promise<CompressedRecords> {
  return compressObjectRecords(
    job.stagedKey,
    Readable.from([Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength)]),
    writers.get(job.writer),
    {
      level: job.level,
      ...(options.scratch ? { scratch: options.scratch } : {}),
      ...(job.blockBytes !== undefined ? { blockBytes: job.blockBytes } : {}),
    },
    options.compress,
  );
}
