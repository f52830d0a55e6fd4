import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../lambdas/config.ts';
import { configFromContext, DEFAULT_CONFIG } from '../../lib/config.ts';

const from = (context: Record<string, unknown>) => configFromContext((key) => context[key]);

describe('deployment configuration from CDK context', () => {
  it('no context gives the documented defaults', () => {
    expect(from({})).toEqual(DEFAULT_CONFIG);
    expect(DEFAULT_CONFIG).toMatchObject({
      settleDelayMinutes: 4,
      stagingRetentionDays: 14,
      kmsKeyAllowlist: [],
      alarmEmail: undefined,
      exporterRoleName: 's3-event-export-exporter',
      assumeRoleArnPattern: 'arn:aws:iam::*:role/*',
      jobMaxReceiveCount: 5,
      jobVisibilityTimeoutMinutes: 20,
      exporterTimeoutMinutes: 15,
    });
  });

  it('accepts command-line strings (-c key=value) and cdk.json numbers alike', () => {
    expect(from({ settleDelayMinutes: '7', stagingRetentionDays: 21 })).toMatchObject({
      settleDelayMinutes: 7,
      stagingRetentionDays: 21,
    });
  });

  it('reads the KMS allowlist as a JSON array or a comma-separated string, de-duplicated', () => {
    const a = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const b = 'arn:aws:kms:us-east-1:444455556666:key/mrk-0123456789abcdef0123456789abcdef';
    expect(from({ kmsKeyAllowlist: [a, b] }).kmsKeyAllowlist).toEqual([a, b]);
    expect(from({ kmsKeyAllowlist: `${a}, ${b},${a}` }).kmsKeyAllowlist).toEqual([a, b]);
    expect(from({ kmsKeyAllowlist: JSON.stringify([b]) }).kmsKeyAllowlist).toEqual([b]);
  });

  it.each([
    [{ settleDelayMinutes: '1' }, /settleDelayMinutes must be a whole number from 2 to 14, got "1"/],
    [{ settleDelayMinutes: 15 }, /settleDelayMinutes must be a whole number from 2 to 14/],
    [{ stagingRetentionDays: '7' }, /stagingRetentionDays must be a whole number from 14/],
    [{ kmsKeyAllowlist: 'alias/customer-key' }, /kmsKeyAllowlist: .*not KMS key ARNs: "alias\/customer-key"/],
    [{ alarmEmail: 'not-an-address' }, /alarmEmail must be an e-mail address/],
    [{ exporterMemoryMb: '64' }, /exporterMemoryMb must be a whole number from 128 to 10240/],
    [
      { exporterTimeoutMinutes: 15, jobVisibilityTimeoutMinutes: 10 },
      /must be at least exporterTimeoutMinutes/,
    ],
    [{ assumeRoleArnPattern: 'arn:aws:s3:::bucket' }, /assumeRoleArnPattern must be an IAM role ARN pattern/],
    [{ exporterRoleName: 'has spaces' }, /exporterRoleName must be an IAM role name/],
    [{ operatorRoleArns: 'arn:aws:iam::*:role/*' }, /operatorRoleArns must list IAM role ARNs/],
    [{ logRetentionDays: '10' }, /logRetentionDays must be one of 1, 3, 5, 7, 14, 30/],
    [{ streamRetentionHours: '169' }, /streamRetentionHours must be at most 168 \(7 days\), got 169/],
    [{ streamRetentionHours: 8760 }, /event source drops records older than 7 days/],
  ])('refuses %j, naming the key and the valid form', (context, message) => {
    expect(() => from(context)).toThrow(ConfigurationError);
    expect(() => from(context)).toThrow(message);
  });

  it('streamRetentionHours up to 168 (the event source keeps records 7 days at most)', () => {
    expect(from({ streamRetentionHours: '168' }).streamRetentionHours).toBe(168);
  });

  it("'' disables assume-role mode", () => {
    expect(from({ assumeRoleArnPattern: '' }).assumeRoleArnPattern).toBe('');
  });
});
