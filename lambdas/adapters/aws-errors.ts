/**
 * AWS SDK errors → the domain's typed destination errors (lambdas/domain/errors.ts). Reads the
 * SDK's error shape — `name`, `Code`, `$metadata.httpStatusCode`, `$retryable`, the
 * `x-amz-bucket-region` response header, the `Region` field of S3's error body, the resource an
 * AccessDenied message names — so that nothing past the adapters parses SDK errors.
 *
 * The typed error keeps the SDK error as its `cause`. Errors that are not AWS errors (ours, a
 * SyntaxError, a stream's failure) are returned as they are; a typed error is returned as it is.
 */
import {
  type AccessDeniedFacts,
  BucketNotFoundError,
  BucketWrongRegionError,
  DestinationAccessDeniedError,
  DestinationError,
  type DestinationErrorDetail,
  type DestinationService,
  DestinationThrottledError,
  DestinationUnavailableError,
  DomainError,
  KmsKeyDisabledError,
  KmsKeyNotFoundError,
} from '../domain/errors.ts';

interface ErrorShape {
  name: string;
  code: string;
  status: number | undefined;
  message: string;
  bucketRegion: string | undefined;
  requestId: string | undefined;
  retryable: boolean;
  errno: string | undefined;
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
    errno: typeof e['code'] === 'string' ? (e['code'] as string) : undefined,
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

const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'KMSAccessDeniedException',
  'AllAccessDisabled',
]);

function isThrottling(s: ErrorShape): boolean {
  return THROTTLING.has(s.code) || THROTTLING.has(s.name) || s.status === 429;
}

function isTransientShape(s: ErrorShape): boolean {
  if (s.code === 'SlowDown' || isThrottling(s)) return true;
  if (UNAVAILABLE.has(s.code) || UNAVAILABLE.has(s.name)) return true;
  if (s.errno !== undefined && NETWORK.has(s.errno)) return true;
  if (s.status !== undefined && s.status >= 500) return true;
  return s.retryable;
}

/**
 * An error from an AWS SDK call or its HTTP connection: it carries the SDK's metadata or an error
 * code (`Code`, or a Node.js `code` such as ECONNRESET). Ours extend DomainError and are not.
 */
function isAwsError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  if ('$metadata' in error || '$fault' in error || '$response' in error) return true;
  const e = error as { Code?: unknown; code?: unknown };
  return typeof e.Code === 'string' || typeof e.code === 'string';
}

/** What an AccessDenied says about who refused what. `service`: the call's service, when the caller knows it. */
function deniedFacts(s: ErrorShape, service: DestinationService | undefined): AccessDeniedFacts {
  if (service === 'STS' || /sts:(AssumeRole|TagSession)/.test(s.message)) {
    // STS names the role it refused: "... not authorized to perform: sts:AssumeRole on resource: <arn>".
    return { refused: 'STS', resourceArn: /on resource: (arn:\S+)/.exec(s.message)?.[1] };
  }
  if (service === 'KMS' || /\bkms:/i.test(s.message)) {
    // S3 names the bucket's default key: "... kms:GenerateDataKey on resource: arn:aws:kms:...:key/...".
    const key = /on resource: "?(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+)/.exec(
      s.message,
    )?.[1];
    return { refused: 'KMS', resourceArn: key };
  }
  const blames = /identity-based policy|service control policy|permissions boundary|session policy/i.test(
    s.message,
  )
    ? 'caller-policy'
    : /resource-based policy/i.test(s.message)
      ? 'resource-policy'
      : undefined;
  return { refused: 'S3', blames };
}

/**
 * The typed destination error for an SDK error of a call to `service` (when the caller knows
 * which service it called: STS from the session provider, KMS from the key inspector); `error`
 * itself when it is not an AWS error or is typed already.
 */
export function translateAwsError(error: unknown, service?: DestinationService): unknown {
  if (error instanceof DomainError) return error;
  if (!isAwsError(error)) return error;
  const s = shapeOf(error);
  const detail: DestinationErrorDetail = {
    service: service ?? 'S3',
    code: s.code,
    status: s.status,
    requestId: s.requestId,
    transient: isTransientShape(s),
  };
  const message = `${detail.service} ${s.code || `HTTP ${s.status}`}${s.message ? `: ${s.message}` : ''}`;
  const options = { cause: error };
  if (s.code === 'SlowDown' || isThrottling(s))
    return new DestinationThrottledError(message, detail, s.code === 'SlowDown', options);
  // STS refusals first (a 403 of any code), then the codes that name what is wrong.
  const facts = deniedFacts(s, service);
  const stsDenied = s.code === 'AccessDenied' || s.code === 'AccessDeniedException' || s.status === 403;
  if (facts.refused === 'STS' && stsDenied)
    return new DestinationAccessDeniedError(message, detail, facts, options);
  const redirect =
    s.code === 'PermanentRedirect' || s.status === 301 || s.code === 'IllegalLocationConstraintException';
  // A malformed signature says which region it wanted; without that hint it is not a region problem.
  if (redirect || (s.code === 'AuthorizationHeaderMalformed' && s.bucketRegion !== undefined))
    return new BucketWrongRegionError(message, detail, s.bucketRegion, options);
  if (s.code === 'NoSuchBucket') return new BucketNotFoundError(message, detail, options);
  if (s.code === 'DisabledException' || s.code === 'KMSInvalidStateException')
    return new KmsKeyDisabledError(message, detail, options);
  if (s.code === 'NotFoundException' || s.code === 'InvalidKeyId' || s.code === 'InvalidArnException')
    return new KmsKeyNotFoundError(message, detail, options);
  if (DENIED.has(s.code) || (s.status === 403 && !s.code))
    return new DestinationAccessDeniedError(message, detail, facts, options);
  if (detail.transient) return new DestinationUnavailableError(message, detail, options);
  return new DestinationError(message, detail, options);
}
