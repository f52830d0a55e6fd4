/**
 * The classification of a failure-queue range (domain/dropped-ranges.ts and the use case over a
 * listing of segment keys and a ledger row): staged, abandoned, not staged, partly staged, or not
 * settled yet — and never a record of a staged segment to put again.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyDroppedRange,
  InvalidSequenceRangeError,
  type SequenceRange,
} from '../../lambdas/domain/dropped-ranges.ts';
import { SLOT_MS, segmentKey, segmentPrefix } from '../../lambdas/domain/staging-layout.ts';
import type { ShardCheckpoint, StagingLedger, StoredKey } from '../../lambdas/ports/index.ts';
import {
  classifyDroppedRange as classifyFromStores,
  DroppedRangeUnanswerableError,
} from '../../lambdas/usecases/classify-dropped-range.ts';

/** Kinesis-like sequence numbers: a 56-digit base plus a small offset (far beyond 2^53). */
const BASE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;
const seq = (n: number) => String(BASE + BigInt(n));
const range = (first: number, last: number): SequenceRange => ({
  firstSequence: seq(first),
  lastSequence: seq(last),
});
const abandoned = (first: number, last: number) => ({
  ...range(first, last),
  at: '2026-11-02T10:20:00.000Z',
});

describe('classifying a failure-queue range', () => {
  it('staged: every record is in a staged unit, even one that starts before the range (a bisected half of a unit written whole)', () => {
    // The batch 10-29 was fixed and written as one unit, then bisected; the event source gave up on 20-29.
    const c = classifyDroppedRange(range(20, 29), {
      units: [range(1, 9), range(10, 29), range(30, 40)],
      stagedThrough: seq(40),
      abandoned: [],
    });
    expect(c).toMatchObject({ verdict: 'staged', staged: [range(20, 29)], replay: [], abandoned: [] });
  });

  it('not staged: no unit holds its records and the shard staged past it (every attempt failed before its first ledger write)', () => {
    const c = classifyDroppedRange(range(10, 19), {
      units: [range(1, 9), range(20, 30)],
      stagedThrough: seq(30),
      abandoned: [],
    });
    expect(c).toMatchObject({ verdict: 'not staged', staged: [], replay: [range(10, 19)] });
  });

  it('abandoned: the records are in an abandoned range; its replay leaves out what a later unit staged', () => {
    // Unit 10-29 was in flight, not written; its first half was given up on; 20-29 came back and was staged.
    const c = classifyDroppedRange(range(10, 19), {
      units: [range(20, 29)],
      stagedThrough: seq(29),
      abandoned: [abandoned(10, 29)],
    });
    expect(c.verdict).toBe('abandoned');
    expect(c.replay).toEqual([]);
    expect(c.abandoned).toEqual([{ range: abandoned(10, 29), replay: [range(10, 19)] }]);
  });

  it('partly staged: the exact sub-ranges to put again, bounds next to the staged units', () => {
    const c = classifyDroppedRange(range(10, 40), {
      units: [range(5, 14), range(20, 25), range(38, 50)],
      stagedThrough: seq(50),
      abandoned: [],
    });
    expect(c.verdict).toBe('partly staged');
    expect(c.staged).toEqual([range(10, 14), range(20, 25), range(38, 40)]);
    expect(c.replay).toEqual([range(15, 19), range(26, 37)]);
  });

  it('not settled yet: the shard has not staged past the range, or past an abandoned range holding its records', () => {
    expect(
      classifyDroppedRange(range(10, 19), { units: [], stagedThrough: seq(15), abandoned: [] }),
    ).toMatchObject({
      verdict: 'not settled yet',
      replay: [],
    });
    expect(classifyDroppedRange(range(10, 19), { units: [], abandoned: [] }).verdict).toBe('not settled yet');
    expect(
      classifyDroppedRange(range(10, 19), {
        units: [],
        stagedThrough: seq(19),
        abandoned: [abandoned(10, 29)],
      }).verdict,
    ).toBe('not settled yet');
  });

  it('not settled yet: an abandoned range recorded less than the settle time ago (a timed-out PUT may still land)', () => {
    const evidence = {
      units: [],
      stagedThrough: seq(40),
      abandoned: [abandoned(10, 29)], // recorded 10:20:00
      abandonedSettleMs: 120_000,
    };
    const early = classifyDroppedRange(range(10, 19), { ...evidence, now: new Date('2026-11-02T10:21:59Z') });
    expect(early).toMatchObject({ verdict: 'not settled yet', replay: [], abandoned: [] });
    expect(early.settlesAt).toBe('2026-11-02T10:22:00.000Z');
    // Once settled: the segment did not appear, so the abandoned records are put again.
    const settled = classifyDroppedRange(range(10, 19), {
      ...evidence,
      now: new Date('2026-11-02T10:22:00Z'),
    });
    expect(settled.verdict).toBe('abandoned');
    expect(settled.settlesAt).toBeUndefined();
    // The segment landed meanwhile: nothing to put again.
    expect(
      classifyDroppedRange(range(10, 19), {
        ...evidence,
        units: [range(10, 29)],
        now: new Date('2026-11-02T10:22:00Z'),
      }).verdict,
    ).toBe('staged');
  });

  it('refuses a range that is not two ordered decimal sequence numbers', () => {
    const none = { units: [], abandoned: [] };
    expect(() => classifyDroppedRange({ firstSequence: '12a', lastSequence: '13' }, none)).toThrow(
      InvalidSequenceRangeError,
    );
    expect(() => classifyDroppedRange(range(20, 10), none)).toThrow(/ends before it starts/);
  });

  it('never names a staged record to put again, and names every other record of a settled range exactly once', () => {
    const spans = fc.array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 8 })), {
      maxLength: 6,
    });
    fc.assert(
      fc.property(
        spans,
        spans,
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 20 }),
        (u, a, lo, len) => {
          const units = u.map(([first, n]) => range(first, first + n));
          const ranges = a.map(([first, n]) => abandoned(first, first + n));
          const c = classifyDroppedRange(range(lo, lo + len), {
            units,
            stagedThrough: seq(100),
            abandoned: ranges,
          });
          const inAny = (n: number, rs: readonly SequenceRange[]) =>
            rs.some(
              (r) =>
                BigInt(r.firstSequence) <= BASE + BigInt(n) && BASE + BigInt(n) <= BigInt(r.lastSequence),
            );
          for (let n = lo; n <= lo + len; n += 1) {
            const staged = inAny(n, units);
            const named =
              c.replay.filter((r) => inAny(n, [r])).length +
              c.abandoned.filter((x) => inAny(n, x.replay)).length;
            expect(named, `record ${n}`).toBe(staged ? 0 : 1);
            expect(inAny(n, c.staged)).toBe(staged);
          }
          for (const x of c.abandoned)
            for (const r of x.replay)
              expect(units.some((s) => inAny(Number(BigInt(r.firstSequence) - BASE), [s]))).toBe(false);
        },
      ),
    );
  });
});

