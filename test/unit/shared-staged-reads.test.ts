/**
 * The shared reader of a group job (lambdas/usecases/shared-staged-reads.ts) over a staging store
 * whose GETs the test answers by hand, so it can hold a GET open, fail it, or count it: one GET
 * per object, bounded look-ahead, leaving members, failed GETs, no deadlock.
 */
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRefKey } from '../../lambdas/domain/staged-segment.ts';
import { SLOT_MS, slotDataKey } from '../../lambdas/domain/staging-layout.ts';
import type { StagedObjectRef, StagingStore, StoredKey } from '../../lambdas/ports/index.ts';
import { type SharedReadMember, SharedStagedReads } from '../../lambdas/usecases/shared-staged-reads.ts';

const T0 = Date.parse('2026-11-02T10:00:00Z');

/** Staged ref keys in listing order (one per slot). */
function keys(n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    encodeRefKey([{ objectKey: slotDataKey(new Date(T0 + i * SLOT_MS)), offset: 100 * i, length: 42 }]),
  );
}

function bodyOf(key: string): string {
  return `gzipped bytes of ${key}`;
}

interface Get {
  key: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A StagingStore whose GETs are answered at once (`auto`) or held until the test answers them. */
class ScriptedStore implements StagingStore {
  /** Every GET, in order. */
  readonly gets: string[] = [];
  readonly held: Get[] = [];
  constructor(private readonly auto = true) {}

  async createObject(): Promise<'created'> {
    throw new Error('not used');
  }
  async exists(): Promise<boolean> {
    throw new Error('not used');
  }
  async listWindow(): Promise<StagedObjectRef[]> {
    throw new Error('not used');
  }
  async listPrefix(): Promise<StoredKey[]> {
    throw new Error('not used');
  }
  async readBytes(): Promise<undefined> {
    throw new Error('not used');
  }
  async writeStream(): Promise<void> {
    throw new Error('not used');
  }
  openObject(key: string): Promise<Readable> {
    this.gets.push(key);
    const body = () => Readable.from([Buffer.from(bodyOf(key))]);
    if (this.auto) return Promise.resolve(body());
    return new Promise((resolve, reject) => {
      this.held.push({ key, resolve: () => resolve(body()), reject });
    });
  }
  answer(key: string): void {
    const i = this.held.findIndex((g) => g.key === key);
    if (i < 0) throw new Error(`no GET of ${key} is held`);
    this.held.splice(i, 1)[0]!.resolve();
  }
  fail(key: string, error: Error): void {
    const i = this.held.findIndex((g) => g.key === key);
    if (i < 0) throw new Error(`no GET of ${key} is held`);
    this.held.splice(i, 1)[0]!.reject(error);
  }
}

async function read(member: SharedReadMember, key: string): Promise<string> {
  return (await buffer(await member.openObject(key))).toString('utf8');
}

/** Read `ks` in order; each body must be that key's. */
async function readAll(member: SharedReadMember, ks: string[], pause?: () => Promise<void>): Promise<void> {
  for (const key of ks) {
    expect(await read(member, key)).toBe(bodyOf(key));
    await pause?.();
  }
}

/** Let every pending promise callback and stream tick run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** Resolves to 'pending' when `promise` has not settled after the event loop went quiet. */
async function state(promise: Promise<unknown>): Promise<'pending' | 'settled'> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await settle();
  return done ? 'settled' : 'pending';
}

