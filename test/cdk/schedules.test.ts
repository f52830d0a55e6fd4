import { beforeAll, describe, expect, it } from 'vitest';
import { FREQUENCIES } from '../../lambdas/definitions.ts';
import { scheduleExpression } from '../../lambdas/domain/schedules.ts';
import { type Synthesized, synthesize } from './synth.ts';

let s: Synthesized;
let slower: Synthesized;
beforeAll(() => {
  s = synthesize();
  slower = synthesize({ settleDelayMinutes: '8' });
});

const scheduleOf = (x: Synthesized, frequency: (typeof FREQUENCIES)[number]) =>
  x.template.toJSON().Resources[x.logicalId(x.stack.export.schedules[frequency])].Properties;

describe('EventBridge Scheduler schedules', () => {
  it('compaction fires once per staging slot, 2 minutes after it ends, invoking the compactor with its scheduled time', () => {
    const resources = s.template.toJSON().Resources as Record<
      string,
      { Type: string; Properties: Record<string, unknown> }
    >;
    const compaction = Object.values(resources).find(
      (r) => r.Type === 'AWS::Scheduler::Schedule' && JSON.stringify(r.Properties).includes('compaction'),
    )!;
    expect(compaction.Properties.ScheduleExpression).toBe('cron(2,17,32,47 * * * ? *)');
    const target = compaction.Properties.Target as { Arn: unknown; Input: string };
    expect(target.Arn).toEqual(s.arnOf(s.stack.compaction.compactor.function));
    expect(JSON.parse(target.Input)).toEqual({ scheduledTime: '<aws.scheduler.scheduled-time>' });
  });

  it.each([
    ['FIFTEEN_MINUTES', 'cron(4,19,34,49 * * * ? *)'],
    ['DAILY', 'cron(4 0 * * ? *)'],
    ['WEEKLY', 'cron(4 0 ? * MON *)'],
  ] as const)('%s fires at %s UTC, 4 minutes after each boundary', (frequency, expression) => {
    const schedule = scheduleOf(s, frequency);
    expect(schedule.ScheduleExpression).toBe(expression);
    expect(schedule.ScheduleExpressionTimezone).toBe('UTC');
    expect(schedule.State).toBe('ENABLED');
  });

  it.each(FREQUENCIES)(
    '%s: flexible time window OFF (the window end comes from the scheduled time)',
    (frequency) => {
      expect(scheduleOf(s, frequency).FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
    },
  );

  it.each(FREQUENCIES)(
    '%s invokes the dispatcher with its frequency and <aws.scheduler.scheduled-time>, retries, then its DLQ',
    (frequency) => {
      const target = scheduleOf(s, frequency).Target;
      expect(target.Arn).toEqual(s.arnOf(s.stack.export.dispatcher.function));
      expect(JSON.parse(target.Input)).toEqual({
        frequency,
        scheduledTime: '<aws.scheduler.scheduled-time>',
      });
      expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 3600 });
      expect(target.DeadLetterConfig).toEqual({ Arn: s.arnOf(s.stack.export.scheduleDeadLetterQueue) });
      expect(target.RoleArn).toEqual(s.arnOf(s.stack.export.node.findChild('ScheduleRole')));
    },
  );

  it.each(FREQUENCIES)('%s follows the settleDelayMinutes context', (frequency) => {
    expect(scheduleOf(slower, frequency).ScheduleExpression).toBe(scheduleExpression(frequency, 8));
    expect(
      slower.template.toJSON().Resources[slower.logicalId(slower.stack.export.dispatcher.function)].Properties
        .Environment.Variables.SETTLE_DELAY_MINUTES,
    ).toBe('8');
  });
});
