/**
 * What went wrong with a connection's bucket, key or role, in words a customer can act on
 * (docs/product.md#test-connection, #isolation). Maps the typed errors of
 * lambdas/domain/errors.ts — which the adapters translate the AWS SDK's errors into
 * (adapters/aws-errors.ts) — to a code, the problem and its fix; it reads no SDK error shape.
 *
 * Messages never contain secrets (external ids, keys, credentials) or event data: error
 * messages are never copied, only the bucket region and the ARNs the typed errors carry.
 */
import { type FieldError, InvalidConnectionError } from './connection.ts';
import {
  BucketNotFoundError,
  BucketWrongRegionError,
  DestinationAccessDeniedError,
  DestinationError,
  DestinationThrottledError,
  InvalidPgpKeyError,
  KmsKeyDisabledError,
  KmsKeyNotFoundError,
} from './errors.ts';
import {
  assumeRolePermissionsPolicy,
  assumeRoleTrustPolicy,
  bucketPolicyStatement,
  EXTERNAL_ID_PLACEHOLDER,
  kmsKeyPolicyStatement,
  type PolicySubject,
} from './policies.ts';

/** What is wrong with a connection, as recorded on its export state and shown to operators. */
export interface ConnectionDiagnosis {
  /** Stable code, e.g. BUCKET_POLICY_MISSING, INVALID_CONNECTION, KMS_KEY_NOT_ALLOWLISTED. */
  code: string;
  /** What is wrong and how to fix it, in words a customer can act on. No secrets, no event data. */
  message: string;
  at: string;
  windowEnd?: string;
}

export const DIAGNOSIS_CODES = [
  'WRONG_REGION',
  'BUCKET_NOT_FOUND',
  'BUCKET_POLICY_MISSING',
  'BUCKET_OWNER_MISMATCH',
  'ACCESS_DENIED',
  'ASSUME_ROLE_DENIED',
  'EXPORTER_ROLE_UNAVAILABLE',
  'KMS_ACCESS_DENIED',
  'BUCKET_KMS_KEY_DENIED',
  'KMS_KEY_DISABLED',
  'KMS_KEY_NOT_FOUND',
  'KMS_KEY_NOT_ALLOWLISTED',
  'INVALID_PGP_KEY',
  'INVALID_CONNECTION',
  'THROTTLED',
  'SLOW_DOWN',
  'SERVICE_UNAVAILABLE',
  'UNKNOWN',
] as const;
export type DiagnosisCode = (typeof DIAGNOSIS_CODES)[number];

export interface DiagnosisContext {
  connection: PolicySubject & { bucketOwnerAccountId?: string | undefined };
  /** The stable exporter role; absent locally. */
  exporterRoleArn?: string | undefined;
  at: Date;
  windowEnd?: Date | undefined;
}

export interface Explanation {
  code: DiagnosisCode;
  /** What is wrong. */
  problem: string;
  /** What to do about it (a statement to add, a field to change), when there is something to do. */
  fix?: string;
  /** Retrying later may succeed without anyone changing anything. */
  transient: boolean;
}

const EXPORTER_ROLE_PLACEHOLDER = '<exporter role ARN: the stack output ExporterRoleArn>';

/** Whether retrying the same call later may succeed (throttling, 5xx, network, expired session). */
export function isTransient(error: unknown): boolean {
  return error instanceof DestinationError && error.transient;
}

function json(value: unknown): string {
  return JSON.stringify(value);
}

function roleOf(context: DiagnosisContext): string {
  return context.exporterRoleArn ?? EXPORTER_ROLE_PLACEHOLDER;
}

function kmsStatementFix(context: DiagnosisContext): string {
  return `add this statement to the key policy of ${context.connection.kmsKeyArn}: ${json(kmsKeyPolicyStatement(context.connection, roleOf(context)))}`;
}

function writeAccessFix(context: DiagnosisContext): string {
  const c = context.connection;
  if (c.assumeRoleArn) {
    return `attach this policy to the role ${c.assumeRoleArn}: ${json(assumeRolePermissionsPolicy(c))}`;
  }
  return `add this statement to the bucket policy of ${c.bucketName}: ${json(bucketPolicyStatement(c, roleOf(context)))}`;
}

