/**
 * What went wrong with a connection's bucket, key or role, in words a customer can act on
 * (docs/product.md#test-connection, #isolation). Maps AWS SDK errors by their shape
 * — `name`, `Code`, `$metadata.httpStatusCode`, the `x-amz-bucket-region` response header,
 * the `Region` field of S3's error body — so this module imports no SDK.
 *
 * Messages never contain secrets (external ids, keys, credentials) or event data: SDK
 * messages are only inspected, never copied, except for the bucket region S3 reports.
 */
import type { FieldError } from './connection.ts';
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

/** Where the failing call was made; without it the error's own shape decides. */
export type FailedOperation = 'S3_PUT' | 'KMS_DESCRIBE_KEY' | 'STS_ASSUME_ROLE';

export interface DiagnosisContext {
  connection: PolicySubject & { bucketOwnerAccountId?: string | undefined };
  /** The stable exporter role; absent locally. */
  exporterRoleArn?: string | undefined;
  at: Date;
  windowEnd?: Date | undefined;
  operation?: FailedOperation;
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

interface ErrorShape {
  name: string;
  code: string;
  status: number | undefined;
  message: string;
  bucketRegion: string | undefined;
  requestId: string | undefined;
  retryable: boolean;
}

function shapeOf(error: unknown): ErrorShape {
  const e = (error && typeof error === 'object' ? error : {}) as Record<string, unknown>;
  const metadata = (e['$metadata'] ?? {}) as { httpStatusCode?: number; requestId?: string };
  const response = (e['$response'] ?? {}) as { headers?: Record<string, string | undefined> };
  const header = response.headers?.['x-amz-bucket-region'];
  const bodyRegion = typeof e['Region'] === 'string' ? (e['Region'] as string) : undefined;
  const name =
    typeof e['name'] === 'string' ? (e['name'] as string) : error instanceof Error ? error.name : '';
  const code =
    typeof e['Code'] === 'string'
      ? (e['Code'] as string)
      : typeof e['code'] === 'string'
        ? (e['code'] as string)
        : name;
  return {
    name,
    // S3 reports KMS failures as "KMS.DisabledException" etc.; KMS itself without the prefix.
    code: code.replace(/^KMS\./, ''),
    status: metadata.httpStatusCode,
    message: typeof e['message'] === 'string' ? (e['message'] as string) : '',
    // Printed to the customer: only ever a region code.
    bucketRegion: [header, bodyRegion].find(
      (r) => typeof r === 'string' && /^[a-z]{2}(-[a-z0-9]+){2,3}$/.test(r),
    ),
    requestId: metadata.requestId,
    retryable: Boolean(e['$retryable']),
  };
}

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
  'LimitExceededException',
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'PriorRequestNotComplete',
]);

const UNAVAILABLE = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'KMSInternalException',
  'KeyUnavailableException',
  'DependencyTimeoutException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestTimeTooSkewed',
  'IDPCommunicationError',
  'OperationAborted',
]);

const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
]);

