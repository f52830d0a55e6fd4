/**
 * Staged objects → selected, projected, gzip-compressed records, on worker threads.
 *
 * The exporter's work per staged object (gunzip, one pass over each line, gzip of the records)
 * is CPU-bound and independent between objects, so whole objects are handed to a small pool of
 * worker threads (one per core) while the main thread only reads S3, uploads and keeps state.
 * Results come back per object and are written in object order, so a part's bytes are the same
 * whatever ran them (see compressObjectRecords). The in-thread compressor does the same work on
 * the main thread (with gzip on libuv's threadpool) where worker threads are not wanted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CorruptStagedLineError } from '../domain/export-record.ts';
import { type CompressedRecords, compressJob, type ObjectJob } from '../domain/record-codec/gzip-members.ts';
import { WriterCache } from '../domain/record-codec/record-writer.ts';

export type { ObjectJob } from '../domain/record-codec/gzip-members.ts';

export type ObjectCompressor = (job: ObjectJob) => Promise<CompressedRecords>;

/** How an error crosses the thread boundary (CorruptStagedLineError keeps its class and fields). */
export type SerializedError =
  | { kind: 'corrupt'; stagedKey: string; lineNumber: number; reason: string }
  | { kind: 'error'; name: string; message: string; code?: string };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof CorruptStagedLineError)
    return {
      kind: 'corrupt',
      stagedKey: error.stagedKey,
      lineNumber: error.lineNumber,
      reason: error.reason,
    };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      kind: 'error',
      name: error.name,
      message: error.message,
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { kind: 'error', name: 'Error', message: String(error) };
}

export function deserializeError(error: SerializedError): Error {
  if (error.kind === 'corrupt')
    return new CorruptStagedLineError(error.stagedKey, error.lineNumber, error.reason);
  return Object.assign(new Error(error.message), {
    name: error.name,
    ...(error.code ? { code: error.code } : {}),
  });
}

/** Runs each job on the calling thread (gzip members on libuv's threadpool). */
export function inThreadCompressor(): ObjectCompressor {
  const writers = new WriterCache();
  return (job) => compressJob(job, writers);
}

/** A job as sent to a worker: `id` pairs it with its reply. */
export type WorkerJob = ObjectJob & { id: number };

/** Messages from a record worker: `ready` once it has loaded, then one reply per job. */
export type WorkerReply =
  | { ready: true }
  | { id: number; ok: true; result: CompressedRecords }
  | { id: number; ok: false; error: SerializedError };

/**
 * Jobs a worker holds at once: while one waits for its gunzip (on libuv's threadpool), the other
 * is projected and compressed, so the worker thread is not idle between hand-offs.
 */
const JOBS_PER_WORKER = 2;

interface Pending {
  job: ObjectJob;
  resolve: (result: CompressedRecords) => void;
  reject: (error: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  /** Jobs sent to it and not answered yet, by id. */
  busy: Map<number, Pending>;
  /** Settles when the worker has loaded its code (or failed to). */
  ready: Promise<void>;
}

/**
 * The worker's script: `record-worker-thread.mjs` beside the Lambda bundle (built from record-worker-thread.ts by
 * the exporter's bundling, lib/function.ts). When running from the TypeScript sources (tests, CLI,
 * bench, local demo), the same file is bundled once per process with esbuild into a temporary
 * directory, so workers run bundled JavaScript there too (no TypeScript loader in each worker).
 */
function workerScript(): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL('./record-worker-thread.mjs', here);
  devWorkerBundle ??= bundleDevWorker(fileURLToPath(new URL('./record-worker-thread.ts', here)));
  return pathToFileURL(devWorkerBundle);
}

let devWorkerBundle: string | undefined;

function bundleDevWorker(entry: string): string {
  // A development dependency, loaded by name so that no bundler pulls it into the Lambda bundle.
  const esbuildModule = 'esbuild';
  const esbuild = createRequire(import.meta.url)(esbuildModule) as typeof import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'record-worker-'));
  const outfile = join(dir, 'record-worker-thread.mjs');
  esbuild.buildSync({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
  });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return outfile;
}

/**
 * A fixed number of worker threads, started on first use. Each holds up to JOBS_PER_WORKER jobs;
 * jobs wait in order, and a new job goes to an idle worker first. An idle worker does not keep
 * the process alive; a worker that dies fails its jobs (the export fails and is retried like any
 * failed export) and is replaced for the next one.
 */
