/**
 * An exporter's lease on a connection's state row, and the fence it puts around the exporter's
 * writes in the customer's bucket (docs/exactly-once.md §4).
 *
 * The lease is renewed once a third of it has passed, before each staged object, before each
 * write and, while a write is in flight, by a timer. A write in flight when the lease's safe
 * deadline passes (its expiry minus a margin for requests already sent) is aborted: no write of an
 * exporter lands after another could have taken its lease over, so the files a manifest lists are
 * the bytes its exporter wrote, even with PGP, whose output differs on every encryption.
 */
import type { Clock, ExportStateStore } from '../ports/index.ts';

export interface LeaseFenceDeps {
  state: Pick<ExportStateStore, 'renewLease'>;
  clock: Clock;
  leaseMs: number;
  /** How often (real milliseconds) a write in flight checks the deadline and renews; default 250. */
  pollMs?: number;
}

/** The part of a lease kept free for requests already sent when a write is aborted. */
export function fenceMarginMs(leaseMs: number): number {
  return leaseMs / 6;
}

export class LeaseFence {
  private renewedAt: number;
  private renewing: Promise<boolean> | undefined;

  /**
   * @param acquiredAt the `now` the lease was taken (or last renewed) with
   * @param lost the error to throw when the lease is lost or its deadline passed during a write
   */
  constructor(
    private readonly connectionId: string,
    private readonly owner: string,
    private readonly deps: LeaseFenceDeps,
    acquiredAt: Date,
    private readonly lost: (why: string) => Error,
  ) {
    this.renewedAt = acquiredAt.getTime();
  }

  /** The instant (clock milliseconds) after which no write of ours may be in flight. */
  deadline(): number {
    return this.renewedAt + this.deps.leaseMs - fenceMarginMs(this.deps.leaseMs);
  }

  /**
   * Renew the lease when a third of it has passed since it was taken or renewed: the same
   * guarantee before a manifest as during the parts. Throws `lost(...)` when it is not ours.
   */
  keep = async (): Promise<void> => {
    if (this.renewing) await this.renewing.catch(() => undefined);
    if (this.deps.clock.now().getTime() - this.renewedAt < this.deps.leaseMs / 3) return;
    if (!(await this.renew())) throw this.lost('the lease was taken over by another exporter');
  };

  /** Renew now; false when the lease is no longer ours. */
  private renew(): Promise<boolean> {
    const now = this.deps.clock.now();
    const renewing = this.deps.state
      .renewLease(this.connectionId, this.owner, now, this.deps.leaseMs)
      .then((ok) => {
        if (ok) this.renewedAt = Math.max(this.renewedAt, now.getTime());
        return ok;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    this.renewing = renewing;
    return renewing;
  }

  /**
   * Run one write under the fence: the lease is kept first, renewed while the write is in flight,
   * and the write's signal aborts when the deadline passes or the lease is lost. A write that
   * ends after the deadline rejects too (it may have landed late: nothing may build on it).
   */
  write = async <T>(write: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    await this.keep();
    const controller = new AbortController();
    const overdue = () => {
      if (controller.signal.aborted || this.deps.clock.now().getTime() < this.deadline()) return false;
      controller.abort(this.lost('the lease ran out while a write was in flight'));
      return true;
    };
    const check = () => {
      if (overdue() || controller.signal.aborted) return;
      if (!this.renewing && this.deps.clock.now().getTime() - this.renewedAt >= this.deps.leaseMs / 3) {
        this.renew().then(
          (ok) => {
            if (!ok) controller.abort(this.lost('the lease was taken over by another exporter'));
          },
          // A renewal that did not reach the table leaves the deadline to decide.
          () => undefined,
        );
      }
    };
    const timer = setInterval(check, this.deps.pollMs ?? 250);
    timer.unref?.();
    try {
      const result = await write(controller.signal);
      overdue();
      if (controller.signal.aborted) throw controller.signal.reason;
      return result;
    } finally {
      clearInterval(timer);
    }
  };
}
