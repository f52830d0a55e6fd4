import type { Readable } from 'node:stream';

/**
 * A stream's bytes (one staged object: a few MB, never a window) in one Buffer that owns its
 * memory — never a slice of Node's shared pool — so it can be moved to a worker thread.
 */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    length += chunk.length;
  }
  const all = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}
