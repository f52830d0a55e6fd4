/**
 * What the operator's runbooks and the CLI need from a deployment: the dead-letter queues by ARN
 * (for `aws sqs start-message-move-task --source-arn`), the settings the CLI must not guess, and a
 * synth-time warning when alarms have no destination.
 */
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { synthesize } from './synth.ts';

const NO_DESTINATION = Match.stringLikeRegexp('no alarmEmail: .*alarms reach nobody');

describe('a deploy without alarmEmail', () => {
  const s = synthesize({ settleDelayMinutes: 9, stagingRetentionDays: 30 });

  it('warns at synth time that alarms reach nobody, and how to fix it', () => {
    Annotations.fromStack(s.stack).hasWarning('/S3EventExport', NO_DESTINATION);
    const warning = Annotations.fromStack(s.stack).findWarning('*', NO_DESTINATION)[0];
    expect(String(warning?.entry.data)).toContain('-c alarmEmail=');
  });

  it('outputs the DLQ ARNs and URLs the runbooks use, and the deployed settle delay, retention and allowlist', () => {
    const { stack, template, arnOf } = s;
    template.hasOutput('JobDeadLetterQueueArn', { Value: arnOf(stack.export.jobDeadLetterQueue) });
    template.hasOutput('StagerFailureQueueArn', { Value: arnOf(stack.ingest.failureQueue) });
    template.hasOutput('ScheduleDeadLetterQueueArn', { Value: arnOf(stack.export.scheduleDeadLetterQueue) });
    for (const name of ['StagerFailureQueueUrl', 'ScheduleDeadLetterQueueUrl', 'JobDeadLetterQueueUrl'])
      template.hasOutput(name, {});
    template.hasOutput('SettleDelayMinutes', { Value: '9' });
    template.hasOutput('StagingRetentionDays', { Value: '30' });
    template.hasOutput('KmsKeyAllowlist', { Value: '-' });
    template.hasOutput('Region', { Value: { Ref: 'AWS::Region' } });
  });
});

describe('a deploy with alarmEmail', () => {
  it('does not warn', () => {
    const s = synthesize({ alarmEmail: 'oncall@example.com' });
    Annotations.fromStack(s.stack).hasNoWarning('*', NO_DESTINATION);
  });
});
