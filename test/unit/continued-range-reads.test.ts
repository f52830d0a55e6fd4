/**
 * Reads of a large app's chunks continue one GET per run (adapters/continued-range-reads.ts):
 * the bytes are those of one ranged GET per chunk, the GETs are what the bench's model counts
 * (domain continuedReadGets), and a run that is not continued costs a new GET, never wrong bytes.
 */
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContinuedRangeReads } from '../../lambdas/adapters/continued-range-reads.ts';
import {
  continuedReadGets,
  encodeRefKey,
  planWindowRefs,
  rangeRuns,
  type SectionEntry,
} from '../../lambdas/domain/staged-segment.ts';

const OBJECT = 'slots/x/1.data';

/** An object of `size` bytes whose byte at i is i mod 251, served in `piece`-byte chunks. */
function fakeObject(size: number, piece: number) {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = i % 251;
  const opened: { offset: number; length: number }[] = [];
  const streams: Readable[] = [];
  const open = async (_key: string, offset: number, length: number): Promise<Readable> => {
    opened.push({ offset, length });
    const bytes = body.subarray(offset, Math.min(size, offset + length));
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += piece) pieces.push(bytes.subarray(at, at + piece));
    const stream = Readable.from(pieces, { objectMode: false });
    streams.push(stream);
    return stream;
  };
  return { body, opened, streams, open };
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** `count` chunks of one app, contiguous from `from`, of the given lengths. */
function chunks(from: number, lengths: number[]): SectionEntry[] {
  let offset = from;
  return lengths.map((length) => {
    const entry = { section: 'app-1', offset, length, count: 1 };
    offset += length;
    return entry;
  });
}

describe('ContinuedRangeReads', () => {
  it('reads a run of chunks taken in order with one GET, each chunk exactly its bytes', async () => {
    const object = fakeObject(10_000, 700);
    const entries = chunks(1_000, [2_000, 3_000, 1_500, 2_500]);
    const runs = rangeRuns([{ slotStart: new Date(0), dataKey: OBJECT, entries }]);
    const reads = new ContinuedRangeReads(object.open);
    // Opened ahead, as the exporter's look-ahead does, then read concurrently.
    const streams = await Promise.all(
      entries.map((e) => reads.read(OBJECT, e.offset, e.length, runs.get(`${OBJECT}#${e.offset}`))),
    );
    const bodies = await Promise.all(streams.map(bytesOf));
    for (const [i, e] of entries.entries())
      expect(bodies[i]).toEqual(object.body.subarray(e.offset, e.offset + e.length));
    expect(object.opened).toEqual([{ offset: 1_000, length: 9_000 }]);
    const refs = entries.map((e) =>
      encodeRefKey([{ objectKey: OBJECT, offset: e.offset, length: e.length }]),
    );
    expect(continuedReadGets(refs, runs)).toBe(object.opened.length);
  });

  it('a chunk read out of order, or without its run, costs its own GET and still gets its bytes', async () => {
    const object = fakeObject(4_000, 300);
    const reads = new ContinuedRangeReads(object.open);
    const first = await bytesOf(await reads.read(OBJECT, 0, 1_000, 4_000));
    const third = await bytesOf(await reads.read(OBJECT, 2_000, 1_000, 4_000));
    const plain = await bytesOf(await reads.read(OBJECT, 3_500, 500));
    expect(first).toEqual(object.body.subarray(0, 1_000));
    expect(third).toEqual(object.body.subarray(2_000, 3_000));
    expect(plain).toEqual(object.body.subarray(3_500, 4_000));
    expect(object.opened.map((o) => o.offset)).toEqual([0, 2_000, 3_500]);
    reads.close();
  });

  it('a chunk whose reader stops early or never reads does not stall or corrupt the next one', async () => {
    const object = fakeObject(6_000, 250);
    const reads = new ContinuedRangeReads(object.open);
    const a = await reads.read(OBJECT, 0, 2_000, 6_000);
    const b = await reads.read(OBJECT, 2_000, 2_000, 6_000);
    const c = await reads.read(OBJECT, 4_000, 2_000, 6_000);
    // a: read one piece then abandoned; b: destroyed before any read; c: read whole.
    const first = await (a[Symbol.asyncIterator]() as AsyncIterator<Buffer>).next();
    expect(Buffer.from(first.value)).toEqual(object.body.subarray(0, 250));
    a.destroy();
    b.destroy();
    expect(await bytesOf(c)).toEqual(object.body.subarray(4_000, 6_000));
    // The run's response was elsewhere when c started: c opened its own GET at its first byte.
    expect(object.opened.at(-1)).toEqual({ offset: 4_000, length: 2_000 });
  });

  it('an open run whose connection was reset is opened again where the next chunk starts', async () => {
    const object = fakeObject(3_000, 400);
    const reads = new ContinuedRangeReads(object.open);
    expect(await bytesOf(await reads.read(OBJECT, 0, 1_000, 3_000))).toEqual(object.body.subarray(0, 1_000));
    // The idle response fails (no reader is waiting on it): no crash, the next chunk reopens.
    object.streams[0]!.destroy(new Error('ECONNRESET'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(await bytesOf(await reads.read(OBJECT, 1_000, 1_000, 3_000))).toEqual(
      object.body.subarray(1_000, 2_000),
    );
    expect(await bytesOf(await reads.read(OBJECT, 2_000, 1_000, 3_000))).toEqual(
      object.body.subarray(2_000, 3_000),
    );
    // Reopened after the 200 bytes of the first response the first chunk had received but not used.
    expect(object.opened).toEqual([
      { offset: 0, length: 3_000 },
      { offset: 1_200, length: 1_800 },
    ]);
  });

  it('any chunking and response piece size: the same bytes as one GET per chunk, with the GETs modeled', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 1_200 }),
        fc.integer({ min: 0, max: 300 }),
        async (lengths, piece, gapAfter) => {
          const entries = chunks(50, lengths);
          // Another app's chunk after a gap: its own run.
          const end = entries.at(-1)!.offset + entries.at(-1)!.length;
          const other = { section: 'app-2', offset: end + gapAfter, length: 100, count: 1 };
          const object = fakeObject(other.offset + other.length, piece);
          const slot = { slotStart: new Date(0), dataKey: OBJECT, entries };
          const runs = rangeRuns([slot, { ...slot, entries: [other] }]);
          const refs = planWindowRefs([slot], 1).map((ref) => ref.key);
          const reads = new ContinuedRangeReads(object.open);
          for (const e of [...entries, other]) {
            const got = await bytesOf(
              await reads.read(OBJECT, e.offset, e.length, runs.get(`${OBJECT}#${e.offset}`)),
            );
            expect(got).toEqual(object.body.subarray(e.offset, e.offset + e.length));
          }
          expect(object.opened.length).toBe(continuedReadGets(refs, runs) + 1);
          expect(continuedReadGets(refs, runs)).toBe(1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
