/**
 * One namespace per connection: in one bucket, a connection's prefix
 * `[<folderPath>_]<connectionName>/` must not equal, contain or lie inside another
 * connection's prefix, whatever their apps. The template is ambiguous (folder `a` + name `b_c`
 * and folder `a_b` + name `c` both give `a_b_c/`), and a prefix nested in another's folder
 * would mix two connections' files under one bucket policy, Athena table or glob. With this
 * rule no two connections can produce the same object key (test/unit/namespaces.test.ts).
 */

import { DomainError } from './errors.ts';
import { connectionPrefix } from './object-keys.ts';

export interface NamespacedConnection {
  connectionId: string;
  bucketName: string;
  connectionName: string;
  folderPath?: string | undefined;
}

/** The claim a connection holds on one prefix of its bucket: its own prefix, or one of its ancestors. */
export interface PrefixClaim {
  bucketName: string;
  /** Ends with "/". */
  prefix: string;
  /** `own`: the connection's prefix (no other connection may be at or below it); `below`: an ancestor folder. */
  role: 'own' | 'below';
}

/** Prefixes collide when one equals or contains the other (both end with "/", so a string prefix is a folder). */
export function prefixesCollide(a: string, b: string): boolean {
  return a.startsWith(b) || b.startsWith(a);
}

/** The folders strictly above a prefix: `a/b_c/d/` → `a/`, `a/b_c/`. */
export function ancestorPrefixes(prefix: string): string[] {
  const ancestors: string[] = [];
  for (let i = prefix.indexOf('/'); i >= 0 && i < prefix.length - 1; i = prefix.indexOf('/', i + 1)) {
    ancestors.push(prefix.slice(0, i + 1));
  }
  return ancestors;
}

/**
 * The claims a connection needs: its own prefix, and every ancestor folder marked as having a
 * connection below. Two connections collide exactly when one's `own` claim meets the other's
 * `own` or `below` claim on the same prefix of the same bucket.
 */
export function prefixClaims(connection: NamespacedConnection): PrefixClaim[] {
  const prefix = connectionPrefix(connection);
  return [
    { bucketName: connection.bucketName, prefix, role: 'own' },
    ...ancestorPrefixes(prefix).map((p) => ({
      bucketName: connection.bucketName,
      prefix: p,
      role: 'below' as const,
    })),
  ];
}

/** The first of `others` (another connection in the same bucket) whose prefix collides with `candidate`'s. */
export function namespaceConflict<T extends NamespacedConnection>(
  candidate: NamespacedConnection,
  others: Iterable<T>,
): T | undefined {
  const prefix = connectionPrefix(candidate);
  for (const other of others) {
    if (other.connectionId === candidate.connectionId || other.bucketName !== candidate.bucketName) continue;
    if (prefixesCollide(prefix, connectionPrefix(other))) return other;
  }
  return undefined;
}

/** A connection's prefix collides with another connection's in the same bucket. */
export class NamespaceConflictError extends DomainError {
  override readonly name = 'NamespaceConflictError';
  readonly field = 'connectionName';
  /** What is wrong and how to fix it, without the leading connection id (for per-row CLI output). */
  readonly reason: string;
  constructor(
    readonly connectionId: string,
    readonly bucketName: string,
    readonly prefix: string,
    readonly otherConnectionId: string,
    options?: { cause?: unknown },
  ) {
    const reason =
      `its prefix "${prefix}" in bucket ${bucketName} collides with connection ${otherConnectionId} ` +
      `(one prefix equals or contains the other: "[<folderPath>_]<connectionName>/" must be a folder of its own); ` +
      `change connectionName or folderPath so that neither prefix is inside the other, or use another bucket`;
    super(`connection ${connectionId}: ${reason}`, options);
    this.reason = reason;
  }
}
