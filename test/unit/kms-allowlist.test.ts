import { describe, expect, it } from 'vitest';
import {
  checkKmsKey,
  InvalidKmsKeyAllowlistError,
  parseKmsKeyAllowlist,
} from '../../lambdas/domain/kms-allowlist.ts';

const KEY_A = 'arn:aws:kms:ap-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_B = 'arn:aws:kms:eu-west-1:210987654321:key/mrk-0123456789abcdef0123456789abcdef';

describe('KMS key allowlist', () => {
  it('parses the comma-separated environment variable, ignoring blanks and duplicates', () => {
    expect(parseKmsKeyAllowlist(` ${KEY_A} ,, ${KEY_B},${KEY_A} `)).toEqual([KEY_A, KEY_B]);
  });

  it('an unset or blank variable allows no key', () => {
    expect(parseKmsKeyAllowlist(undefined)).toEqual([]);
    expect(parseKmsKeyAllowlist('  ')).toEqual([]);
    expect(checkKmsKey(KEY_A, [])?.message).toMatch(/allowlist is empty/);
  });

  it('refuses an alias or other non-ARN entry as a deployment error naming the entry', () => {
    expect(() => parseKmsKeyAllowlist(`${KEY_A},alias/my-key`)).toThrow(InvalidKmsKeyAllowlistError);
    expect(() => parseKmsKeyAllowlist('alias/my-key')).toThrow(/"alias\/my-key".*full key ARNs/);
  });

  it('accepts an allowlisted key', () => {
    expect(checkKmsKey(KEY_B, [KEY_A, KEY_B])).toBeUndefined();
  });

  it('refuses a key that is not allowlisted, naming the field and the fix', () => {
    const other = 'arn:aws:kms:ap-south-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab';
    expect(checkKmsKey(other, [KEY_A])).toEqual({
      field: 'kmsKeyArn',
      message: expect.stringContaining(
        `kmsKeyArn ${other} is not on this deployment's KMS key allowlist; ask the operator to add it to the kmsKeyAllowlist context and redeploy`,
      ),
    });
  });

  it('matches whole ARNs only: a key id that is a prefix of an allowlisted one is refused', () => {
    expect(checkKmsKey(KEY_A.slice(0, -2), [KEY_A])).toBeDefined();
  });
});
