/**
 * Deployment configuration, read from CDK context (`cdk.json` or `-c key=value`)
 * with documented defaults (docs/operations.md "Configuration"). Context given on
 * the command line arrives as strings, so every value is parsed here once;
 * errors name the context key and the valid form.
 */

import {
  ConfigurationError,
  DEFAULT_SETTLE_DELAY_MINUTES,
  DEFAULT_STAGING_RETENTION_DAYS,
  STAGER_TIMEOUT_SECONDS,
} from '../lambdas/definitions.ts';
import { parseKmsKeyAllowlist } from '../lambdas/domain/kms-allowlist.ts';
import { MAX_SETTLE_DELAY_MINUTES, MIN_SETTLE_DELAY_MINUTES } from '../lambdas/domain/schedules.ts';

/**
 * The deployment's settings, one per CDK context key of the same name (docs/operations.md
 * "Configuration"). Also the stack's own props (S3EventExportStackProps): flat, every member
 * optional there with the default below.
 */
export interface ExportStackConfig {
  /**
   * Minutes after a window boundary at which its schedule fires.
   * @default 4 (DEFAULT_SETTLE_DELAY_MINUTES)
   */
  readonly settleDelayMinutes: number;
  /**
   * Days staged data is kept (staging bucket lifecycle); the data-at-risk alarm fires at half.
   * @default 14 (DEFAULT_STAGING_RETENTION_DAYS)
   */
  readonly stagingRetentionDays: number;
  /**
   * Full ARNs of the customer KMS keys the exporter role may use (via S3 only).
   * @default [] (no KMS permission at all)
   */
  readonly kmsKeyAllowlist: string[];
  /**
   * Where alarm notifications are e-mailed (an SNS subscription the recipient confirms).
   * @default undefined (no subscription; synthesis warns)
   */
  readonly alarmEmail: string | undefined;
  /**
   * Memory of the stager, MB.
   * @default 512
   */
  readonly stagerMemoryMb: number;
  /**
   * Memory of the compactor, MB. It reads app groups of 40% of its memory at once: more memory,
   * fewer GETs.
   * @default 2048
   */
  readonly compactorMemoryMb: number;
  /**
   * Memory of the dispatcher, MB.
   * @default 256
   */
  readonly dispatcherMemoryMb: number;
  /**
   * Memory of the exporter, MB (CPU scales with it: 1769 MB is one vCPU).
   * @default 2048
   */
  readonly exporterMemoryMb: number;
  /**
   * Memory of the connection-test and connection-sweep functions, MB.
   * @default 512
   */
  readonly connectionTestMemoryMb: number;
  /**
   * The exporter's timeout; a window that needs longer continues in the next invocation.
   * @default 15
   */
  readonly exporterTimeoutMinutes: number;
  /**
   * Visibility timeout of the job queue; at least the exporter's timeout.
   * @default 20
   */
  readonly jobVisibilityTimeoutMinutes: number;
  /**
   * Deliveries of one export job before it moves to the dead-letter queue.
   * @default 5
   */
  readonly jobMaxReceiveCount: number;
  /**
   * Upper bound of concurrent exporter invocations (SQS event source maximum concurrency, 2-1000).
   * @default 20
   */
  readonly exporterMaxConcurrency: number;
  /**
   * IAM resource pattern of customer roles the exporter role may assume (assume-role mode); '' disables it.
   * @default 'arn:aws:iam::*:role/*'
   */
  readonly assumeRoleArnPattern: string;
  /**
   * The fixed name of the exporter role that customers name in their bucket and key policies.
   * @default 's3-event-export-exporter'
   */
  readonly exporterRoleName: string;
  /**
   * IAM roles of operators allowed to take tagged sessions of the exporter role, so that
   * `s3-event-export connections test --exporter-role-arn` writes its probe exactly as the exporter
   * does.
   * @default [] (only the exporter and connection-test functions may)
   */
  readonly operatorRoleArns: string[];
  /**
   * Days Lambda logs are kept.
   * @default 90
   */
  readonly logRetentionDays: number;
  /**
   * Hours the Kinesis stream keeps records (24-168); also the stager's maximum record age. The
   * Lambda event source gives up on records older than 7 days (its maximumRecordAge limit), so a
   * longer stream retention would keep records no stager ever reads.
   * @default 24
   */
  readonly streamRetentionHours: number;
}

export const DEFAULT_CONFIG: ExportStackConfig = {
  settleDelayMinutes: DEFAULT_SETTLE_DELAY_MINUTES,
  stagingRetentionDays: DEFAULT_STAGING_RETENTION_DAYS,
  kmsKeyAllowlist: [],
  alarmEmail: undefined,
  stagerMemoryMb: 512,
  compactorMemoryMb: 2048,
  dispatcherMemoryMb: 256,
  exporterMemoryMb: 2048,
  connectionTestMemoryMb: 512,
  exporterTimeoutMinutes: 15,
  jobVisibilityTimeoutMinutes: 20,
  jobMaxReceiveCount: 5,
  exporterMaxConcurrency: 20,
  assumeRoleArnPattern: 'arn:aws:iam::*:role/*',
  exporterRoleName: 's3-event-export-exporter',
  operatorRoleArns: [],
  logRetentionDays: 90,
  streamRetentionHours: 24,
};

