/**
 * Runtime configuration of the functions and the CLI, parsed once from the
 * environment (set by the CDK stack, the CLI flags, or the local bootstrap).
 * Errors name the variable and the valid form.
 */
import {
  ConfigurationError,
  DEFAULT_SETTLE_DELAY_MINUTES,
  DEFAULT_STAGING_RETENTION_DAYS,
  ENV,
} from './definitions.ts';
import { InvalidKmsKeyAllowlistError, parseKmsKeyAllowlist } from './domain/kms-allowlist.ts';
import { DEFAULT_PART_SIZE_BYTES } from './usecases/export-window.ts';

export interface RuntimeConfig {
  region: string;
  tables: { connections: string; exportState: string; stagingLedger: string };
  stagingBucket: string;
  jobQueueUrl?: string;
  settleDelayMinutes: number;
  stagingRetentionDays: number;
  kmsKeyAllowlist: string[];
  exporterRoleArn?: string;
  partSizeBytes: number;
}

export { ConfigurationError };

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigurationError(`environment variable ${name} is not set`);
  return value;
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigurationError(`environment variable ${name} must be a positive number, got "${raw}"`);
  }
  return value;
}

/** Full key ARNs only: an alias would name a different key over time, and IAM cannot grant by alias. */
function kmsKeyAllowlist(env: NodeJS.ProcessEnv): string[] {
  try {
    return parseKmsKeyAllowlist(env[ENV.kmsKeyAllowlist]);
  } catch (error) {
    if (error instanceof InvalidKmsKeyAllowlistError)
      throw new ConfigurationError(error.message, { cause: error });
    throw error;
  }
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const settleDelayMinutes = positiveNumber(env, ENV.settleDelayMinutes, DEFAULT_SETTLE_DELAY_MINUTES);
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    tables: {
      connections: required(env, ENV.connectionsTable),
      exportState: required(env, ENV.exportStateTable),
      stagingLedger: required(env, ENV.stagingLedgerTable),
    },
    stagingBucket: required(env, ENV.stagingBucket),
    jobQueueUrl: env[ENV.jobQueueUrl] || undefined,
    settleDelayMinutes,
    stagingRetentionDays: positiveNumber(env, ENV.stagingRetentionDays, DEFAULT_STAGING_RETENTION_DAYS),
    kmsKeyAllowlist: kmsKeyAllowlist(env),
    exporterRoleArn: env[ENV.exporterRoleArn] || undefined,
    partSizeBytes: positiveNumber(env, ENV.partSizeBytes, DEFAULT_PART_SIZE_BYTES),
  };
}
