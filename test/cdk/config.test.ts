import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../lambdas/config.ts';
import {
  APP_CONTEXT_KEYS,
  CONFIG_CONTEXT_KEYS,
  configFromContext,
  configOf,
  DEFAULT_CONFIG,
  refuseUnknownContext,
} from '../../lib/config.ts';

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

describe('unknown CDK context keys', () => {
  it('are refused, with the known keys listed', () => {
    const refuse = () => refuseUnknownContext(['settleDelayMinutes', 'typoKey', 'settleDelayMinute']);
    expect(refuse).toThrow(ConfigurationError);
    expect(refuse).toThrow(/unknown CDK context keys "typoKey", "settleDelayMinute": the known keys are /);
    expect(refuse).toThrow(
      /account, alarmEmail, assumeRoleArnPattern, .*settleDelayMinutes, .*streamRetentionHours/,
    );
  });

  it("accept every key the configuration and bin/app.ts read, cdk.json's and the CDK's own", () => {
    const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
      context: Record<string, unknown>;
    };
    const keys = [
      ...CONFIG_CONTEXT_KEYS,
      ...APP_CONTEXT_KEYS,
      ...Object.keys(cdkJson.context),
      'aws:cdk:enable-path-metadata',
      'aws:cdk:bundling-stacks',
      'availability-zones:account=111122223333:region=eu-west-1',
      'acknowledged-issue-numbers',
    ];
    expect(() => refuseUnknownContext(keys)).not.toThrow();
  });

  it('the known keys are exactly those configFromContext reads', () => {
    const asked = new Set<string>();
    configFromContext((key) => {
      asked.add(key);
      return undefined;
    });
    expect(new Set(CONFIG_CONTEXT_KEYS)).toEqual(asked);
  });
});

describe('the stack props', () => {
  it('are flat, and each absent member takes its default', () => {
    expect(configOf({ exporterMemoryMb: 4096, alarmEmail: undefined })).toEqual({
      ...DEFAULT_CONFIG,
      exporterMemoryMb: 4096,
    });
    expect(configOf({})).toEqual(DEFAULT_CONFIG);
  });
});