/** The configuration of stack props: each member given, or its default. */
export function configOf(props: Partial<ExportStackConfig>): ExportStackConfig {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const key of Object.keys(DEFAULT_CONFIG) as (keyof ExportStackConfig)[]) {
    if (props[key] !== undefined) config[key] = props[key];
  }
  return config as unknown as ExportStackConfig;
}

/** Every context key configFromContext reads: one per member of ExportStackConfig. */
export const CONFIG_CONTEXT_KEYS = Object.keys(DEFAULT_CONFIG) as readonly (keyof ExportStackConfig)[];

/** Context keys bin/app.ts reads besides the configuration: the stack's name and environment, cdk-nag. */
export const APP_CONTEXT_KEYS = ['stackName', 'account', 'region', 'nag'] as const;

/**
 * Keys the CDK sets itself: feature flags (`@aws-cdk/...` and other `@` namespaces, as in cdk.json),
 * `aws:cdk:...` settings of the CLI, cached lookups (`<provider>:<arguments>`, cdk.context.json),
 * and the notices acknowledged with `cdk acknowledge`.
 */
function isCdkContextKey(key: string): boolean {
  return key.startsWith('@') || key.includes(':') || key === 'acknowledged-issue-numbers';
}

/**
 * Refuse context keys nobody reads: a misspelt key (`-c settleDelayMinute=6`) would otherwise be
 * ignored and its default deployed. `keys` is `Object.keys(app.node.getAllContext())`.
 */
export function refuseUnknownContext(keys: Iterable<string>): void {
  const known: ReadonlySet<string> = new Set([...CONFIG_CONTEXT_KEYS, ...APP_CONTEXT_KEYS]);
  const unknown = [...keys].filter((key) => !known.has(key) && !isCdkContextKey(key));
  if (unknown.length === 0) return;
  throw new ConfigurationError(
    `unknown CDK context ${unknown.length === 1 ? 'key' : 'keys'} ${unknown.map((k) => JSON.stringify(k)).join(', ')}: ` +
      `the known keys are ${[...known].sort().join(', ')} (docs/operations.md, "Configuration"); ` +
      'fix the spelling or remove it from -c and cdk.json',
  );
}

/** CloudWatch Logs' allowed retention periods (days). */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/** The largest maximumRecordAge a Lambda Kinesis event source accepts (7 days): the stream retention's bound. */
export const MAX_STREAM_RETENTION_HOURS = 168;

/** The smallest retention that still holds a weekly window when its export runs, with the data-at-risk alarm at half. */
export const MIN_STAGING_RETENTION_DAYS = 14;

type Lookup = (key: string) => unknown;

