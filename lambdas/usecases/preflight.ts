/**
 * Checks run before any write of a connection: the same refusals as every write path
 * (domain/connection.ts connectionRefusals: the KMS key must be on the operator's allowlist,
 * the PGP key must be a valid, usable public key). A refusal is a ConnectionProblemError
 * (recorded on the state, not retried).
 */
import type { Readable } from 'node:stream';
import { type Connection, type ConnectionChecks, connectionRefusals } from '../domain/connection.ts';
import type { PayloadEncryption } from '../ports/index.ts';
import { ConnectionProblemError, type ExportDeps } from './export-window.ts';

/** The diagnosis code of a refusal, by the field refused. */
const REFUSAL_CODES: Record<string, string> = {
  kmsKeyArn: 'KMS_KEY_NOT_ALLOWLISTED',
  pgpPublicKey: 'INVALID_PGP_KEY',
};

export interface PreflightDeps<K> {
  /** The deployment's checks of a row (adapters/connection-checks.ts). */
  checks: ConnectionChecks;
  /** Encrypts the files of a connection with a PGP key (adapters/pgp.ts). */
  pgp: PayloadEncryption<K>;
}

export function createPreflight<K>({ checks, pgp }: PreflightDeps<K>): NonNullable<ExportDeps['preflight']> {
  return async (connection: Connection, now: Date) => {
    const [refusal] = await connectionRefusals(connection, checks, now);
    if (refusal)
      throw new ConnectionProblemError(REFUSAL_CODES[refusal.field] ?? 'INVALID_CONNECTION', refusal.message);
    if (!connection.pgpPublicKey) return {};
    // Validated just above: this reads the parsed key from the per-container cache.
    const key = await pgp.loadEncryptionKey(connection.pgpPublicKey, now);
    return { encrypt: (plaintext: Readable) => pgp.encryptStream(key, plaintext) };
  };
}
