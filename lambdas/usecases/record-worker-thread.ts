/**
 * Worker thread of RecordWorkerPool: one staged object per message → its records, selected,
 * projected and gzip-compressed (gzip runs here, synchronously: this thread has nothing else to do).
 */
import { parentPort } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import { compressJob, DEFAULT_GZIP_BLOCK_BYTES } from '../domain/record-codec/gzip-members.ts';
import { RecordBytes } from '../domain/record-codec/record-bytes.ts';
import { WriterCache } from '../domain/record-codec/record-writer.ts';
import { serializeError, type WorkerJob, type WorkerReply } from './record-worker-pool.ts';

const port = parentPort;
if (!port) throw new Error('record-worker-thread runs as a worker thread of RecordWorkerPool');
const writers = new WriterCache();
// Records are written into one of these, block by block (one per job held): no buffer per block.
const scratches: RecordBytes[] = [];
const ready: WorkerReply = { ready: true };
port.postMessage(ready);

/**
 * Bytes this thread has allocated since it last collected garbage. V8 frees a dead Buffer's memory
 * only when it collects its heap, which it does late for memory outside that heap (tens of MB per
 * thread); where `gc` is exposed (the exporter runs with NODE_OPTIONS=--expose-gc), this thread
 * collects after every GC_EVERY_BYTES of staged data it has unpacked, so its memory stays flat.
 */
const gc = (globalThis as { gc?: () => void }).gc;
const GC_EVERY_BYTES = 32 * 1024 * 1024;
let unpackedSinceGc = 0;

port.on('message', async (job: WorkerJob) => {
  const scratch = scratches.pop() ?? new RecordBytes(DEFAULT_GZIP_BLOCK_BYTES);
  try {
    const result = await compressJob(job, writers, {
      scratch,
      compress: (block, level) => gzipSync(block, { level }),
    });
    const reply: WorkerReply = { id: job.id, ok: true, result };
    port.postMessage(reply, [result.gzip.buffer as ArrayBuffer]);
    unpackedSinceGc += result.bytes + job.body.byteLength;
    if (gc && unpackedSinceGc >= GC_EVERY_BYTES) {
      unpackedSinceGc = 0;
      gc();
    }
  } catch (error) {
    const reply: WorkerReply = { id: job.id, ok: false, error: serializeError(error) };
    port.postMessage(reply);
  } finally {
    scratches.push(scratch);
  }
});
