/**
 * Staged data expires after the staging retention. Pure functions of times (no storage layout):
 * which part of a window may already have expired when it is exported (a gap the manifest and
 * the state must state), and when unexported data is at risk of expiring (the data-at-risk alarm).
 */
import type { Frequency } from '../definitions.ts';
import { periodMs } from './windows.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Margin added to the expiry cutoff: staged data a little younger than the retention may still
 * vanish while the window is exported (an export runs up to 15 minutes; clocks differ), so it is
 * reported as possibly lost rather than claimed.
 */
export const EXPIRY_MARGIN_MS = HOUR_MS;

/** Why part of a window may hold fewer events than were received. */
export const GAP_REASONS = {
  stagingRetentionExpired: 'STAGING_RETENTION_EXPIRED',
} as const;
export type GapReason = (typeof GAP_REASONS)[keyof typeof GAP_REASONS];

/** A time range of a window whose events may be missing from the export, and why. */
export interface WindowGap {
  /** ISO instant, inclusive. */
  from: string;
  /** ISO instant, exclusive. */
  to: string;
  reason: GapReason;
}

/** The stage time before which staged data may already be gone at `now`. */
export function expiryCutoff(now: Date, stagingRetentionMs: number, marginMs = EXPIRY_MARGIN_MS): Date {
  return new Date(now.getTime() - stagingRetentionMs + marginMs);
}

/**
 * The part of [windowStart, windowEnd) whose staged data may have expired before this export
 * (`now`): from the window start to the expiry cutoff. Undefined when the whole window is still
 * held. How many events it held is unknown once they are gone.
 */
export function expiredGap(
  windowStart: Date,
  windowEnd: Date,
  now: Date,
  stagingRetentionMs: number,
  marginMs = EXPIRY_MARGIN_MS,
): WindowGap | undefined {
  const cutoff = expiryCutoff(now, stagingRetentionMs, marginMs).getTime();
  if (windowStart.getTime() >= cutoff) return undefined;
  const to = Math.min(cutoff, windowEnd.getTime());
  if (to <= windowStart.getTime()) return undefined;
  return {
    from: windowStart.toISOString(),
    to: new Date(to).toISOString(),
    reason: GAP_REASONS.stagingRetentionExpired,
  };
}

/** Milliseconds a gap covers. */
export function gapMs(gap: WindowGap): number {
  return Date.parse(gap.to) - Date.parse(gap.from);
}

/**
 * How long before its expiry unexported data should raise the alarm: two days (time to act), or
 * two periods for a frequency whose next chance to export is that far away.
 */
export function dataAtRiskLeadMs(frequency: Frequency): number {
  return Math.max(2 * DAY_MS, 2 * periodMs(frequency));
}

/**
 * Age of the oldest unexported staged data above which a connection is at risk. Normally the
 * retention minus the lead time; never below what an on-time connection reaches at its tick (one
 * period, the settle delay and an hour of tick lateness), or every healthy connection would be
 * "at risk" when the retention is short next to the period (a weekly connection, 14 days).
 */
export function dataAtRiskAgeMs(
  frequency: Frequency,
  stagingRetentionMs: number,
  settleDelayMs: number,
): number {
  const onTime = periodMs(frequency) + settleDelayMs + HOUR_MS;
  return Math.max(stagingRetentionMs - dataAtRiskLeadMs(frequency), onTime);
}

/**
 * Age at `now` of the oldest staged data a connection has not exported: data with stage time at
 * or after `exportedUntil` (its watermark, or where a new connection starts). Larger than the
 * retention when some has already expired.
 */
export function unexportedDataAgeMs(exportedUntil: Date, now: Date): number {
  return Math.max(0, now.getTime() - exportedUntil.getTime());
}
