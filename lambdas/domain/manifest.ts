/**
 * The per-window manifest (docs/product.md#manifest), written last beside the data parts, also
 * for an empty window. Customers check completeness with it and spot gaps by a
 * missing sequence number.
 */
import type { WindowGap } from './data-expiry.ts';
import { exportTimestamp } from './object-keys.ts';

export const MANIFEST_FORMAT_VERSION = 1;

/** One data part written to the customer's bucket, as the manifest and the window's history list it. */
export interface WrittenPart {
  key: string;
  records: number;
  bytes: number;
  sha256: string;
}

export interface WindowManifest {
  formatVersion: number;
  connectionId: string;
  sequence: number;
  windowStart: string;
  windowEnd: string;
  windowStartEpoch: number;
  windowEndEpoch: number;
  files: WrittenPart[];
  totalRecords: number;
  totalBytes: number;
  /**
   * Time ranges of the window whose events may be missing, and why (e.g. staged data older than
   * the staging retention expired before it was exported). Absent when the window is complete.
   */
  gaps?: WindowGap[];
  /** What this manifest supersedes; absent when it is the window's first and only export. */
  supersedes?: ManifestSupersedes;
}

/** An object in a customer bucket. */
export interface SupersededObject {
  bucketName: string;
  key: string;
}

/**
 * What a window's manifest replaces: the earlier commit of the same window end (a backfill
 * exported the window again to its own keys), and objects written for this window before, under
 * settings since changed or beyond the parts written now — no manifest lists them any more, and
 * their events are in this window's files: delete them.
 */
export interface ManifestSupersedes {
  /** Sequence of the earlier commit of this window end (kept by this one). */
  sequence?: number;
  /** Window start of the earlier commit (a backfill from an earlier instant widens it). */
  windowStart?: string;
  objects: SupersededObject[];
}

export function buildManifest(input: {
  connectionId: string;
  sequence: number;
  windowStart: Date;
  windowEnd: Date;
  parts: WrittenPart[];
  gaps?: WindowGap[] | undefined;
  supersedes?: ManifestSupersedes | undefined;
}): WindowManifest {
  const manifest: WindowManifest = {
    formatVersion: MANIFEST_FORMAT_VERSION,
    connectionId: input.connectionId,
    sequence: input.sequence,
    windowStart: input.windowStart.toISOString(),
    windowEnd: input.windowEnd.toISOString(),
    windowStartEpoch: exportTimestamp(input.windowStart),
    windowEndEpoch: exportTimestamp(input.windowEnd),
    files: input.parts.map((p) => ({ key: p.key, records: p.records, bytes: p.bytes, sha256: p.sha256 })),
    totalRecords: input.parts.reduce((n, p) => n + p.records, 0),
    totalBytes: input.parts.reduce((n, p) => n + p.bytes, 0),
    ...(input.supersedes ? { supersedes: input.supersedes } : {}),
  };
  if (input.gaps?.length)
    manifest.gaps = input.gaps.map((g) => ({ from: g.from, to: g.to, reason: g.reason }));
  return manifest;
}

export function serializeManifest(manifest: WindowManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