/** Whether retrying the same call later may succeed (throttling, 5xx, network, expired session). */
export function isTransient(error: unknown): boolean {
  const s = shapeOf(error);
  const errno = (error as { code?: unknown } | null)?.code;
  if (s.code === 'SlowDown' || THROTTLING.has(s.code) || THROTTLING.has(s.name)) return true;
  if (UNAVAILABLE.has(s.code) || UNAVAILABLE.has(s.name)) return true;
  if (typeof errno === 'string' && NETWORK.has(errno)) return true;
  if (s.status === 429 || (s.status !== undefined && s.status >= 500)) return true;
  return s.retryable;
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

/** Classify an SDK (or our own) error for one connection; never throws. */
export function explain(error: unknown, context: DiagnosisContext): Explanation {
  const c = context.connection;
  const s = shapeOf(error);

  // Our own typed refusals carry a message that already names the field and the fix.
  if (s.name === 'InvalidPgpKeyError') {
    return { code: 'INVALID_PGP_KEY', problem: s.message, transient: false };
  }
  if (s.name === 'InvalidConnectionError') {
    return { code: 'INVALID_CONNECTION', problem: s.message, transient: false };
  }

  if (s.code === 'SlowDown') {
    return {
      code: 'SLOW_DOWN',
      problem: `S3 asked us to slow down writing to bucket ${c.bucketName} (SlowDown)`,
      fix: 'nothing to change: the export is retried with backoff',
      transient: true,
    };
  }
  if (THROTTLING.has(s.code) || THROTTLING.has(s.name) || s.status === 429) {
    return {
      code: 'THROTTLED',
      problem: `AWS throttled a request for bucket ${c.bucketName} (${s.code || s.status})`,
      fix: 'nothing to change: the export is retried with backoff',
      transient: true,
    };
  }

  const stsCall = context.operation === 'STS_ASSUME_ROLE' || /sts:(AssumeRole|TagSession)/.test(s.message);
  if (stsCall && (s.code === 'AccessDenied' || s.code === 'AccessDeniedException' || s.status === 403)) {
    // STS names the role it refused: "... not authorized to perform: sts:AssumeRole on resource: <arn>".
    const resource = /on resource: (arn:\S+)/.exec(s.message)?.[1];
    const customerRole = c.assumeRoleArn && (resource ? resource === c.assumeRoleArn : true);
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

  const redirect =
    s.code === 'PermanentRedirect' || s.status === 301 || s.code === 'IllegalLocationConstraintException';
  // A malformed signature says which region it wanted; without that hint it is not a region problem.
  const wrongSigningRegion = s.code === 'AuthorizationHeaderMalformed' && s.bucketRegion !== undefined;
  if (redirect || wrongSigningRegion) {
    const actual = s.bucketRegion;
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

  if (s.code === 'NoSuchBucket') {
    return {
      code: 'BUCKET_NOT_FOUND',
      problem: `bucket ${c.bucketName} does not exist`,
      fix: `create it in ${c.bucketRegion}, or correct bucketName`,
      transient: false,
    };
  }

  if (s.code === 'DisabledException' || s.code === 'KMSInvalidStateException') {
    return {
      code: 'KMS_KEY_DISABLED',
      problem: `KMS key ${c.kmsKeyArn} is disabled or pending deletion`,
      fix: `enable it (aws kms enable-key --key-id ${c.kmsKeyArn}) or cancel its deletion (aws kms cancel-key-deletion), or set another kmsKeyArn`,
      transient: false,
    };
  }
  if (s.code === 'NotFoundException' || s.code === 'InvalidKeyId' || s.code === 'InvalidArnException') {
    return {
      code: 'KMS_KEY_NOT_FOUND',
      problem: `KMS key ${c.kmsKeyArn} does not exist in ${c.bucketRegion}`,
      fix: `correct kmsKeyArn (a key in ${c.bucketRegion}, by ARN), then ${kmsStatementFix(context)}`,
      transient: false,
    };
  }

  const denied =
    s.code === 'AccessDenied' ||
    s.code === 'AccessDeniedException' ||
    s.code === 'KMSAccessDeniedException' ||
    s.code === 'AllAccessDisabled' ||
    (s.status === 403 && !s.code);
  if (denied) {
    const kms = context.operation === 'KMS_DESCRIBE_KEY' || /\bkms:/i.test(s.message);
    if (kms && c.kmsKeyArn) {
      return {
        code: 'KMS_ACCESS_DENIED',
        problem: `our exporter role may not use KMS key ${c.kmsKeyArn} through S3`,
        fix: kmsStatementFix(context),
        transient: false,
      };
    }
    if (kms) return bucketDefaultKeyDenied(s.message, context);
    if (/identity-based policy|service control policy|permissions boundary|session policy/i.test(s.message)) {
      return {
        code: 'ACCESS_DENIED',
        problem: `a policy on our side (or an organization policy) denies writing to bucket ${c.bucketName}`,
        fix:
          'operator: check the exporter role policy and service control policies; the customer may also have to allow it: ' +
          writeAccessFix(context),
        transient: false,
      };
    }
    if (c.bucketOwnerAccountId && !/resource-based policy/i.test(s.message)) {
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

  if (isTransient(error)) {
    return {
      code: 'SERVICE_UNAVAILABLE',
      problem: `a temporary AWS or network failure (${s.code || s.status || 'no response'})`,
      fix: 'nothing to change: the export is retried',
      transient: true,
    };
  }

  const detail = [
    s.code || 'Error',
    s.status ? `HTTP ${s.status}` : undefined,
    s.requestId ? `request id ${s.requestId}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return {
    code: 'UNKNOWN',
    problem: `unexpected failure writing to bucket ${c.bucketName} (${detail})`,
    transient: false,
  };
}

/**
 * KMS denied inside an S3 write although the connection names no key: the bucket's default
 * encryption (SSE-KMS with a customer managed key) applies the bucket's own key, and its key
 * policy does not let our writer use it. S3 names the key in the message
 * ("... kms:GenerateDataKey on resource: arn:aws:kms:...:key/..."); only the ARN is copied.
 */
function bucketDefaultKeyDenied(message: string, context: DiagnosisContext): Explanation {
  const c = context.connection;
  const key = /on resource: "?(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+)/.exec(message)?.[1];
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
