import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMPACTION_DELAY_SECONDS, STAGER_TIMEOUT_SECONDS } from '../../lambdas/definitions.ts';
import {
  CorruptStagedDataError,
  decodeRefKey,
  decodeSegmentHeader,
  encodeRefKey,
  encodeSegment,
  encodeSlotIndex,
  findInSlotIndex,
  planWindowRefs,
  QUARANTINE_SECTION,
  segmentDataStart,
  stageTimeOfRefKey,
} from '../../lambdas/domain/staged-segment.ts';
import {
  compactionStartOf,
  compareSequenceNumbers,
  SLOT_MS,
  segmentKey,
  segmentRangeOfKey,
  segmentWritableAt,
  slotDataKey,
  slotIndexKey,
  slotQuarantineKey,
  slotStartOf,
  slotsOfWindow,
  stageTimeOfSegmentKey,
} from '../../lambdas/domain/staging-layout.ts';

const at = (iso: string) => new Date(iso);

describe('Staging slots', () => {
  it('every window boundary of every frequency is a slot boundary', () => {
    expect((15 * 60_000) % SLOT_MS).toBe(0);
    expect(slotStartOf(at('2026-11-02T10:14:59.999Z')).toISOString()).toBe('2026-11-02T10:00:00.000Z');
    expect(slotStartOf(at('2026-11-02T10:15:00.000Z')).toISOString()).toBe('2026-11-02T10:15:00.000Z');
  });

  it('a window [start, end) is the slots from the slot of start to end', () => {
    expect(
      slotsOfWindow(at('2026-11-02T10:07:00Z'), at('2026-11-02T10:45:00Z')).map((d) => d.toISOString()),
    ).toEqual(['2026-11-02T10:00:00.000Z', '2026-11-02T10:15:00.000Z', '2026-11-02T10:30:00.000Z']);
    expect(slotsOfWindow(at('2026-11-02T00:00:00Z'), at('2026-11-03T00:00:00Z'))).toHaveLength(96);
  });

  it('a segment is writable only while its slot is open, and compaction starts after any such write has ended', () => {
    const t = at('2026-11-02T10:14:30Z');
    expect(segmentWritableAt(t, at('2026-11-02T10:14:59.999Z'))).toBe(true);
    expect(segmentWritableAt(t, at('2026-11-02T10:15:00Z'))).toBe(false);
    // A write started just before the slot ends finishes within the stager timeout, before compaction.
    const lastWriteEnd = at('2026-11-02T10:15:00Z').getTime() + STAGER_TIMEOUT_SECONDS * 1000;
    expect(compactionStartOf(slotStartOf(t)).getTime()).toBeGreaterThan(lastWriteEnd);
    expect(compactionStartOf(slotStartOf(t)).getTime()).toBe(
      at('2026-11-02T10:15:00Z').getTime() + COMPACTION_DELAY_SECONDS * 1000,
    );
  });

  it('keys: segments under their slot, slots and quarantine by day', () => {
    const key = segmentKey(at('2026-11-02T10:07:03.004Z'), 'shardId-000000000007', '4959', '4971');
    expect(key).toBe('segments/1793613600000/1793614023004-shardId%2D000000000007-4959-4971.seg');
    expect(stageTimeOfSegmentKey(key)?.toISOString()).toBe('2026-11-02T10:07:03.004Z');
    expect(stageTimeOfSegmentKey('segments/1793613900000/notes.txt')).toBeUndefined();
    const slot = at('2026-11-02T10:00:00Z');
    expect(slotDataKey(slot)).toBe('slots/2026-11-02/1793613600000.data');
    expect(slotIndexKey(slot)).toBe('slots/2026-11-02/1793613600000.index');
    expect(slotQuarantineKey(slot)).toBe('quarantine/dt=2026-11-02/1793613600000.ndjson.gz');
  });

  it("a segment's key names its shard and its unit's whole sequence range; older keys only the first", () => {
    const first = '49590338271490256608559692538361571095921575989136588901';
    const last = '49590338271490256608559692538361571095921575989136589000';
    const key = segmentKey(at('2026-11-02T10:07:03.004Z'), 'shardId-000000000007', first, last);
    expect(segmentRangeOfKey(key)).toEqual({ shardId: 'shardId-000000000007', first, last });
    // Written before keys carried the last sequence number: still a segment, its end unknown.
    const old = 'segments/1793613600000/1793614023004-shardId%2D000000000007-4959.seg';
    expect(segmentRangeOfKey(old)).toEqual({ shardId: 'shardId-000000000007', first: '4959' });
    expect(stageTimeOfSegmentKey(old)?.toISOString()).toBe('2026-11-02T10:07:03.004Z');
    // A shard id with characters encoded in the key comes back as it was.
    const odd = segmentKey(at('2026-11-02T10:07:03.004Z'), 'cli-stage.a_b', '1', '2');
    expect(segmentRangeOfKey(odd)?.shardId).toBe('cli-stage.a_b');
    expect(segmentRangeOfKey('segments/1793613600000/notes.txt')).toBeUndefined();
    expect(segmentRangeOfKey('slots/2026-11-02/1793613600000.data')).toBeUndefined();
  });

  it('compares Kinesis sequence numbers as integers', () => {
    expect(compareSequenceNumbers('9', '10')).toBeLessThan(0);
    expect(
      compareSequenceNumbers('49590338271490256608559692538361571095921575989136588901', '4959'),
    ).toBeGreaterThan(0);
  });
});

