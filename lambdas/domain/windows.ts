import type { Frequency } from '../definitions.ts';
import { DomainError } from './errors.ts';

const MINUTE_MS = 60_000;
const FIFTEEN_MINUTES_MS = 15 * MINUTE_MS;
const DAY_MS = 24 * 60 * MINUTE_MS;
const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05 was a Monday: weekly boundaries are this epoch plus whole weeks. */
const FIRST_MONDAY_MS = 4 * DAY_MS;

/** Length of one period of a frequency, in milliseconds. */
export function periodMs(frequency: Frequency): number {
  switch (frequency) {
    case 'FIFTEEN_MINUTES':
      return FIFTEEN_MINUTES_MS;
    case 'DAILY':
      return DAY_MS;
    case 'WEEKLY':
      return WEEK_MS;
  }
}

/** The latest window boundary of `frequency` at or before `at` (UTC). */
export function boundaryAtOrBefore(frequency: Frequency, at: Date): Date {
  const t = at.getTime();
  const offset = frequency === 'WEEKLY' ? FIRST_MONDAY_MS : 0;
  const p = periodMs(frequency);
  return new Date(Math.floor((t - offset) / p) * p + offset);
}

/** The first window boundary of `frequency` strictly after `at`. */
export function boundaryAfter(frequency: Frequency, at: Date): Date {
  return new Date(boundaryAtOrBefore(frequency, at).getTime() + periodMs(frequency));
}

/**
 * The window end a schedule tick stands for. A tick fires a settle delay after
 * the boundary, and may be late by less than a period; flooring its *scheduled*
 * time to the boundary makes the window end the same on every attempt.
 */
export function windowEndForTick(frequency: Frequency, scheduledTime: Date): Date {
  return boundaryAtOrBefore(frequency, scheduledTime);
}

/** Every boundary of `frequency` in (from, to], oldest first: the ticks a simulated clock must fire. */
export function boundariesBetween(frequency: Frequency, from: Date, to: Date): Date[] {
  const out: Date[] = [];
  for (let b = boundaryAfter(frequency, from); b.getTime() <= to.getTime(); b = boundaryAfter(frequency, b)) {
    out.push(b);
  }
  return out;
}

export interface ExportWindow {
  /** Inclusive: the connection's watermark. */
  start: Date;
  /** Exclusive: fixed before any work starts; names every object of the window. */
  end: Date;
}

/** The window to export now, or undefined when the watermark has already reached the window end. */
export function nextWindow(watermark: Date, windowEnd: Date): ExportWindow | undefined {
  if (watermark.getTime() >= windowEnd.getTime()) return undefined;
  return { start: watermark, end: windowEnd };
}

/** How far a connection is behind: from its watermark to the latest boundary at or before `now` (one period for a connection whose tick is due). */
export function exportLagMs(frequency: Frequency, watermark: Date, now: Date): number {
  const expectedWatermark = boundaryAtOrBefore(frequency, now);
  return Math.max(0, expectedWatermark.getTime() - watermark.getTime());
}

/**
 * A window end later than now minus the settle delay: events staged just before it may not be
 * visible yet, so exporting it would move the watermark past events that are then never exported
 * (docs/exactly-once.md §2, the safe horizon).
 */
export class WindowEndNotSettledError extends DomainError {
  override readonly name = 'WindowEndNotSettledError';
  constructor(
    readonly windowEnd: Date,
    readonly latestAllowed: Date,
    what = 'window end',
  ) {
    super(
      `${what} ${windowEnd.toISOString()} is later than now minus the settle delay (${latestAllowed.toISOString()}): ` +
        'events staged before it may not be visible yet, and the watermark must never pass them; ' +
        `use an instant at or before ${latestAllowed.toISOString()}, or wait until ${windowEnd.toISOString()} is settled`,
    );
  }
}

/** The latest window end that may be exported at `now`: the safe horizon. */
export function latestSettledWindowEnd(now: Date, settleDelayMs: number): Date {
  return new Date(now.getTime() - settleDelayMs);
}

/** Refuse a window end later than the safe horizon (every path: exporter, dispatcher, CLI). */
export function assertWindowEndSettled(
  windowEnd: Date,
  now: Date,
  settleDelayMs: number,
  what?: string,
): void {
  const latest = latestSettledWindowEnd(now, settleDelayMs);
  if (windowEnd.getTime() > latest.getTime()) throw new WindowEndNotSettledError(windowEnd, latest, what);
}

/**
 * Whether a backfill's re-export of committed windows is not done: the watermark is below the
 * watermark before the backfill (`replayThrough`). Those windows are exported again whatever the
 * job's end: a window committed every 15 minutes ends after the latest boundary of a frequency
 * changed to daily since.
 */
export function replayPending(state: { watermark: Date; replayThrough?: Date | undefined }): boolean {
  return state.replayThrough !== undefined && state.watermark.getTime() < state.replayThrough.getTime();
}