/** Classify a typed destination error (or another of ours) for one connection; never throws. */
export function explain(error: unknown, context: DiagnosisContext): Explanation {
  const c = context.connection;
  // Our own typed refusals carry a message that already names the field and the fix.
  if (error instanceof InvalidPgpKeyError) {
    return { code: 'INVALID_PGP_KEY', problem: error.message, transient: false };
  }
  if (error instanceof InvalidConnectionError) {
    return { code: 'INVALID_CONNECTION', problem: error.message, transient: false };
  }
  if (!(error instanceof DestinationError)) return unknownFailure(error, context);

  if (error instanceof DestinationThrottledError) {
    return error.slowDown
      ? {
          code: 'SLOW_DOWN',
          problem: `S3 asked us to slow down writing to bucket ${c.bucketName} (SlowDown)`,
          fix: 'nothing to change: the export is retried with backoff',
          transient: true,
        }
      : {
          code: 'THROTTLED',
          problem: `AWS throttled a request for bucket ${c.bucketName} (${error.code || error.status})`,
          fix: 'nothing to change: the export is retried with backoff',
          transient: true,
        };
  }
  if (error instanceof DestinationAccessDeniedError) return accessDenied(error, context);
  if (error instanceof BucketWrongRegionError) {
    const actual = error.bucketRegion;
    return {
      code: 'WRONG_REGION',
      problem: actual
        ? `bucket ${c.bucketName} is in ${actual}, not in ${c.bucketRegion}`
        : `bucket ${c.bucketName} is not in ${c.bucketRegion}`,
      fix: actual
        ? `set bucketRegion to ${actual}${c.kmsKeyArn ? ` and use a KMS key in ${actual}` : ''}`
        : `set bucketRegion to the bucket's region (aws s3api get-bucket-location --bucket ${c.bucketName})`,
      transient: false,
    };
  }
  if (error instanceof BucketNotFoundError) {
    return {
      code: 'BUCKET_NOT_FOUND',
      problem: `bucket ${c.bucketName} does not exist`,
      fix: `create it in ${c.bucketRegion}, or correct bucketName`,
      transient: false,
    };
  }
  if (error instanceof KmsKeyDisabledError) return kmsKeyDisabled(context);
  if (error instanceof KmsKeyNotFoundError) {
    return {
      code: 'KMS_KEY_NOT_FOUND',
      problem: `KMS key ${c.kmsKeyArn} does not exist in ${c.bucketRegion}`,
      fix: `correct kmsKeyArn (a key in ${c.bucketRegion}, by ARN), then ${kmsStatementFix(context)}`,
      transient: false,
    };
  }
  if (error.transient) {
    return {
      code: 'SERVICE_UNAVAILABLE',
      problem: `a temporary AWS or network failure (${error.code || error.status || 'no response'})`,
      fix: 'nothing to change: the export is retried',
      transient: true,
    };
  }
  return unknownFailure(error, context);
}

/** The diagnosis of a disabled KMS key (also what "test connection" reports for a key DescribeKey shows disabled). */
export function kmsKeyDisabled(context: DiagnosisContext): Explanation {
  const c = context.connection;
  return {
    code: 'KMS_KEY_DISABLED',
    problem: `KMS key ${c.kmsKeyArn} is disabled or pending deletion`,
    fix: `enable it (aws kms enable-key --key-id ${c.kmsKeyArn}) or cancel its deletion (aws kms cancel-key-deletion), or set another kmsKeyArn`,
    transient: false,
  };
}

