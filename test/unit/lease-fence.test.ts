import { describe, expect, it } from 'vitest';
import { fenceMarginMs, LeaseFence } from '../../lambdas/usecases/lease-fence.ts';
import { ManualClock } from '../../local/clock.ts';

const LEASE_MS = 60_000;
const T0 = new Date('2026-11-01T00:00:00Z');

class LostLeaseError extends Error {}

function fenceWith(renewals: boolean[] = []) {
  const clock = new ManualClock(T0);
  const renewedAt: Date[] = [];
  const state = {
    async renewLease(_id: string, _owner: string, now: Date) {
      renewedAt.push(now);
      return renewals.shift() ?? true;
    },
  };
  const fence = new LeaseFence(
    'conn',
    'owner',
    { state, clock, leaseMs: LEASE_MS, pollMs: 2 },
    T0,
    (why) => new LostLeaseError(why),
  );
  return { clock, fence, renewedAt };
}

/** A write that runs until its signal aborts or `release` is called. */
function pendingWrite() {
  let release!: () => void;
  let seen: AbortSignal | undefined;
  const write = (signal: AbortSignal) => {
    seen = signal;
    return new Promise<string>((resolve, reject) => {
      release = () => resolve('stored');
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  };
  return { write, release: () => release(), signal: () => seen };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('LeaseFence', () => {
  it('aborts a write still in flight at the lease deadline, and renews nothing after', async () => {
    const { clock, fence, renewedAt } = fenceWith();
    const upload = pendingWrite();
    const result = fence.write(upload.write);
    await tick();
    clock.set(new Date(T0.getTime() + LEASE_MS - fenceMarginMs(LEASE_MS)));
    await expect(result).rejects.toThrow(LostLeaseError);
    expect(upload.signal()?.aborted).toBe(true);
    await tick();
    expect(renewedAt).toEqual([]);
  });

  it('keeps a long write alive by renewing the lease while it is in flight', async () => {
    const { clock, fence, renewedAt } = fenceWith();
    const upload = pendingWrite();
    const result = fence.write(upload.write);
    for (let step = 1; step <= 6; step++) {
      clock.advance(LEASE_MS / 2);
      await tick();
    }
    upload.release();
    await expect(result).resolves.toBe('stored');
    expect(renewedAt.length).toBeGreaterThanOrEqual(6);
    expect(fence.deadline()).toBeGreaterThan(clock.now().getTime());
  });

  it('aborts the write when a renewal finds the lease taken over', async () => {
    const { clock, fence } = fenceWith([false]);
    const upload = pendingWrite();
    const result = fence.write(upload.write);
    clock.advance(LEASE_MS / 2);
    await expect(result).rejects.toThrow('the lease was taken over by another exporter');
  });

  it('rejects a write that returned after the deadline (it may have landed late)', async () => {
    const { clock, fence } = fenceWith();
    const result = fence.write(async () => {
      clock.advance(LEASE_MS);
      return 'stored';
    });
    await expect(result).rejects.toThrow('the lease ran out while a write was in flight');
  });

  it('renews before a write only once a third of the lease has passed', async () => {
    const { clock, fence, renewedAt } = fenceWith();
    await fence.keep();
    clock.advance(LEASE_MS / 3 - 1);
    await fence.keep();
    expect(renewedAt).toEqual([]);
    clock.advance(1);
    await fence.keep();
    expect(renewedAt).toEqual([clock.now()]);
  });
});
