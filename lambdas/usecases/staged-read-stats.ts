/**
 * "Staged bytes read": what an export job really read from the staging bucket. The exporter
 * wraps its StagingStore with a counter per job, logs the figures with the job and emits them
 * as the metric `StagedBytesRead`; tests assert on them (a group job of N connections of one
 * app must read each staged object once, not N times).
 */
import { pipeline, type Readable, Transform } from 'node:stream';
import type { StagingStore } from '../ports/index.ts';

export interface StagedReadStats {
  /** Staged objects opened on the store (GETs). */
  objects: number;
  /** Stored (gzipped) bytes that came out of those GETs. */
  bytes: number;
}

export function newStagedReadStats(): StagedReadStats {
  return { objects: 0, bytes: 0 };
}

/** `store` with its `openObject` replaced: how the exporter's read wrappers are made. */
export function withOpenObject(
  store: StagingStore,
  openObject: (key: string) => Promise<Readable>,
): StagingStore {
  return {
    createObject: (key, body) => store.createObject(key, body),
    exists: (key) => store.exists(key),
    listPrefix: (prefix) => store.listPrefix(prefix),
    readBytes: (key, range) => store.readBytes(key, range),
    writeStream: (key, body) => store.writeStream(key, body),
    listWindow: (appId, start, end, groupBytes) => store.listWindow(appId, start, end, groupBytes),
    openObject,
  };
}

/** `store`, counting into `stats` every object opened and every byte read from it. */
export function countStagedReads(store: StagingStore, stats: StagedReadStats): StagingStore {
  return withOpenObject(store, async (key): Promise<Readable> => {
    const body = await store.openObject(key);
    stats.objects += 1;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        stats.bytes += chunk.length;
        callback(null, chunk);
      },
    });
    // pipeline: an error of the GET reaches the reader, a reader that stops early closes the GET.
    pipeline(body, counted, () => undefined);
    return counted;
  });
}