/** An error of no known kind: its code, HTTP status and request id, never its message (it may quote data). */
function unknownFailure(error: unknown, context: DiagnosisContext): Explanation {
  const typed = error instanceof DestinationError ? error : undefined;
  const detail = [
    typed?.code || (error instanceof Error ? error.name : '') || 'Error',
    typed?.status ? `HTTP ${typed.status}` : undefined,
    typed?.requestId ? `request id ${typed.requestId}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return {
    code: 'UNKNOWN',
    problem: `unexpected failure writing to bucket ${context.connection.bucketName} (${detail})`,
    transient: false,
  };
}

function accessDenied(error: DestinationAccessDeniedError, context: DiagnosisContext): Explanation {
  const c = context.connection;
  const { refused, resourceArn, blames } = error.facts;
  if (refused === 'STS') {
    const customerRole = c.assumeRoleArn && (resourceArn ? resourceArn === c.assumeRoleArn : true);
    if (customerRole) {
      return {
        code: 'ASSUME_ROLE_DENIED',
        problem: `our exporter role may not assume the role ${c.assumeRoleArn} with this connection's external id`,
        fix: `set the trust policy of ${c.assumeRoleArn} to ${json(assumeRoleTrustPolicy(c, roleOf(context), EXTERNAL_ID_PLACEHOLDER))} (with the externalId you gave us), and check that externalId on the connection matches`,
        transient: false,
      };
    }
    return {
      code: 'EXPORTER_ROLE_UNAVAILABLE',
      problem: 'the export function could not assume the exporter role with a connection session tag',
      fix: "operator: redeploy the stack (its exporter role trusts the function's role for sts:AssumeRole and sts:TagSession)",
      transient: false,
    };
  }
  if (refused === 'KMS' && c.kmsKeyArn) {
    return {
      code: 'KMS_ACCESS_DENIED',
      problem: `our exporter role may not use KMS key ${c.kmsKeyArn} through S3`,
      fix: kmsStatementFix(context),
      transient: false,
    };
  }
  if (refused === 'KMS') return bucketDefaultKeyDenied(resourceArn, context);
  if (blames === 'caller-policy') {
    return {
      code: 'ACCESS_DENIED',
      problem: `a policy on our side (or an organization policy) denies writing to bucket ${c.bucketName}`,
      fix:
        'operator: check the exporter role policy and service control policies; the customer may also have to allow it: ' +
        writeAccessFix(context),
      transient: false,
    };
  }
  if (c.bucketOwnerAccountId && blames !== 'resource-policy') {
    return {
      code: 'BUCKET_OWNER_MISMATCH',
      problem: `access denied writing to bucket ${c.bucketName} as account ${c.bucketOwnerAccountId}'s bucket: either the bucket is not owned by ${c.bucketOwnerAccountId}, or its policy does not allow our exporter role`,
      fix: `check bucketOwnerAccountId (the bucket owner's 12-digit account id), and ${writeAccessFix(context)}`,
      transient: false,
    };
  }
  if (c.assumeRoleArn) {
    return {
      code: 'ACCESS_DENIED',
      problem: `the role ${c.assumeRoleArn} may not write to bucket ${c.bucketName}`,
      fix: writeAccessFix(context),
      transient: false,
    };
  }
  return {
    code: 'BUCKET_POLICY_MISSING',
    problem: `the bucket policy of ${c.bucketName} does not allow our exporter role to write under this connection's prefix`,
    fix: writeAccessFix(context),
    transient: false,
  };
}

/**
 * KMS denied inside an S3 write although the connection names no key: the bucket's default
 * encryption (SSE-KMS with a customer managed key) applies the bucket's own key, and its key
 * policy does not let our writer use it. S3 names the key in its refusal, which the adapter
 * keeps as `resourceArn` (only the ARN).
 */
function bucketDefaultKeyDenied(key: string | undefined, context: DiagnosisContext): Explanation {
  const c = context.connection;
  const named =
    key ?? `the bucket's default encryption key (aws s3api get-bucket-encryption --bucket ${c.bucketName})`;
  return {
    code: 'BUCKET_KMS_KEY_DENIED',
    problem:
      `bucket ${c.bucketName} encrypts new objects by default with the customer managed KMS key ${named}, ` +
      'and its key policy does not allow our exporter role to use it (the connection sets no kmsKeyArn, so the bucket policy is not the problem)',
    fix:
      `add this statement to the key policy of ${named}: ${json(kmsKeyPolicyStatement(c, roleOf(context)))}; ` +
      "or change the bucket's default encryption to SSE-S3",
    transient: false,
  };
}

function toDiagnosis(
  e: Pick<Explanation, 'code' | 'problem' | 'fix'>,
  context: Pick<DiagnosisContext, 'at' | 'windowEnd'>,
): ConnectionDiagnosis {
  return {
    code: e.code,
    message: e.fix ? `${e.problem}: ${e.fix}` : e.problem,
    at: context.at.toISOString(),
    ...(context.windowEnd ? { windowEnd: context.windowEnd.toISOString() } : {}),
  };
}

/** The diagnosis stored on a connection's state (code + message with the fix). */
export function diagnose(error: unknown, context: DiagnosisContext): ConnectionDiagnosis {
  return toDiagnosis(explain(error, context), context);
}

/** A refused field (PGP key, KMS allowlist, schema) as a diagnosis. */
export function diagnoseFieldError(
  code: Extract<DiagnosisCode, 'INVALID_PGP_KEY' | 'KMS_KEY_NOT_ALLOWLISTED' | 'INVALID_CONNECTION'>,
  error: FieldError,
  context: Pick<DiagnosisContext, 'at' | 'windowEnd'>,
): ConnectionDiagnosis {
  const leaf = error.field.split('.').pop() ?? error.field;
  const problem = error.message.startsWith(leaf) ? error.message : `${error.field}: ${error.message}`;
  return toDiagnosis({ code, problem }, context);
}
