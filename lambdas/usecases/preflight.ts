/**
 * Checks run before any write of a connection: its KMS key must be on the
 * operator's allowlist and its PGP key must be a valid, usable public key.
 * A refusal is a ConnectionProblem (recorded on the state, not retried).
 */
import type { Readable } from 'node:stream';
import { encryptStream, InvalidPgpKeyError, loadEncryptionKey } from '../adapters/pgp.ts';
import type { Connection } from '../domain/connection.ts';
import { checkKmsKey } from '../domain/kms-allowlist.ts';
import { ConnectionProblem, type ExportDeps } from './export-window.ts';

export function createPreflight(kmsKeyAllowlist: readonly string[]): NonNullable<ExportDeps['preflight']> {
  return async (connection: Connection, now: Date) => {
    if (connection.kmsKeyArn) {
      const refusal = checkKmsKey(connection.kmsKeyArn, kmsKeyAllowlist);
      if (refusal) throw new ConnectionProblem('KMS_KEY_NOT_ALLOWLISTED', refusal.message);
    }
    if (!connection.pgpPublicKey) return {};
    try {
      const key = await loadEncryptionKey(connection.pgpPublicKey, now);
      return { encrypt: (plaintext: Readable) => encryptStream(key, plaintext) };
    } catch (error) {
      if (error instanceof InvalidPgpKeyError) throw new ConnectionProblem('INVALID_PGP_KEY', error.message);
      throw error;
    }
  };
}
