/**
 * The per-window manifest (SPEC §3), written last beside the data parts, also
 * for an empty window. Customers check completeness with it and spot gaps by a
 * missing sequence number.
 */
import type { WrittenPart } from '../ports/index.ts';
import type { WindowGap } from './data-expiry.ts';
import { exportTimestamp } from './object-keys.ts';

export const MANIFEST_FORMAT_VERSION = 1;

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
}

export function buildManifest(input: {
  connectionId: string;
  sequence: number;
  windowStart: Date;
  windowEnd: Date;
  parts: WrittenPart[];
  gaps?: WindowGap[] | undefined;
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
  };
  if (input.gaps?.length)
    manifest.gaps = input.gaps.map((g) => ({ from: g.from, to: g.to, reason: g.reason }));
  return manifest;
}

export function serializeManifest(manifest: WindowManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
