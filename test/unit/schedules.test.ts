import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTLE_DELAY_MINUTES, FREQUENCIES, type Frequency } from '../../lambdas/definitions.ts';
import {
  SCHEDULED_TIME_PLACEHOLDER,
  type ScheduleInput,
  scheduleDefinitions,
  scheduledTimeForBoundary,
  scheduleExpression,
  scheduleInput,
} from '../../lambdas/domain/schedules.ts';
import { boundariesBetween, boundaryAtOrBefore, windowEndForTick } from '../../lambdas/domain/windows.ts';

const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Just enough of EventBridge Scheduler's cron(min hour dom month dow year) to evaluate our expressions in UTC. */
function cronMatches(expression: string, at: Date): boolean {
  const fields = /^cron\((.*)\)$/.exec(expression)?.[1]?.split(' ');
  if (fields?.length !== 6) throw new Error(`not a 6-field cron expression: ${expression}`);
  const [minute, hour, dayOfMonth, month, dayOfWeek, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const field = (spec: string, value: number | string) =>
    spec === '*' || spec === '?' || spec.split(',').includes(String(value));
  return (
    at.getUTCSeconds() === 0 &&
    at.getUTCMilliseconds() === 0 &&
    field(minute, at.getUTCMinutes()) &&
    field(hour, at.getUTCHours()) &&
    field(dayOfMonth, at.getUTCDate()) &&
    field(month, at.getUTCMonth() + 1) &&
    field(dayOfWeek, DAYS[at.getUTCDay()] as string) &&
    field(year, at.getUTCFullYear())
  );
}

/** Every minute in [from, to) at which the cron expression fires. */
function fireTimes(expression: string, from: Date, to: Date): Date[] {
  const out: Date[] = [];
  for (let t = from.getTime(); t < to.getTime(); t += 60_000) {
    if (cronMatches(expression, new Date(t))) out.push(new Date(t));
  }
  return out;
}

const at = (iso: string) => new Date(iso);

describe('schedule expressions', () => {
  it('with a 5-minute settle delay: :05/:20/:35/:50, daily 00:05 UTC, Monday 00:05 UTC', () => {
    // The default is 4: a 15-minute connection gets each event within 20 minutes of its arrival.
    expect(DEFAULT_SETTLE_DELAY_MINUTES).toBe(4);
    expect(scheduleExpression('FIFTEEN_MINUTES', 5)).toBe('cron(5,20,35,50 * * * ? *)');
    expect(scheduleExpression('DAILY', 5)).toBe('cron(5 0 * * ? *)');
    expect(scheduleExpression('WEEKLY', 5)).toBe('cron(5 0 ? * MON *)');
  });

  it('are computed from the settle delay', () => {
    expect(scheduleExpression('FIFTEEN_MINUTES', 7)).toBe('cron(7,22,37,52 * * * ? *)');
    expect(scheduleExpression('DAILY', 7)).toBe('cron(7 0 * * ? *)');
    expect(scheduleExpression('WEEKLY', 7)).toBe('cron(7 0 ? * MON *)');
  });

  it.each([0, 1, 1.5, 15, 60, Number.NaN])(
    'refuse a settle delay of %s minutes, naming the valid range',
    (m) => {
      expect(() => scheduleExpression('DAILY', m)).toThrow(
        /settleDelayMinutes must be a whole number.*2 to 14/,
      );
    },
  );

  it('one definition per frequency, in UTC, with the frequency and the scheduled-time placeholder as input', () => {
    const defs = scheduleDefinitions(5);
    expect(defs.map((d) => d.frequency)).toEqual([...FREQUENCIES]);
    for (const d of defs) {
      expect(d.timeZone).toBe('UTC');
      expect(d.expression).toBe(scheduleExpression(d.frequency, 5));
      expect(d.input).toEqual({ frequency: d.frequency, scheduledTime: '<aws.scheduler.scheduled-time>' });
    }
  });

  it('the input serializes to the JSON the dispatcher parses', () => {
    const input: ScheduleInput = scheduleInput('WEEKLY');
    expect(JSON.parse(JSON.stringify(input))).toEqual({
      frequency: 'WEEKLY',
      scheduledTime: SCHEDULED_TIME_PLACEHOLDER,
    });
  });
});

describe('schedule ticks and window ends', () => {
  // Two weeks from a Sunday (2024-03-03) so both weekly boundaries and a month/day rollover are covered.
  const from = at('2024-03-03T00:00:00Z');
  const to = at('2024-03-17T00:30:00Z');

  it.each(FREQUENCIES.map((f) => [f] as [Frequency]))(
    '%s fires exactly once per window boundary, settle delay after it',
    (frequency) => {
      for (const settle of [2, 5, 14]) {
        const fired = fireTimes(scheduleExpression(frequency, settle), from, to);
        const expected = boundariesBetween(frequency, new Date(from.getTime() - 1), to)
          .map((b) => scheduledTimeForBoundary(b, settle))
          .filter((t) => t.getTime() < to.getTime());
        expect(fired.map((d) => d.toISOString())).toEqual(expected.map((d) => d.toISOString()));
        expect(fired.length).toBeGreaterThan(0);
      }
    },
  );

  it.each(FREQUENCIES.map((f) => [f] as [Frequency]))(
    'flooring a %s tick’s scheduled time with windowEndForTick gives the boundary it follows',
    (frequency) => {
      const fired = fireTimes(scheduleExpression(frequency, 5), from, to);
      for (const scheduledTime of fired) {
        const windowEnd = windowEndForTick(frequency, scheduledTime);
        expect(windowEnd.getTime()).toBe(scheduledTime.getTime() - 5 * 60_000);
        expect(boundaryAtOrBefore(frequency, windowEnd).getTime()).toBe(windowEnd.getTime());
      }
    },
  );

  it('a weekly tick fires on Monday 00:05 UTC and stands for the window ending Monday 00:00', () => {
    const fired = fireTimes(scheduleExpression('WEEKLY', 5), from, to);
    expect(fired.map((d) => d.toISOString())).toEqual([
      '2024-03-04T00:05:00.000Z',
      '2024-03-11T00:05:00.000Z',
    ]);
    expect(windowEndForTick('WEEKLY', at('2024-03-11T00:05:00Z')).toISOString()).toBe(
      '2024-03-11T00:00:00.000Z',
    );
  });
});
