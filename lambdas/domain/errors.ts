/**
 * The domain's error family: every error the domain defines extends DomainError, sets its
 * `name` to its class name (kept through minified bundles, where class names are not) and keeps
 * its `cause` (ES2022 `new Error(message, { cause })`).
 *
 * DestinationError and its subclasses are what went wrong at a connection's destination (its
 * bucket, its KMS key, the roles that write into it) in the domain's terms. The adapters that
 * call S3, STS and KMS translate the SDK's errors into them (adapters/aws-errors.ts), so that
 * lambdas/domain/diagnosis.ts maps typed errors to the customer-facing text and never reads an
 * SDK error's shape itself.
 */

export class DomainError extends Error {
  override readonly name: string = 'DomainError';
}

export type InvalidPgpKeyReason =
  | 'PRIVATE_KEY'
  | 'NOT_OPENPGP'
  | 'MULTIPLE_KEYS'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'REVOKED'
  | 'NO_ENCRYPTION_KEY'
  | 'WEAK_KEY'
  | 'UNSUPPORTED_ALGORITHM'
  | 'INVALID_SIGNATURES';

/**
 * A customer's `pgpPublicKey` cannot be used (adapters/pgp.ts validates it). The message names the
 * field and the fix; it never contains key material.
 */
export class InvalidPgpKeyError extends DomainError {
  override readonly name = 'InvalidPgpKeyError';
  readonly field = 'pgpPublicKey';
  constructor(
    readonly reason: InvalidPgpKeyReason,
    message: string,
  ) {
    super(message);
  }
}

/** Which service refused or failed. */
export type DestinationService = 'S3' | 'STS' | 'KMS';

export interface DestinationErrorDetail {
  service: DestinationService;
  /** The service's error code (`AccessDenied`, `NoSuchBucket`, …), or the HTTP status when it sent none. */
  code: string;
  status?: number | undefined;
  requestId?: string | undefined;
  /** Retrying the same call later may succeed (throttling, 5xx, network, expired session). */
  transient?: boolean;
}

/**
 * A destination failure of no more specific kind (an unexpected error code). Its message is the
 * service's, for the operator's logs; the customer-facing diagnosis names only code, HTTP status
 * and request id (a service's message may quote data).
 */
export class DestinationError extends DomainError {
  override readonly name: string = 'DestinationError';
  readonly service: DestinationService;
  readonly code: string;
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  readonly transient: boolean;

  constructor(message: string, detail: DestinationErrorDetail, options?: ErrorOptions) {
    super(message, options);
    this.service = detail.service;
    this.code = detail.code;
    this.status = detail.status;
    this.requestId = detail.requestId;
    this.transient = detail.transient ?? false;
  }
}

/** The service throttled us; `slowDown`: S3's own SlowDown. Transient. */
export class DestinationThrottledError extends DestinationError {
  override readonly name = 'DestinationThrottledError';
  constructor(
    message: string,
    detail: DestinationErrorDetail,
    readonly slowDown: boolean,
    options?: ErrorOptions,
  ) {
    super(message, { ...detail, transient: true }, options);
  }
}

/** A temporary AWS or network failure (5xx, timeout, connection reset, expired session). Transient. */
export class DestinationUnavailableError extends DestinationError {
  override readonly name = 'DestinationUnavailableError';
  constructor(message: string, detail: DestinationErrorDetail, options?: ErrorOptions) {
    super(message, { ...detail, transient: true }, options);
  }
}

/** What a refusal says about the policy that refused. */
export interface AccessDeniedFacts {
  /** What was refused: assuming a role (STS), using a KMS key (directly or through S3), an S3 write. */
  refused: DestinationService;
  /**
   * The resource named in the refusal, when it names one: the role ARN STS refused to let us
   * assume, or the KMS key ARN S3 could not use. Only ever an ARN (never the rest of the message).
   */
  resourceArn?: string | undefined;
  /** Which kind of policy the refusal blames, when it says: ours (identity, SCP, boundary, session) or theirs. */
  blames?: 'caller-policy' | 'resource-policy' | undefined;
}

/** Access denied (S3 AccessDenied, KMS AccessDeniedException, STS AccessDenied, a bare 403). */
export class DestinationAccessDeniedError extends DestinationError {
  override readonly name = 'DestinationAccessDeniedError';
  constructor(
    message: string,
    detail: DestinationErrorDetail,
    readonly facts: AccessDeniedFacts,
    options?: ErrorOptions,
  ) {
    super(message, detail, options);
  }
}

/** The bucket is in another region than the connection says (PermanentRedirect, a signing-region refusal). */
export class BucketWrongRegionError extends DestinationError {
  override readonly name = 'BucketWrongRegionError';
  constructor(
    message: string,
    detail: DestinationErrorDetail,
    /** The bucket's region as S3 reported it (a region code), when it did. */
    readonly bucketRegion: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, detail, options);
  }
}

/** The bucket does not exist (NoSuchBucket). */
export class BucketNotFoundError extends DestinationError {
  override readonly name = 'BucketNotFoundError';
}

/** The KMS key is disabled or pending deletion. */
export class KmsKeyDisabledError extends DestinationError {
  override readonly name = 'KmsKeyDisabledError';
}

/** The KMS key does not exist (or its ARN is not a key's). */
export class KmsKeyNotFoundError extends DestinationError {
  override readonly name = 'KmsKeyNotFoundError';
}
