/**
 * The operator's KMS key allowlist (`kmsKeyArn`, docs/product.md#security): the exporter role may use
 * only these keys (the stack grants it nothing else), so a connection naming another key
 * is refused before any write instead of failing in S3 with an opaque AccessDenied.
 *
 * The list comes from the `kmsKeyAllowlist` CDK context, reaches the Lambdas as the
 * comma-separated `KMS_KEY_ALLOWLIST` environment variable, and holds full key ARNs.
 */
import type { FieldError } from './connection.ts';
import { DomainError } from './errors.ts';

const KEY_ARN =
  /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$/;

export class InvalidKmsKeyAllowlistError extends DomainError {
  override readonly name = 'InvalidKmsKeyAllowlistError';
  constructor(readonly entries: string[]) {
    super(
      `KMS_KEY_ALLOWLIST has entries that are not KMS key ARNs: ${entries.map((e) => JSON.stringify(e)).join(', ')}; use full key ARNs (arn:aws:kms:<region>:<account>:key/<key id>), not aliases, comma-separated`,
    );
  }
}

/**
 * Parse the comma-separated allowlist (blank or unset = no key allowed).
 * @throws InvalidKmsKeyAllowlistError when an entry is not a key ARN: a deployment error, not a customer's.
 */
export function parseKmsKeyAllowlist(raw: string | undefined): string[] {
  if (!raw) return [];
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const invalid = entries.filter((entry) => !KEY_ARN.test(entry));
  if (invalid.length) throw new InvalidKmsKeyAllowlistError(invalid);
  return [...new Set(entries)];
}

/** The refusal of a connection's `kmsKeyArn`, or undefined when the key is allowlisted. */
export function checkKmsKey(kmsKeyArn: string, allowlist: readonly string[]): FieldError | undefined {
  if (allowlist.includes(kmsKeyArn)) return undefined;
  const none =
    allowlist.length === 0 ? ' (the allowlist is empty: this deployment allows no KMS key yet)' : '';
  return {
    field: 'kmsKeyArn',
    message: `kmsKeyArn ${kmsKeyArn} is not on this deployment's KMS key allowlist${none}; ask the operator to add it to the kmsKeyAllowlist context and redeploy, or remove kmsKeyArn to use the bucket's default encryption`,
  };
}
