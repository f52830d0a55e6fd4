import type { Clock } from '../lambdas/ports/index.ts';

/** A clock the demo, the simulation and tests move by hand: many days run in seconds. */
export class ManualClock implements Clock {
  private t: number;

  constructor(start: Date) {
    this.t = start.getTime();
  }

  now(): Date {
    return new Date(this.t);
  }

  set(at: Date): void {
    this.t = at.getTime();
  }

  advance(ms: number): Date {
    this.t += ms;
    return this.now();
  }
}
