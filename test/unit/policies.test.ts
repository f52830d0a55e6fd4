import { describe, expect, it } from 'vitest';
import { CONNECTION_SESSION_TAG } from '../../lambdas/definitions.ts';
import { dataObjectKey, manifestObjectKey, probeObjectKey } from '../../lambdas/domain/object-keys.ts';
import {
  assumeRoleTrustPolicy,
  bucketPolicy,
  connectionPolicies,
  EXTERNAL_ID_PLACEHOLDER,
  exportObjectsArn,
  kmsKeyPolicyStatement,
} from '../../lambdas/domain/policies.ts';

const ROLE = 'arn:aws:iam::111122223333:role/s3-event-export-exporter';
const subject = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  connectionName: 'daily-events',
  folderPath: 'exports/moengage',
  bucketName: 'customer-data-lake',
  bucketRegion: 'ap-south-1',
  kmsKeyArn: 'arn:aws:kms:ap-south-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab',
};

/** IAM's `StringLike` on a resource ARN, enough for these tests (`*` and `?` wildcards). */
function arnMatches(pattern: string, arn: string): boolean {
  const literal = pattern.replace(/\$\{([*?$])\}/g, (_m, c: string) => `\u0000${c}`);
  const regex = literal
    .split('')
    .map((c, i, all) => {
      if (all[i - 1] === '\u0000') return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (c === '\u0000') return '';
      if (c === '*') return '.*';
      if (c === '?') return '.';
      return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${regex}$`).test(arn);
}

describe('bucket policy for a connection', () => {
  const statement = bucketPolicy(subject, ROLE).Statement[0]!;

  it('allows only our exporter role to put (and abort) objects', () => {
    expect(statement.Effect).toBe('Allow');
    expect(statement.Principal).toEqual({ AWS: ROLE });
    expect(statement.Action).toEqual(['s3:PutObject', 's3:AbortMultipartUpload']);
  });

  it("is limited to the connection's prefix, not the whole bucket", () => {
    expect(statement.Resource).toBe('arn:aws:s3:::customer-data-lake/exports/moengage_daily-events/*');
    const windowEnd = new Date('2026-03-01T00:15:00Z');
    for (const key of [
      dataObjectKey(subject, windowEnd),
      dataObjectKey(subject, windowEnd, 3),
      manifestObjectKey(subject, windowEnd),
      probeObjectKey(subject, windowEnd),
    ]) {
      expect(arnMatches(statement.Resource as string, `arn:aws:s3:::customer-data-lake/${key}`)).toBe(true);
    }
    expect(arnMatches(statement.Resource as string, 'arn:aws:s3:::customer-data-lake/other/file')).toBe(
      false,
    );
    expect(
      arnMatches(
        statement.Resource as string,
        'arn:aws:s3:::customer-data-lake/exports/moengage_daily-events2/x',
      ),
    ).toBe(false);
  });

  it('requires a session tagged with this connection id (closes the confused-deputy hole)', () => {
    expect(statement.Condition).toEqual({
      StringEquals: { [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: subject.connectionId },
    });
  });

  it('does not condition on s3:x-amz-acl, which would deny UploadPart of every multipart export', () => {
    expect(JSON.stringify(statement)).not.toContain('x-amz-acl');
  });

  it('escapes IAM wildcards that a connection name may contain', () => {
    const odd = { ...subject, folderPath: undefined, connectionName: 'all*events?$' };
    const arn = exportObjectsArn(odd);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: IAM's literal-character syntax, not a template
    expect(arn).toBe('arn:aws:s3:::customer-data-lake/all${*}events${?}${$}/*');
    expect(arnMatches(arn, 'arn:aws:s3:::customer-data-lake/all*events?$/x')).toBe(true);
    expect(arnMatches(arn, 'arn:aws:s3:::customer-data-lake/allXeventsY$/x')).toBe(false);
  });

  it('uses the partition of the bucket region', () => {
    expect(exportObjectsArn({ ...subject, bucketRegion: 'cn-north-1' })).toMatch(/^arn:aws-cn:s3:::/);
  });

  it('gives each connection its own statement id so customers can merge several', () => {
    const other = bucketPolicy({ ...subject, connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0XYZ' }, ROLE);
    expect(statement.Sid).toMatch(/^[A-Za-z0-9]+$/);
    expect(other.Statement[0]!.Sid).not.toBe(statement.Sid);
  });
});

describe('KMS key policy statement', () => {
  const statement = kmsKeyPolicyStatement(subject, ROLE);

  it('lets the exporter role generate data keys, encrypt, decrypt (multipart) and describe the key', () => {
    expect(statement.Principal).toEqual({ AWS: ROLE });
    expect(statement.Action).toEqual([
      'kms:GenerateDataKey',
      'kms:Encrypt',
      'kms:Decrypt',
      'kms:DescribeKey',
    ]);
    expect(statement.Resource).toBe('*');
  });

  it("only through S3 in the bucket's region, and only from a session tagged with this connection id", () => {
    expect(statement.Condition).toEqual({
      StringEquals: {
        'kms:ViaService': 's3.ap-south-1.amazonaws.com',
        [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: subject.connectionId,
      },
    });
  });

  it("assume-role mode: the customer's own role, via S3 only (its sessions carry no tag)", () => {
    const withRole = { ...subject, assumeRoleArn: 'arn:aws:iam::444455556666:role/event-export-writer' };
    expect(kmsKeyPolicyStatement(withRole, ROLE).Condition).toEqual({
      StringEquals: { 'kms:ViaService': 's3.ap-south-1.amazonaws.com' },
    });
  });
});

describe('assume-role mode', () => {
  const withRole = {
    ...subject,
    assumeRoleArn: 'arn:aws:iam::444455556666:role/event-export-writer',
  };

  it('the trust policy requires the external id and our connection tag', () => {
    const trust = assumeRoleTrustPolicy(withRole, ROLE, 'ext-0123456789');
    expect(trust.Statement[0]).toMatchObject({
      Effect: 'Allow',
      Principal: { AWS: ROLE },
      Action: 'sts:AssumeRole',
      Condition: {
        StringEquals: {
          'sts:ExternalId': 'ext-0123456789',
          [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: subject.connectionId,
        },
      },
    });
  });

  it('prints a placeholder instead of the external id unless given one', () => {
    const policies = connectionPolicies(withRole, ROLE);
    expect(policies.mode).toBe('assume-role');
    expect(policies.bucketPolicy).toBeUndefined();
    expect(JSON.stringify(policies.roleTrustPolicy)).toContain(EXTERNAL_ID_PLACEHOLDER);
    expect(policies.rolePermissionsPolicy?.Statement.map((s) => s.Resource)).toEqual([
      exportObjectsArn(subject),
      subject.kmsKeyArn,
    ]);
    expect(policies.kmsKeyPolicyStatement?.Principal).toEqual({ AWS: withRole.assumeRoleArn });
  });

  it('bucket-policy mode prints the bucket policy and, with a key, the key statement', () => {
    const policies = connectionPolicies(subject, ROLE);
    expect(policies.mode).toBe('bucket-policy');
    expect(policies.bucketPolicy?.Statement).toHaveLength(1);
    expect(policies.kmsKeyPolicyStatement).toBeDefined();
    expect(
      connectionPolicies({ ...subject, kmsKeyArn: undefined }, ROLE).kmsKeyPolicyStatement,
    ).toBeUndefined();
  });
});