describe('the use case over the staging bucket and the ledger row', () => {
  const shardId = 'shardId-000000000003';
  const now = new Date('2026-11-02T12:00:00.000Z');
  const arrived = new Date('2026-11-02T10:05:00.000Z');

  function deps(keys: string[], row: Partial<ShardCheckpoint>) {
    const listed: string[] = [];
    const ledger: StagingLedger = {
      getCheckpoint: async () => ({ shardId, version: 3, ...row }),
      putCheckpoint: async () => false,
    };
    return {
      listed,
      deps: {
        ledger,
        clock: { now: () => now },
        stagingRetentionDays: 14,
        store: {
          listPrefix: async (prefix: string): Promise<StoredKey[]> => {
            listed.push(prefix);
            return keys.filter((k) => k.startsWith(prefix)).map((key) => ({ key, size: 10 }));
          },
        },
      },
    };
  }

  it("reads the units from the shard's segment keys in the slots since the first arrival, other shards' ignored", async () => {
    const t = (ms: number) => new Date(arrived.getTime() + ms);
    const keys = [
      segmentKey(t(-2 * SLOT_MS), shardId, seq(1), seq(9)),
      segmentKey(t(60_000), shardId, seq(10), seq(29)),
      segmentKey(t(60_000), 'shardId-000000000004', seq(30), seq(39)),
    ];
    const { deps: d, listed } = deps(keys, { stagedThrough: seq(29) });
    const c = await classifyFromStores({ shardId, ...range(20, 35), firstArrival: arrived }, d);
    expect(c.verdict).toBe('not settled yet');
    const settled = deps(keys, { stagedThrough: seq(40) });
    const answer = await classifyFromStores(
      { shardId, ...range(20, 35), firstArrival: arrived },
      settled.deps,
    );
    expect(answer).toMatchObject({
      verdict: 'partly staged',
      staged: [range(20, 29)],
      replay: [range(30, 35)],
    });
    // One slot before the arrival (approximate times) to the slot after now.
    expect(listed[0]).toBe(segmentPrefix(new Date(arrived.getTime() - SLOT_MS)));
    expect(listed.at(-1)).toBe(segmentPrefix(new Date(now.getTime() + SLOT_MS)));
    expect(new Set(listed).size).toBe(listed.length);
  });

  it('refuses a range older than the staging retention, and one an old-format key may hold', async () => {
    const { deps: d } = deps([], { stagedThrough: seq(40) });
    const old = new Date(now.getTime() - 15 * 86_400_000);
    await expect(classifyFromStores({ shardId, ...range(1, 2), firstArrival: old }, d)).rejects.toThrow(
      DroppedRangeUnanswerableError,
    );
    const oldKey = `segments/1793613600000/${arrived.getTime() + 1000}-shardId%2D000000000003-${seq(5)}.seg`;
    const withOld = deps([oldKey], { stagedThrough: seq(40) });
    await expect(
      classifyFromStores({ shardId, ...range(10, 19), firstArrival: arrived }, withOld.deps),
    ).rejects.toThrow(/written before segment keys named/);
  });
});
