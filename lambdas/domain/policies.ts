/**
 * The exact IAM documents a customer applies for one connection, printed by the stack, the CLI
 * and "test connection": one definition, so what we print is what we test. The bucket policy
 * and the KMS key-policy statement allow our one exporter role only from a session tagged with
 * this connection's id; assume-role mode adds the customer's trust and permissions policies.
 * Why the tag, and why no `s3:x-amz-acl` condition: docs/security.md#the-customers-bucket-policy,
 * docs/security.md#the-confused-deputy-threat-and-the-fix.
 */
import { CONNECTION_SESSION_TAG } from '../definitions.ts';
import { connectionPrefix } from './object-keys.ts';

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS: string };
  Action: string | string[];
  /** Absent in trust policies. */
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** What the documents depend on: a connection's destination (a {@link Connection} fits). */
export interface PolicySubject {
  connectionId: string;
  connectionName: string;
  folderPath?: string | undefined;
  bucketName: string;
  bucketRegion: string;
  kmsKeyArn?: string | undefined;
  assumeRoleArn?: string | undefined;
}

/** Actions the exporter needs on the objects it writes (multipart uploads included). */
export const EXPORT_OBJECT_ACTIONS = ['s3:PutObject', 's3:AbortMultipartUpload'] as const;

/**
 * KMS actions for SSE-KMS writes. `kms:Decrypt` is needed although we never read: S3 decrypts
 * the data key to complete a multipart upload.
 */
export const EXPORT_KMS_ACTIONS = [
  'kms:GenerateDataKey',
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:DescribeKey',
] as const;

/** `aws`, `aws-cn` or `aws-us-gov`, from a region code. */
export function partitionOfRegion(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

function dnsSuffix(region: string): string {
  return region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
}

/** The service principal S3 uses when it calls KMS for us: `s3.<region>.amazonaws.com`. */
export function s3ViaService(region: string): string {
  return `s3.${region}.${dnsSuffix(region)}`;
}

/** `*`, `?` and `$` are special in IAM resource ARNs; `${*}` etc. are their literal forms. */
function escapeArnWildcards(text: string): string {
  return text.replace(/[*?$]/g, (c) => `\${${c}}`);
}

/** A statement id (alphanumeric only) unique per connection. */
function sid(prefix: string, connectionId: string): string {
  return `${prefix}${connectionId.replace(/[^A-Za-z0-9]/g, '')}`;
}

/** `arn:aws:s3:::<bucket>/<connection prefix>*`: the only objects this connection writes. */
export function exportObjectsArn(subject: PolicySubject): string {
  return `arn:${partitionOfRegion(subject.bucketRegion)}:s3:::${subject.bucketName}/${escapeArnWildcards(connectionPrefix(subject))}*`;
}

/** The statement to add to the customer's bucket policy (bucket-policy mode). */
export function bucketPolicyStatement(subject: PolicySubject, exporterRoleArn: string): PolicyStatement {
  return {
    Sid: sid('EventExport', subject.connectionId),
    Effect: 'Allow',
    Principal: { AWS: exporterRoleArn },
    Action: [...EXPORT_OBJECT_ACTIONS],
    Resource: exportObjectsArn(subject),
    Condition: {
      StringEquals: { [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: subject.connectionId },
    },
  };
}

/** A whole bucket policy holding just our statement (customers merge it into theirs). */
export function bucketPolicy(subject: PolicySubject, exporterRoleArn: string): PolicyDocument {
  return { Version: '2012-10-17', Statement: [bucketPolicyStatement(subject, exporterRoleArn)] };
}

/**
 * The statement to add to the key policy of `kmsKeyArn`. `Resource: "*"` in a key policy means
 * "this key". The principal is our exporter role (bucket-policy mode) or the customer's own
 * role (assume-role mode, where the customer may grant it in IAM instead).
 */
export function kmsKeyPolicyStatement(subject: PolicySubject, exporterRoleArn: string): PolicyStatement {
  const viaS3 = { 'kms:ViaService': s3ViaService(subject.bucketRegion) };
  // Pinned to the connection id like the bucket policy (S3 forwards our session's tags to KMS):
  // another customer's connection naming this key gets no use of it. A customer's own role
  // (assume-role mode) is only ever assumed for this connection, and its sessions carry no tag.
  const pinned = subject.assumeRoleArn
    ? viaS3
    : { ...viaS3, [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: subject.connectionId };
  return {
    Sid: sid('EventExportViaS3', subject.connectionId),
    Effect: 'Allow',
    Principal: { AWS: subject.assumeRoleArn ?? exporterRoleArn },
    Action: [...EXPORT_KMS_ACTIONS],
    Resource: '*',
    Condition: { StringEquals: pinned },
  };
}

/**
 * Trust policy of the customer's role (assume-role mode). The external id is passed in so
 * that callers printing into logs or state can put a placeholder instead of the value.
 */
export function assumeRoleTrustPolicy(
  subject: PolicySubject,
  exporterRoleArn: string,
  externalId: string,
): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: sid('EventExportAssume', subject.connectionId),
        Effect: 'Allow',
        Principal: { AWS: exporterRoleArn },
        Action: 'sts:AssumeRole',
        Condition: {
          StringEquals: {
            'sts:ExternalId': externalId,
            [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: subject.connectionId,
          },
        },
      },
    ],
  };
}

/** Permissions policy of the customer's role (assume-role mode): write under the prefix, use the key via S3. */
export function assumeRolePermissionsPolicy(subject: PolicySubject): PolicyDocument {
  const statements: PolicyStatement[] = [
    {
      Sid: sid('EventExportWrite', subject.connectionId),
      Effect: 'Allow',
      Action: [...EXPORT_OBJECT_ACTIONS],
      Resource: exportObjectsArn(subject),
    },
  ];
  if (subject.kmsKeyArn) {
    statements.push({
      Sid: sid('EventExportKms', subject.connectionId),
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt', 'kms:DescribeKey'],
      Resource: subject.kmsKeyArn,
      Condition: { StringEquals: { 'kms:ViaService': s3ViaService(subject.bucketRegion) } },
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}

/** Placeholder printed instead of an external id where the value must not appear (logs, state). */
export const EXTERNAL_ID_PLACEHOLDER = '<the externalId of this connection>';

export interface ConnectionPolicies {
  mode: 'bucket-policy' | 'assume-role';
  /** Bucket-policy mode: the bucket policy (statement) to add. */
  bucketPolicy?: PolicyDocument;
  /** Assume-role mode: the role's trust policy and permissions policy. */
  roleTrustPolicy?: PolicyDocument;
  rolePermissionsPolicy?: PolicyDocument;
  /** When the connection has `kmsKeyArn`: the statement to add to that key's policy. */
  kmsKeyPolicyStatement?: PolicyStatement;
}

/** Everything the customer applies for `subject`, for the CLI and the stack outputs. */
export function connectionPolicies(
  subject: PolicySubject,
  exporterRoleArn: string,
  externalId: string = EXTERNAL_ID_PLACEHOLDER,
): ConnectionPolicies {
  const kms = subject.kmsKeyArn
    ? { kmsKeyPolicyStatement: kmsKeyPolicyStatement(subject, exporterRoleArn) }
    : {};
  if (subject.assumeRoleArn) {
    return {
      mode: 'assume-role',
      roleTrustPolicy: assumeRoleTrustPolicy(subject, exporterRoleArn, externalId),
      rolePermissionsPolicy: assumeRolePermissionsPolicy(subject),
      ...kms,
    };
  }
  return { mode: 'bucket-policy', bucketPolicy: bucketPolicy(subject, exporterRoleArn), ...kms };
}