export class RecordWorkerPool {
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Pending[] = [];
  private closed = false;
  private jobIds = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`record worker pool size must be ≥ 1, got ${size}`);
  }

  readonly compress: ObjectCompressor = (job) =>
    new Promise<CompressedRecords>((resolve, reject) => {
      if (this.closed) {
        reject(new Error('the record worker pool is closed'));
        return;
      }
      this.queue.push({ job, resolve, reject });
      this.pump();
    });

  /**
   * Start every worker now and wait until each has loaded its code, so the first export does not
   * pay for it (the Lambda handler calls it during its init phase; the bench before timing).
   */
  async warm(): Promise<void> {
    while (this.workers.length < this.size) this.spawn();
    await Promise.all(this.workers.map((w) => w.ready));
  }

  /** Stop the workers; jobs still queued or running fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new Error('the record worker pool is closed'));
    await Promise.all(this.workers.splice(0).map((w) => w.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let pw =
        this.workers.find((w) => w.busy.size === 0) ??
        this.workers.find((w) => w.busy.size < JOBS_PER_WORKER);
      if ((!pw || pw.busy.size > 0) && this.workers.length < this.size) pw = this.spawn();
      if (!pw) return;
      const pending = this.queue.shift()!;
      const id = ++this.jobIds;
      pw.busy.set(id, pending);
      // The body moves to the worker: copy it first unless it owns its whole ArrayBuffer (a Buffer
      // may be a slice of Node's shared pool, which must not be transferred).
      const own = pending.job.body;
      const body =
        own.byteOffset === 0 && own.byteLength === own.buffer.byteLength && own.buffer instanceof ArrayBuffer
          ? own
          : new Uint8Array(own);
      pw.worker.ref();
      try {
        const message: WorkerJob = { ...pending.job, body, id };
        pw.worker.postMessage(message, [body.buffer as ArrayBuffer]);
      } catch (error) {
        // Not sendable (e.g. a writer spec that is not plain data): this job fails, the worker goes on.
        pw.busy.delete(id);
        if (pw.busy.size === 0) pw.worker.unref();
        pending.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  private spawn(): PoolWorker {
    const worker = new Worker(workerScript());
    let loaded: () => void = () => undefined;
    let failedToLoad: (error: Error) => void = () => undefined;
    const pw: PoolWorker = {
      worker,
      busy: new Map(),
      ready: new Promise<void>((resolve, reject) => {
        loaded = resolve;
        failedToLoad = reject;
      }),
    };
    pw.ready.catch(() => undefined);
    // Referenced (keeps the process alive) while loading and while running a job, not when idle.
    // (Listeners are attached first: attaching a 'message' listener references the worker again.)
    worker.on('message', (reply: WorkerReply) => {
      if ('ready' in reply) {
        loaded();
        if (pw.busy.size === 0) worker.unref();
        return;
      }
      const pending = pw.busy.get(reply.id);
      pw.busy.delete(reply.id);
      if (pw.busy.size === 0) worker.unref();
      if (pending) {
        if (reply.ok) pending.resolve(reply.result);
        else pending.reject(deserializeError(reply.error));
      }
      this.pump();
    });
    const fail = (error: Error) => {
      const index = this.workers.indexOf(pw);
      if (index >= 0) this.workers.splice(index, 1);
      const failure = new Error(`a record worker thread failed: ${error.message}`, { cause: error });
      failedToLoad(failure);
      const lost = [...pw.busy.values()];
      pw.busy.clear();
      for (const pending of lost) pending.reject(failure);
      if (!this.closed) this.pump();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.workers.includes(pw)) fail(new Error(`it exited with code ${code}`));
    });
    this.workers.push(pw);
    return pw;
  }
}

/** Environment variable: record worker threads of the process (0: do the work on the main thread). */
export const RECORD_WORKERS_ENV = 'EXPORT_RECORD_WORKERS';

/** Worker threads to use: EXPORT_RECORD_WORKERS when set, else one per available core. */
export function recordWorkerCount(env: NodeJS.ProcessEnv = process.env): number {
  const configured = env[RECORD_WORKERS_ENV];
  if (configured === undefined || configured === '') return Math.max(1, availableParallelism());
  const n = Number(configured);
  if (!Number.isInteger(n) || n < 0 || n > 64)
    throw new Error(
      `${RECORD_WORKERS_ENV} must be an integer from 0 to 64 (0: no worker threads), got "${configured}"`,
    );
  return n;
}

let shared: RecordWorkerPool | undefined;

/** The process's pool (recordWorkerCount() workers), or undefined when configured to 0. */
export function sharedRecordWorkers(): RecordWorkerPool | undefined {
  const size = recordWorkerCount();
  if (size === 0) return undefined;
  shared ??= new RecordWorkerPool(size);
  return shared;
}

/** Where the exporter compresses records by default, and how many objects it works on at once. */
export function defaultCompressor(): { compress: ObjectCompressor; lanes: number } {
  const pool = sharedRecordWorkers();
  return pool ? { compress: pool.compress, lanes: pool.size } : { compress: inThreadCompressor(), lanes: 1 };
}
