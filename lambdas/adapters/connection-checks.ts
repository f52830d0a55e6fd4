/**
 * The deployment's {@link ConnectionChecks}: OpenPGP validation of `pgpPublicKey` (adapters/pgp.ts)
 * and the KMS key allowlist (domain/kms-allowlist.ts). One instance serves the exporter's
 * preflight, the connection sweep and the CLI's `connections validate|put`.
 */
import type { ConnectionChecks } from '../domain/connection.ts';
import { checkKmsKey } from '../domain/kms-allowlist.ts';
import { validatePgpPublicKey } from './pgp.ts';

export function createConnectionChecks(kmsKeyAllowlist: readonly string[]): ConnectionChecks {
  return {
    pgpPublicKey: (armored, now) => validatePgpPublicKey(armored, now),
    kmsKeyArn: (kmsKeyArn) => checkKmsKey(kmsKeyArn, kmsKeyAllowlist),
  };
}
