/**
 * Ranged reads that continue one another. A large app's data in a compacted slot is one
 * contiguous run cut into chunks (domain/staged-segment.ts, SLOT_CHUNK_BYTES); the exporter
 * reads those chunks in order, one ref each. Instead of one GET per chunk, the first chunk opens
 * one GET for the whole run, and each next chunk is cut from the same response where the last
 * one stopped. S3 bills a GET per request, not per byte, so a 1 TB-a-day app's window costs one
 * request per slot instead of one per 2 MiB chunk (docs/platform-scale.md, "Reads of a large app").
 *
 * The response is only read as fast as the chunks are taken (stream backpressure), so memory
 * stays one chunk, as before. A run that is not continued (another order, a reader that stopped,
 * an idle connection reset) costs a new GET from where it stands; the bytes are the same.
 */
import { Readable } from 'node:stream';
import { rangeRunKey } from '../domain/staged-segment.ts';

/** Opens a GET of `length` bytes of `objectKey` from `offset`. */
export type OpenRange = (objectKey: string, offset: number, length: number) => Promise<Readable>;

/** Open runs kept at once; the oldest idle one is closed beyond this. */
const MAX_OPEN_RUNS = 16;
/** A run not continued for this long is closed (its connection freed). */
const IDLE_MS = 15_000;

interface OpenRun {
  objectKey: string;
  /** Where the next take starts (takes are reserved in order and run one after another). */
  position: number;
  end: number;
  source: Readable | undefined;
  iterator: AsyncIterator<Uint8Array> | undefined;
  /** Bytes received but not taken yet; they start at `sourceAt`. */
  leftover: Uint8Array | undefined;
  /** The object offset of the next byte `leftover`, then `source`, deliver. */
  sourceAt: number;
  /** Settles when the last take queued on this run has finished. */
  tail: Promise<void>;
  timer: NodeJS.Timeout | undefined;
}

export class ContinuedRangeReads {
  private readonly runs = new Map<string, OpenRun>();

  constructor(private readonly openRange: OpenRange) {}

  /**
   * The bytes [offset, offset + length) of `objectKey`, streamed. `runEnd` (exclusive) is where
   * the contiguous run holding them ends, if known: a read that does not continue an open run
   * fetches up to there, so the next chunks of the run need no GET of their own.
   */
  async read(objectKey: string, offset: number, length: number, runEnd?: number): Promise<Readable> {
    const at = rangeRunKey(objectKey, offset);
    const open = this.runs.get(at);
    if (open && offset + length <= open.end) {
      this.runs.delete(at);
      return this.take(open, length);
    }
    if (runEnd === undefined || runEnd <= offset + length) return this.openRange(objectKey, offset, length);
    // Opened by the first take, so that chunks asked for meanwhile already find (and queue on) the run.
    const run: OpenRun = {
      objectKey,
      position: offset,
      end: runEnd,
      source: undefined,
      iterator: undefined,
      leftover: undefined,
      sourceAt: offset,
      tail: Promise.resolve(),
      timer: undefined,
    };
    return this.take(run, length);
  }

  /** Closes every open run (their connections are freed). */
  close(): void {
    for (const run of this.runs.values()) closeRun(run);
    this.runs.clear();
  }

  /** The next `length` bytes of `run`, streamed once the takes queued before it have finished. */
  private take(run: OpenRun, length: number): Readable {
    const start = run.position;
    run.position += length;
    if (run.timer) clearTimeout(run.timer);
    run.timer = undefined;
    const previous = run.tail;
    let finish!: () => void;
    run.tail = new Promise((resolve) => {
      finish = resolve;
    });
    if (run.position < run.end) this.keep(run);
    else void run.tail.then(() => closeRun(run));
    let started = false;
    const self = this;
    async function* bytes(): AsyncGenerator<Uint8Array> {
      started = true;
      try {
        await previous;
        for (let at = start; at < start + length; ) {
          const chunk = await self.nextChunk(run, at);
          const piece =
            chunk.byteLength > start + length - at ? chunk.subarray(0, start + length - at) : chunk;
          run.leftover = piece.byteLength < chunk.byteLength ? chunk.subarray(piece.byteLength) : undefined;
          at += piece.byteLength;
          run.sourceAt = at;
          yield piece;
        }
      } finally {
        finish();
      }
    }
    const stream = Readable.from(bytes(), { objectMode: false });
    // A stream closed before it was read never runs the generator: later takes must not wait on it.
    stream.once('close', () => {
      if (!started) finish();
    });
    return stream;
  }

  /**
   * The run's next bytes from `at`. When the run's response is elsewhere (a take before this one
   * stopped early) or failed (a connection reset while it waited), the run is opened again from
   * `at`, once: bytes are addressed by position, so a reopened response goes on exactly there.
   */
  private async nextChunk(run: OpenRun, at: number): Promise<Uint8Array> {
    if (run.sourceAt !== at) closeRun(run);
    if (run.leftover) {
      const chunk = run.leftover;
      run.leftover = undefined;
      return chunk;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        if (!run.source) {
          run.source = await this.openRange(run.objectKey, at, run.end - at);
          // A reset while the run waits for its next take surfaces through the iterator, not as a crash.
          run.source.on('error', () => undefined);
          run.sourceAt = at;
        }
        run.iterator ??= (run.source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
        const next = await run.iterator.next();
        if (next.done) throw new Error(`staged object ${run.objectKey} ended before byte ${run.end}`);
        return next.value;
      } catch (error) {
        closeRun(run);
        if (attempt > 0) throw error;
      }
    }
  }

  /** Keeps `run` for the take that continues it; closes it when idle, or when too many are open. */
  private keep(run: OpenRun): void {
    const at = rangeRunKey(run.objectKey, run.position);
    if (this.runs.has(at)) {
      // Another reader holds a run at the same place (the same range read twice at once).
      void run.tail.then(() => closeRun(run));
      return;
    }
    this.runs.set(at, run);
    const position = run.position;
    void run.tail.then(() => {
      if (this.runs.get(at) !== run || run.position !== position) return;
      run.timer = setTimeout(() => {
        if (this.runs.get(at) === run) this.runs.delete(at);
        closeRun(run);
      }, IDLE_MS);
      run.timer.unref();
    });
    while (this.runs.size > MAX_OPEN_RUNS) {
      const [oldestKey, oldest] = this.runs.entries().next().value as [string, OpenRun];
      this.runs.delete(oldestKey);
      void oldest.tail.then(() => closeRun(oldest));
    }
  }
}

function closeRun(run: OpenRun): void {
  if (run.timer) clearTimeout(run.timer);
  run.timer = undefined;
  run.source?.destroy();
  run.source = undefined;
  run.iterator = undefined;
  run.leftover = undefined;
  run.sourceAt = -1;
}