describe('shared staged reads', () => {
  it('three members reading the same objects concurrently cause one GET per object', async () => {
    const store = new ScriptedStore();
    const reader = new SharedStagedReads(store, 4);
    const ks = keys(20);
    const members = [reader.join(), reader.join(), reader.join()];
    await Promise.all(
      members.map(async (m, i) => {
        await readAll(m, ks, () => new Promise((resolve) => setTimeout(resolve, i)));
        m.leave();
      }),
    );
    expect(store.gets).toEqual(ks);
    expect(reader.stats).toMatchObject({ fetched: 20, shared: 40, unshared: 0 });
    expect(reader.held).toBe(0);
  });

  it('members asking for a key whose GET is in flight wait for that same GET', async () => {
    const store = new ScriptedStore(false);
    const reader = new SharedStagedReads(store, 4);
    const [k] = keys(1);
    const [ma, mb] = [reader.join(), reader.join()];
    const a = read(ma, k!);
    const b = read(mb, k!);
    await settle();
    expect(store.gets).toEqual([k]);
    store.answer(k!);
    expect(await Promise.all([a, b])).toEqual([bodyOf(k!), bodyOf(k!)]);
    expect(store.gets).toEqual([k]);
  });

  it('a fast member waits K objects ahead of the slowest until the slow one moves on', async () => {
    const store = new ScriptedStore();
    const K = 3;
    const reader = new SharedStagedReads(store, K);
    const ks = keys(8);
    const slow = reader.join();
    const fast = reader.join();
    for (const key of ks.slice(0, K)) await read(fast, key);
    // The slow member has read nothing: the fast one holds K objects for it, and must wait.
    const blocked = read(fast, ks[K]!);
    expect(await state(blocked)).toBe('pending');
    expect(store.gets).toEqual(ks.slice(0, K));
    expect(reader.held).toBe(K);

    // The slow member reads the first object (shared, no GET): the fast one may take one more.
    expect(await read(slow, ks[0]!)).toBe(bodyOf(ks[0]!));
    expect(await blocked).toBe(bodyOf(ks[K]!));
    expect(store.gets).toEqual(ks.slice(0, K + 1));
    const blockedAgain = read(fast, ks[K + 1]!);
    expect(await state(blockedAgain)).toBe('pending');

    await readAll(slow, ks.slice(1, K + 2));
    expect(await blockedAgain).toBe(bodyOf(ks[K + 1]!));
    expect(reader.stats.peakHeld).toBeLessThanOrEqual(K + 1);
    expect(reader.stats.waits).toBeGreaterThanOrEqual(2);
    expect(new Set(store.gets).size).toBe(store.gets.length);
  });

  it('a member that leaves (finished, failed, lease held) unblocks the others, and its bytes are dropped', async () => {
    const store = new ScriptedStore();
    const reader = new SharedStagedReads(store, 2);
    const ks = keys(10);
    const idle = reader.join(); // e.g. finds its lease held: never reads anything
    const halfway = reader.join(); // e.g. its upload fails after two objects
    const fast = reader.join();
    await read(halfway, ks[0]!);
    await read(halfway, ks[1]!);
    const rest = readAll(fast, ks);
    expect(await state(rest)).toBe('pending');
    idle.leave();
    expect(await state(rest)).toBe('pending'); // still K ahead of `halfway`
    halfway.leave();
    halfway.leave(); // idempotent
    await rest;
    fast.leave();
    expect(store.gets).toEqual(ks);
    expect(reader.held).toBe(0);
  });

  it('a failed GET reaches every member that asked for the key and is not cached: a later reader GETs it again', async () => {
    const store = new ScriptedStore(false);
    const reader = new SharedStagedReads(store, 4);
    const [k0, k1] = keys(2);
    const a = reader.join();
    const b = reader.join();
    const c = reader.join(); // slower: has not reached k0 yet
    const readA = read(a, k0!);
    const readB = read(b, k0!);
    await settle();
    const denied = Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
    store.fail(k0!, denied);
    await expect(readA).rejects.toBe(denied);
    await expect(readB).rejects.toBe(denied);
    a.leave();
    b.leave();

    const readC = read(c, k0!);
    await settle();
    expect(store.gets).toEqual([k0, k0]);
    store.answer(k0!);
    expect(await readC).toBe(bodyOf(k0!));
    const next = read(c, k1!);
    await settle();
    store.answer(k1!);
    expect(await next).toBe(bodyOf(k1!));
  });

  it('members whose windows differ share what overlaps and each read their own objects', async () => {
    const store = new ScriptedStore();
    const reader = new SharedStagedReads(store, 3);
    const ks = keys(30);
    const ranges = [ks.slice(0, 20), ks.slice(10, 30), ks.slice(25, 30), ks.slice(0, 5)];
    const members = ranges.map(() => reader.join());
    await Promise.all(
      members.map(async (m, i) => {
        await readAll(m, ranges[i]!, () => new Promise((resolve) => setTimeout(resolve, (i * 7) % 3)));
        m.leave();
      }),
    );
    expect([...store.gets].sort()).toEqual(ks);
    expect(reader.held).toBe(0);
  });

  it('a member that reads a few objects ahead (several opens in order) shares and does not deadlock', async () => {
    const store = new ScriptedStore();
    const reader = new SharedStagedReads(store, 2);
    const ks = keys(12);
    const ahead = reader.join();
    const plain = reader.join();
    const readAhead = (async () => {
      // Like the exporter's read-ahead: open the next three before taking the first.
      const opened = ks.map((key) => ({ key, body: ahead.openObject(key) }));
      for (const { key, body } of opened)
        expect((await buffer(await body)).toString('utf8')).toBe(bodyOf(key));
      ahead.leave();
    })();
    await readAll(plain, ks, () => new Promise((resolve) => setTimeout(resolve, 1)));
    plain.leave();
    await readAhead;
    expect(store.gets).toEqual(ks);
  });

  it('an out-of-order open is served straight from the store, unshared', async () => {
    const store = new ScriptedStore();
    const reader = new SharedStagedReads(store, 2);
    const [k0, k1] = keys(2);
    const m = reader.join();
    await read(m, k1!);
    expect(await read(m, k0!)).toBe(bodyOf(k0!));
    expect(await read(m, k1!)).toBe(bodyOf(k1!));
    expect(reader.stats.unshared).toBe(2);
  });

  it('a read-ahead left waiting when its member leaves is refused, not fetched', async () => {
    const store = new ScriptedStore();
    const reader = new SharedStagedReads(store, 1);
    const [k0, k1] = keys(2);
    const slow = reader.join();
    const fast = reader.join();
    await read(fast, k0!);
    const waiting = read(fast, k1!);
    expect(await state(waiting)).toBe('pending');
    fast.leave();
    await expect(waiting).rejects.toThrow('left its group');
    expect(await read(slow, k0!)).toBe(bodyOf(k0!));
    expect(store.gets).toEqual([k0]);
  });

  it('never deadlocks and GETs each object once, whatever the members read, how fast, and when they stop (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.record({
            from: fc.integer({ min: 0, max: 24 }),
            length: fc.integer({ min: 0, max: 25 }),
            /** Stops (leaves) after this many reads: an early return or a failure. */
            stopAfter: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
            delays: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 5 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        async (lookAhead, plans) => {
          const store = new ScriptedStore();
          const reader = new SharedStagedReads(store, lookAhead);
          const ks = keys(25);
          const members = plans.map(() => reader.join());
          await Promise.all(
            plans.map(async (plan, i) => {
              const m = members[i]!;
              const mine = ks.slice(plan.from, plan.from + plan.length);
              const wanted = plan.stopAfter === undefined ? mine : mine.slice(0, plan.stopAfter);
              let n = 0;
              await readAll(m, wanted, async () => {
                n += 1;
                const d = plan.delays[n % plan.delays.length]!;
                if (d > 0) await new Promise((resolve) => setTimeout(resolve, d - 1));
              });
              m.leave();
            }),
          );
          expect(new Set(store.gets).size).toBe(store.gets.length);
          expect(reader.held).toBe(0);
          expect(reader.stats.peakHeld).toBeLessThanOrEqual(lookAhead + plans.length);
        },
      ),
      { numRuns: 60 },
    );
    // 60 runs of timed reads: 0.5 s idle, 8.6 s seen beside integration tests (vitest default: 5 s).
  }, 60_000);
});