function integer(lookup: Lookup, key: string, fallback: number, min: number, max: number): number {
  const raw = lookup(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigurationError(
      `context ${key} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

function text(lookup: Lookup, key: string, fallback: string): string {
  const raw = lookup(key);
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw !== 'string')
    throw new ConfigurationError(`context ${key} must be a string, got ${JSON.stringify(raw)}`);
  return raw.trim();
}

/** A JSON array, or a comma-separated string (the form `-c key=a,b` gives). */
function list(lookup: Lookup, key: string): string[] {
  const raw = lookup(key);
  if (raw === undefined || raw === null || raw === '') return [];
  if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) return raw;
  if (typeof raw === 'string') {
    const trimmed = raw.trim();
    if (trimmed.startsWith('[')) {
      try {
        return list(() => JSON.parse(trimmed) as unknown, key);
      } catch (error) {
        if (error instanceof ConfigurationError) throw error;
      }
    } else {
      return trimmed.split(',').map((s) => s.trim());
    }
  }
  throw new ConfigurationError(
    `context ${key} must be a list of strings (JSON array or comma-separated), got ${JSON.stringify(raw)}`,
  );
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const ROLE_ARN_PATTERN = /^arn:aws[a-z-]*:iam::(\d{12}|\*):role\/[\w+=,.@*/-]+$/;

function streamRetentionHours(lookup: Lookup): number {
  const hours = integer(lookup, 'streamRetentionHours', DEFAULT_CONFIG.streamRetentionHours, 24, 8760);
  if (hours > MAX_STREAM_RETENTION_HOURS) {
    throw new ConfigurationError(
      `context streamRetentionHours must be at most ${MAX_STREAM_RETENTION_HOURS} (7 days), got ${hours}: ` +
        "the stager's event source drops records older than 7 days, so a longer retention keeps records nobody stages",
    );
  }
  return hours;
}

/** Parse the deployment's context; `lookup` is `(key) => app.node.tryGetContext(key)`. */
export function configFromContext(lookup: Lookup): ExportStackConfig {
  const d = DEFAULT_CONFIG;
  const settleDelayMinutes = integer(
    lookup,
    'settleDelayMinutes',
    d.settleDelayMinutes,
    Math.max(MIN_SETTLE_DELAY_MINUTES, Math.ceil(STAGER_TIMEOUT_SECONDS / 60) + 1),
    MAX_SETTLE_DELAY_MINUTES,
  );
  const stagingRetentionDays = integer(
    lookup,
    'stagingRetentionDays',
    d.stagingRetentionDays,
    MIN_STAGING_RETENTION_DAYS,
    3650,
  );

  let kmsKeyAllowlist: string[];
  try {
    kmsKeyAllowlist = parseKmsKeyAllowlist(list(lookup, 'kmsKeyAllowlist').join(','));
  } catch (error) {
    throw new ConfigurationError(`context kmsKeyAllowlist: ${(error as Error).message}`, { cause: error });
  }

  const alarmEmail = text(lookup, 'alarmEmail', '') || undefined;
  if (alarmEmail && !EMAIL.test(alarmEmail)) {
    throw new ConfigurationError(
      `context alarmEmail must be an e-mail address, got ${JSON.stringify(alarmEmail)}`,
    );
  }

  const memory = (key: string, fallback: number) => integer(lookup, key, fallback, 128, 10240);
  const exporterTimeoutMinutes = integer(lookup, 'exporterTimeoutMinutes', d.exporterTimeoutMinutes, 5, 15);
  const jobVisibilityTimeoutMinutes = integer(
    lookup,
    'jobVisibilityTimeoutMinutes',
    Math.max(d.jobVisibilityTimeoutMinutes, exporterTimeoutMinutes),
    1,
    12 * 60,
  );
  if (jobVisibilityTimeoutMinutes < exporterTimeoutMinutes) {
    throw new ConfigurationError(
      `context jobVisibilityTimeoutMinutes (${jobVisibilityTimeoutMinutes}) must be at least exporterTimeoutMinutes (${exporterTimeoutMinutes}), or a running job is delivered twice`,
    );
  }

  const assumeRoleArnPattern = text(lookup, 'assumeRoleArnPattern', d.assumeRoleArnPattern);
  if (assumeRoleArnPattern && !ROLE_ARN_PATTERN.test(assumeRoleArnPattern)) {
    throw new ConfigurationError(
      `context assumeRoleArnPattern must be an IAM role ARN pattern such as arn:aws:iam::*:role/s3-export-*, or '' to disable assume-role mode, got ${JSON.stringify(assumeRoleArnPattern)}`,
    );
  }
  const exporterRoleName = text(lookup, 'exporterRoleName', d.exporterRoleName);
  if (!ROLE_NAME.test(exporterRoleName)) {
    throw new ConfigurationError(
      `context exporterRoleName must be an IAM role name (1-64 of letters, digits, +=,.@_-), got ${JSON.stringify(exporterRoleName)}`,
    );
  }

  const operatorRoleArns = [...new Set(list(lookup, 'operatorRoleArns').filter((arn) => arn !== ''))];
  const invalidRoles = operatorRoleArns.filter((arn) => !ROLE_ARN.test(arn));
  if (invalidRoles.length) {
    throw new ConfigurationError(
      `context operatorRoleArns must list IAM role ARNs (arn:aws:iam::<account>:role/<name>, no wildcards), got ${invalidRoles.map((a) => JSON.stringify(a)).join(', ')}`,
    );
  }

  const logRetentionDays = integer(lookup, 'logRetentionDays', d.logRetentionDays, 1, 3653);
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    throw new ConfigurationError(
      `context logRetentionDays must be one of ${LOG_RETENTION_DAYS.join(', ')}, got ${logRetentionDays}`,
    );
  }

  return {
    settleDelayMinutes,
    stagingRetentionDays,
    kmsKeyAllowlist,
    alarmEmail,
    stagerMemoryMb: memory('stagerMemoryMb', d.stagerMemoryMb),
    compactorMemoryMb: memory('compactorMemoryMb', d.compactorMemoryMb),
    dispatcherMemoryMb: memory('dispatcherMemoryMb', d.dispatcherMemoryMb),
    exporterMemoryMb: memory('exporterMemoryMb', d.exporterMemoryMb),
    connectionTestMemoryMb: memory('connectionTestMemoryMb', d.connectionTestMemoryMb),
    exporterTimeoutMinutes,
    jobVisibilityTimeoutMinutes,
    jobMaxReceiveCount: integer(lookup, 'jobMaxReceiveCount', d.jobMaxReceiveCount, 1, 1000),
    exporterMaxConcurrency: integer(lookup, 'exporterMaxConcurrency', d.exporterMaxConcurrency, 2, 1000),
    assumeRoleArnPattern,
    exporterRoleName,
    operatorRoleArns,
    logRetentionDays,
    streamRetentionHours: streamRetentionHours(lookup),
  };
}
