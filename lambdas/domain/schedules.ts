/**
 * The EventBridge Scheduler schedules of the three frequencies, defined once for
 * the CDK stack (which creates them) and the dispatcher (which receives their
 * input). Pure: no CDK or SDK import.
 *
 * Each schedule fires `settleDelayMinutes` after a window boundary of its
 * frequency (windows.ts): late-staged events are in by then (docs/exactly-once.md
 * §2), and flooring the tick's *scheduled* time to the frequency's boundary
 * (`windowEndForTick`) gives the window end, the same on every retry.
 */
import {
  COMPACTION_DELAY_SECONDS,
  FREQUENCIES,
  type Frequency,
  STAGING_SLOT_MINUTES,
} from '../definitions.ts';

/** EventBridge Scheduler fills this in with the tick's scheduled time (ISO-8601, UTC). */
export const SCHEDULED_TIME_PLACEHOLDER = '<aws.scheduler.scheduled-time>';

/** Schedules are evaluated in UTC: window boundaries are UTC (docs/product.md#schedules-and-windows). */
export const SCHEDULE_TIME_ZONE = 'UTC';

/**
 * The input a schedule sends to the dispatcher. In the schedule definition
 * `scheduledTime` is the placeholder; the dispatcher receives the instant.
 */
export interface ScheduleInput {
  frequency: Frequency;
  /** ISO-8601 instant at which the tick was scheduled (not when it ran). */
  scheduledTime: string;
}

/** The input to configure on the schedule of `frequency`. */
export function scheduleInput(frequency: Frequency): ScheduleInput {
  return { frequency, scheduledTime: SCHEDULED_TIME_PLACEHOLDER };
}

/**
 * The 15-minute schedule must fire before the next boundary, and once the window's last staging
 * slot may be compacted (its end plus the compaction delay).
 */
export const MIN_SETTLE_DELAY_MINUTES = Math.ceil(COMPACTION_DELAY_SECONDS / 60);
export const MAX_SETTLE_DELAY_MINUTES = 14;

function assertSettleDelay(settleDelayMinutes: number): void {
  if (
    !Number.isInteger(settleDelayMinutes) ||
    settleDelayMinutes < MIN_SETTLE_DELAY_MINUTES ||
    settleDelayMinutes > MAX_SETTLE_DELAY_MINUTES
  ) {
    throw new RangeError(
      `settleDelayMinutes must be a whole number of minutes from ${MIN_SETTLE_DELAY_MINUTES} to ${MAX_SETTLE_DELAY_MINUTES} ` +
        `(no shorter than the staging compaction delay, shorter than the 15-minute period), got ${settleDelayMinutes}`,
    );
  }
}

/**
 * The EventBridge Scheduler cron expression of `frequency` (fields: minutes hours
 * day-of-month month day-of-week year; evaluated in `SCHEDULE_TIME_ZONE`).
 *
 * With a 5-minute settle delay: FIFTEEN_MINUTES `cron(5,20,35,50 * * * ? *)`,
 * DAILY `cron(5 0 * * ? *)` (00:05 UTC), WEEKLY `cron(5 0 ? * MON *)` (Monday 00:05 UTC).
 */
export function scheduleExpression(frequency: Frequency, settleDelayMinutes: number): string {
  assertSettleDelay(settleDelayMinutes);
  const m = settleDelayMinutes;
  switch (frequency) {
    case 'FIFTEEN_MINUTES':
      return `cron(${[m, m + 15, m + 30, m + 45].join(',')} * * * ? *)`;
    case 'DAILY':
      return `cron(${m} 0 * * ? *)`;
    case 'WEEKLY':
      return `cron(${m} 0 ? * MON *)`;
  }
}

export interface ScheduleDefinition {
  frequency: Frequency;
  expression: string;
  timeZone: typeof SCHEDULE_TIME_ZONE;
  input: ScheduleInput;
}

/** One schedule per frequency, in `FREQUENCIES` order. */
export function scheduleDefinitions(settleDelayMinutes: number): ScheduleDefinition[] {
  return FREQUENCIES.map((frequency) => ({
    frequency,
    expression: scheduleExpression(frequency, settleDelayMinutes),
    timeZone: SCHEDULE_TIME_ZONE,
    input: scheduleInput(frequency),
  }));
}

/** When the schedule of a window ending at `boundary` fires: the boundary plus the settle delay. */
export function scheduledTimeForBoundary(boundary: Date, settleDelayMinutes: number): Date {
  return new Date(boundary.getTime() + settleDelayMinutes * 60_000);
}

/**
 * The compaction schedule: once per staging slot, as soon as the slot may be compacted (its end
 * plus the compaction delay, rounded up to a minute) — before the exports of windows ending there.
 * With 15-minute slots and a 2-minute delay: `cron(2,17,32,47 * * * ? *)`.
 */
export function compactionScheduleExpression(): string {
  const m = Math.ceil(COMPACTION_DELAY_SECONDS / 60);
  const starts: number[] = [];
  for (let minute = m; minute < 60 + m; minute += STAGING_SLOT_MINUTES) starts.push(minute % 60);
  return `cron(${starts.sort((a, b) => a - b).join(',')} * * * ? *)`;
}

/** The compaction schedule's input; the scheduler fills in the scheduled time. */
export const COMPACTION_SCHEDULE_INPUT = { scheduledTime: SCHEDULED_TIME_PLACEHOLDER } as const;
