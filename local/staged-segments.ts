/**
 * Reading staged events back from the segments the stager wrote (for the simulation's checks):
 * every event with its app, its stage time and the segment holding it.
 */
import { gunzipSync } from 'node:zlib';
import {
  decodeSegmentHeader,
  QUARANTINE_SECTION,
  segmentDataStart,
} from '../lambdas/domain/staged-segment.ts';
import { segmentPrefix, stageTimeOfSegmentKey } from '../lambdas/domain/staging-layout.ts';
import type { StagingStore } from '../lambdas/ports/index.ts';

export interface StagedLine {
  appId: string;
  /** The staged event line, exactly as stored. */
  line: string;
  stageTime: Date;
  segmentKey: string;
}

/** Every staged event line of the given slots, segment by segment (slots listed one by one). */
export async function readStagedLines(store: StagingStore, slots: Iterable<Date>): Promise<StagedLine[]> {
  const out: StagedLine[] = [];
  for (const slot of slots) {
    for (const { key } of await store.listPrefix(segmentPrefix(slot))) {
      const stageTime = stageTimeOfSegmentKey(key);
      const body = await store.readBytes(key);
      if (!stageTime || !body) continue;
      const dataStart = segmentDataStart(key, body);
      for (const section of decodeSegmentHeader(key, body)) {
        if (section.section === QUARANTINE_SECTION) continue;
        const from = dataStart + section.offset;
        const text = gunzipSync(body.subarray(from, from + section.length)).toString('utf8');
        for (const line of text.split('\n'))
          if (line.length > 0) out.push({ appId: section.section, line, stageTime, segmentKey: key });
      }
    }
  }
  return out;
}
