/**
 * Worker thread of RecordWorkerPool: one staged object per message → its records, selected,
 * projected and gzip-compressed (gzip runs here, synchronously: this thread has nothing else to do).
 */
import { parentPort } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import {
  bodyStream,
  type ObjectJob,
  serializeError,
  type WorkerReply,
  WriterCache,
} from './record-workers.ts';
import { compressObjectRecords, DEFAULT_GZIP_BLOCK_BYTES, RecordBytes } from './window-records.ts';

const port = parentPort;
if (!port) throw new Error('record-worker runs as a worker thread of RecordWorkerPool');
const writers = new WriterCache();
// Records are written here, block by block, for every job: no buffer per block.
const scratch = new RecordBytes(DEFAULT_GZIP_BLOCK_BYTES);
const ready: WorkerReply = { ready: true };
port.postMessage(ready);

port.on('message', async (job: ObjectJob) => {
  let reply: WorkerReply;
  try {
    const result = await compressObjectRecords(
      job.stagedKey,
      bodyStream(job.body),
      writers.get(job.writer),
      {
        level: job.level,
        scratch,
        ...(job.blockBytes !== undefined ? { blockBytes: job.blockBytes } : {}),
      },
      (block, level) => gzipSync(block, { level }),
    );
    reply = { ok: true, result };
    port.postMessage(reply, [result.gzip.buffer as ArrayBuffer]);
    return;
  } catch (error) {
    reply = { ok: false, error: serializeError(error) };
  }
  port.postMessage(reply);
});