describe('Segments and slot indexes', () => {
  const member = (lines: string[]) => gzipSync(`${lines.join('\n')}\n`);

  it('a segment holds one gzip member per section, sorted by name with quarantine first', () => {
    const body = encodeSegment([
      { section: 'app-b', gzip: member(['{"b":1}']), count: 1 },
      { section: QUARANTINE_SECTION, gzip: member(['{"reason":"x"}']), count: 1 },
      { section: 'app-a', gzip: member(['{"a":1}', '{"a":2}']), count: 2 },
    ]);
    const sections = decodeSegmentHeader('k', body);
    expect(sections.map((s) => [s.section, s.count])).toEqual([
      [QUARANTINE_SECTION, 1],
      ['app-a', 2],
      ['app-b', 1],
    ]);
    const dataStart = segmentDataStart('k', body);
    const a = sections[1]!;
    expect(gunzipSync(body.subarray(dataStart + a.offset, dataStart + a.offset + a.length)).toString()).toBe(
      '{"a":1}\n{"a":2}\n',
    );
  });

  it('a corrupt segment or index is refused with the object named', () => {
    expect(() => decodeSegmentHeader('segments/x.seg', Buffer.from('garbage'))).toThrow(
      CorruptStagedDataError,
    );
    expect(() => findInSlotIndex('slots/x.index', 'nope', 'app')).toThrow(/slots\/x.index is corrupt/);
  });

  it('finds every chunk of an app in a slot index, and nothing for an app that is a prefix of another', () => {
    const text = encodeSlotIndex(0, [
      { section: 'app', offset: 0, length: 10, count: 1 },
      { section: 'app-1', offset: 10, length: 5, count: 2 },
      { section: 'app-1', offset: 15, length: 7, count: 3 },
      { section: 'app-2', offset: 22, length: 1, count: 1 },
    ]);
    expect(findInSlotIndex('i', text, 'app-1')).toEqual([
      { section: 'app-1', offset: 10, length: 5, count: 2 },
      { section: 'app-1', offset: 15, length: 7, count: 3 },
    ]);
    expect(findInSlotIndex('i', text, 'app')).toEqual([{ section: 'app', offset: 0, length: 10, count: 1 }]);
    expect(findInSlotIndex('i', text, 'ap')).toEqual([]);
    expect(findInSlotIndex('i', text, 'app-3')).toEqual([]);
  });

  it('ref keys round-trip and carry the stage time of their first slot', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ ms: fc.integer({ min: 0, max: 4e12 }), offset: fc.nat(), length: fc.nat() }), {
          minLength: 1,
          maxLength: 5,
        }),
        (ranges) => {
          const stored = ranges.map((r) => ({
            objectKey: slotDataKey(new Date(Math.floor(r.ms / SLOT_MS) * SLOT_MS)),
            offset: r.offset,
            length: r.length,
          }));
          const key = encodeRefKey(stored);
          expect(decodeRefKey(key)).toEqual(stored);
          expect(stageTimeOfRefKey(key)?.getTime()).toBe(Math.floor(ranges[0]!.ms / SLOT_MS) * SLOT_MS);
        },
      ),
    );
  });

  it('groups a small app into one ref for the whole window and splits a large one at chunk boundaries', () => {
    const slots = Array.from({ length: 96 }, (_, i) => {
      const slotStart = new Date(Date.parse('2026-11-02T00:00:00Z') + i * SLOT_MS);
      return {
        slotStart,
        dataKey: slotDataKey(slotStart),
        entries: [{ section: 'a', offset: i, length: 100, count: 1 }],
      };
    });
    const small = planWindowRefs(slots, 1 << 20);
    expect(small).toHaveLength(1);
    expect(decodeRefKey(small[0]!.key)).toHaveLength(96);
    expect(small[0]!.size).toBe(9600);
    const large = planWindowRefs(slots, 1000);
    expect(large).toHaveLength(10);
    expect(large.map((r) => r.stageTime.getTime())).toEqual(
      [...large.map((r) => r.stageTime.getTime())].sort(),
    );
    expect(large.flatMap((r) => decodeRefKey(r.key))).toEqual(decodeRefKey(small[0]!.key));
    expect(planWindowRefs([])).toEqual([]);
  });
});
