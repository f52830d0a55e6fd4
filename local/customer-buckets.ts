/**
 * What AWS enforces about a customer's bucket and s3rver does not: the bucket's region, its
 * owner account (`ExpectedBucketOwner`) and the role (with its external id) the customer lets
 * us assume. A sink wrapped with these rules refuses a write that names any of them wrongly,
 * with the error S3 or STS would return, so a wrong connection row fails locally as it fails in
 * AWS. A bucket name that does not exist fails in s3rver itself (NoSuchBucket).
 */
import type { Readable } from 'node:stream';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { translateAwsError } from '../lambdas/adapters/aws-errors.ts';
import {
  BucketNotFoundError,
  BucketWrongRegionError,
  DestinationAccessDeniedError,
} from '../lambdas/domain/errors.ts';
import type { ExportSink, PutOptions, SinkTarget } from '../lambdas/ports/index.ts';

export interface CustomerBucket {
  bucketName: string;
  bucketRegion: string;
  ownerAccountId: string;
  /** The role the customer created for us (writes may also come from the exporter role itself). */
  role?: { arn: string; externalId: string };
}

function refusal(name: string, status: number, message: string): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message });
}

/** Why AWS would refuse a write to `target`, or undefined when it would accept it. */
export function bucketRefusal(target: SinkTarget, bucket: CustomerBucket): S3ServiceException | undefined {
  if (target.bucketRegion !== bucket.bucketRegion)
    return refusal(
      'PermanentRedirect',
      301,
      'The bucket you are attempting to access must be addressed using the specified endpoint.',
    );
  if (target.bucketOwnerAccountId !== undefined && target.bucketOwnerAccountId !== bucket.ownerAccountId)
    return refusal('AccessDenied', 403, 'Access Denied');
  // Without a role the exporter writes as itself (the bucket policy grants it); a role must be the
  // customer's, with the external id its trust policy names.
  if (
    target.assumeRoleArn !== undefined &&
    (target.assumeRoleArn !== bucket.role?.arn || target.externalId !== bucket.role.externalId)
  )
    return refusal('AccessDenied', 403, 'User is not authorized to perform: sts:AssumeRole');
  return undefined;
}

/**
 * The errors a wrong connection row meets at the customer's bucket, as the sink reports them
 * (S3ExportSink translates what AWS or s3rver raise into these typed errors).
 */
export function isBucketRefusal(error: unknown): boolean {
  return (
    error instanceof BucketNotFoundError ||
    error instanceof BucketWrongRegionError ||
    error instanceof DestinationAccessDeniedError
  );
}

/** `real`, refusing writes to the known buckets as AWS would (other buckets pass through). */
export function withCustomerBuckets(real: ExportSink, buckets: readonly CustomerBucket[]): ExportSink {
  const refusal = (target: SinkTarget) => {
    const bucket = buckets.find((b) => b.bucketName === target.bucketName);
    return bucket && bucketRefusal(target, bucket);
  };
  return {
    async putObject(
      target: SinkTarget,
      key: string,
      body: Readable,
      contentType: string,
      options?: PutOptions,
    ) {
      const refused = refusal(target);
      if (refused) {
        body.destroy();
        // As S3ExportSink reports it.
        throw translateAwsError(refused);
      }
      return real.putObject(target, key, body, contentType, options);
    },
    async exists(target: SinkTarget, key: string) {
      return !refusal(target) && ((await real.exists?.(target, key)) ?? false);
    },
  };
}
