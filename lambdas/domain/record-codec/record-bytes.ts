/** The output buffer of the byte-level record writer: whole records, handed on in chunks. Pure: no I/O. */

/** Output chunks are handed on at about this many bytes. */
export const CHUNK_BYTES = 256 * 1024;

/** Growable output of whole records; `take()` hands the bytes written so far on. */
export class RecordBytes {
  private buffer: Buffer;
  /** Bytes written into `buffer`. */
  length = 0;

  /** `chunkBytes`: about how much is taken at a time; room for twice that is kept so growing is rare. */
  constructor(private readonly chunkBytes = CHUNK_BYTES) {
    this.buffer = Buffer.allocUnsafe(2 * chunkBytes);
  }

  /** Make room for `n` more bytes (the chunk handed on by `take` never splits a record). */
  reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    // Doubling: a chunk that is taken late costs one copy, not one per record.
    const next = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, this.length + n));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }

  /** Copy bytes [start, end) of `source`; room must have been reserved. */
  put(source: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n < 64) {
      // Keys and small values: a loop is cheaper than a subarray view per copy.
      const buffer = this.buffer;
      const at = this.length - start;
      for (let i = start; i < end; i++) buffer[at + i] = source[i]!;
    } else {
      this.buffer.set(source.subarray(start, end), this.length);
    }
    this.length += n;
  }

  putAll(source: Uint8Array): void {
    this.buffer.set(source, this.length);
    this.length += source.length;
  }

  putByte(byte: number): void {
    this.buffer[this.length++] = byte;
  }

  /** Write `text` as UTF-8; room for its byte length must have been reserved. */
  putString(text: string): void {
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** The bytes written so far (a fresh buffer is used from now on). */
  take(): Buffer {
    const out = this.buffer.subarray(0, this.length);
    this.buffer = Buffer.allocUnsafe(2 * this.chunkBytes);
    this.length = 0;
    return out;
  }

  /**
   * The bytes written so far, as a view of the buffer, which is written over from the next write on:
   * for a consumer that is done with them before that (no allocation per chunk).
   */
  view(): Buffer {
    const out = this.buffer.subarray(0, this.length);
    this.length = 0;
    return out;
  }
}
