/**
 * The staging bucket (our account) holding staged events until their retention ends, and the
 * bucket receiving its server access logs: SSE-KMS with a Bucket Key, versioning off, expiring,
 * private and TLS-only. Why each setting: docs/staging-layout.md#the-buckets-settings.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Object patterns of the staging layout (lambdas/domain/staging-layout.ts). */
export const SEGMENTS = 'segments/*';
export const SLOTS = 'slots/*';
export const QUARANTINE = 'quarantine/*';

export interface StagingStorageProps {
  /** Encrypts staged objects (SSE-KMS with a Bucket Key). */
  readonly key: kms.IKey;
  /** Days staged objects are kept (the bucket's lifecycle expiration). */
  readonly retentionDays: number;
  /**
   * Days server access logs are kept.
   * @default 365
   */
  readonly accessLogRetentionDays?: number;
}

export class StagingStorage extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: StagingStorageProps) {
    super(scope, id);

    this.accessLogBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      removalPolicy: RemovalPolicy.RETAIN,
      autoDeleteObjects: false,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(props.accessLogRetentionDays ?? 365) },
      ],
    });
    Validations.of(this.accessLogBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This is the server access log bucket of the staging bucket; logging it into itself (or a third bucket) adds nothing.',
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      removalPolicy: RemovalPolicy.RETAIN,
      autoDeleteObjects: false,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'staging/',
      lifecycleRules: [
        {
          id: 'expire-staged-data',
          expiration: Duration.days(props.retentionDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
  }

  /** How cdk-nag names an object pattern of the staging bucket in an IAM5 finding. */
  nagObjectsFinding(keyPattern: string): string {
    const logicalId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket);
    return `<${logicalId}.Arn>/${keyPattern}`;
  }
}

/** The default policy of `role`, for cdk-nag acknowledgements of its run-time key patterns. */
function acknowledgeKeyPatterns(
  role: iam.Role,
  staging: StagingStorage,
  patterns: string[],
  reason: string,
): void {
  Validations.of(role.node.findChild('DefaultPolicy')).acknowledge(
    ...patterns.map((keyPattern) => ({
      id: `AwsSolutions-IAM5[Resource::${staging.nagObjectsFinding(keyPattern)}]`,
      reason,
    })),
  );
}

/**
 * Read segments and compacted slots: the compactor, and the exporter (which compacts a slot the
 * schedule has not reached yet rather than wait for it).
 */
export function grantStagedReads(role: iam.Role, staging: StagingStorage, key: kms.IKey): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadStagedData',
      actions: ['s3:GetObject'],
      resources: [staging.bucket.arnForObjects(SEGMENTS), staging.bucket.arnForObjects(SLOTS)],
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ListSegments',
      // Also makes a HEAD of a missing key answer 404 instead of 403.
      actions: ['s3:ListBucket'],
      resources: [staging.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [SEGMENTS, SLOTS] } },
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'DecryptStagedData', actions: ['kms:Decrypt'], resources: [key.keyArn] }),
  );
  acknowledgeKeyPatterns(
    role,
    staging,
    [SEGMENTS, SLOTS],
    'Staged keys are made at run time (slot, stage time, shard, sequence); the grant is limited to the segments/ and slots/ prefixes of the one staging bucket (not the quarantine).',
  );
}

/** Write compacted slots and the slots' quarantine files. */
export function grantStagedWrites(role: iam.Role, staging: StagingStorage, key: kms.IKey): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'WriteCompactedSlots',
      // AbortMultipartUpload: a large slot is a multipart upload that may need cleaning up.
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resources: [staging.bucket.arnForObjects(SLOTS), staging.bucket.arnForObjects(QUARANTINE)],
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'EncryptCompactedSlots',
      actions: ['kms:GenerateDataKey'],
      resources: [key.keyArn],
    }),
  );
  acknowledgeKeyPatterns(
    role,
    staging,
    [QUARANTINE],
    'Quarantine keys are made at run time (day and slot); the grant is limited to the quarantine/ prefix of the one staging bucket.',
  );
}
