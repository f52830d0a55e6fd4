/**
 * Diagnoses of the SDK's own errors — exception classes of client-s3/kms/sts, and S3 responses
 * deserialized by the real SDK (status, headers, XML body) — as the adapters hand them over:
 * translated into typed errors (adapters/aws-errors.ts).
 */

import {
  DisabledException,
  KMSInvalidStateException,
  KMSServiceException,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { NoSuchBucket, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { STSServiceException } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { translateAwsError } from '../../lambdas/adapters/aws-errors.ts';
import { InvalidPgpKeyError } from '../../lambdas/adapters/pgp.ts';
import {
  type DiagnosisContext,
  diagnose as diagnoseTyped,
  explain as explainTyped,
  isTransient as isTransientTyped,
} from '../../lambdas/domain/diagnosis.ts';
import {
  BucketNotFoundError,
  DestinationError,
  type DestinationService,
  DomainError,
} from '../../lambdas/domain/errors.ts';
import { bucketPolicyStatement, kmsKeyPolicyStatement } from '../../lambdas/domain/policies.ts';
import { s3ClientAnswering, s3ErrorXml } from '../support/s3-error-responses.ts';

const ROLE = 'arn:aws:iam::111122223333:role/s3-event-export-exporter';
const connection = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  connectionName: 'daily-events',
  bucketName: 'customer-data-lake',
  bucketRegion: 'ap-south-1',
  kmsKeyArn: 'arn:aws:kms:ap-south-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab',
};
const AT = new Date('2026-03-01T10:05:00Z');
const context: DiagnosisContext = { connection, exporterRoleArn: ROLE, at: AT };

/** The SDK's error as the adapter calling `service` hands it to the diagnosis. */
const diagnose = (error: unknown, context: DiagnosisContext, service?: DestinationService) =>
  diagnoseTyped(translateAwsError(error, service), context);
const explain = (error: unknown, context: DiagnosisContext) =>
  explainTyped(translateAwsError(error), context);
const isTransient = (error: unknown) => isTransientTyped(translateAwsError(error));

const s3Error = (name: string, status: number, message: string) =>
  new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    message,
  });

/** The error the real SDK throws for a PutObject answered with `response`. */
async function sdkErrorFor(response: Parameters<typeof s3ClientAnswering>[0]): Promise<unknown> {
  const client = s3ClientAnswering(response);
  try {
    await client.send(new PutObjectCommand({ Bucket: connection.bucketName, Key: 'k', Body: 'x' }));
  } catch (error) {
    return error;
  } finally {
    client.destroy();
  }
  throw new Error('expected the request to fail');
}

describe('diagnosis of S3 write failures', () => {
  it('AccessDenied without an owner check: the bucket policy is missing, and the fix is the exact statement', () => {
    const d = diagnose(s3Error('AccessDenied', 403, 'Access Denied'), context);
    expect(d.code).toBe('BUCKET_POLICY_MISSING');
    expect(d.message).toContain(JSON.stringify(bucketPolicyStatement(connection, ROLE)));
    expect(d.message).toContain('aws:PrincipalTag/export-connection-id');
    expect(d.at).toBe(AT.toISOString());
    expect(isTransient(s3Error('AccessDenied', 403, 'Access Denied'))).toBe(false);
  });

  it('AccessDenied with ExpectedBucketOwner set: bucket owner mismatch (or policy), naming the account', () => {
    const withOwner = { ...context, connection: { ...connection, bucketOwnerAccountId: '444455556666' } };
    const d = diagnose(s3Error('AccessDenied', 403, 'Access Denied'), withOwner);
    expect(d.code).toBe('BUCKET_OWNER_MISMATCH');
    expect(d.message).toMatch(/not owned by 444455556666/);
    expect(d.message).toContain('bucketOwnerAccountId');
  });

  it('AccessDenied that names the resource-based policy is a missing bucket policy even with an owner set', () => {
    const withOwner = { ...context, connection: { ...connection, bucketOwnerAccountId: '444455556666' } };
    const error = s3Error(
      'AccessDenied',
      403,
      'User: arn:aws:sts::111122223333:assumed-role/x/y is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::customer-data-lake/daily-events/k" because no resource-based policy allows the s3:PutObject action',
    );
    expect(diagnose(error, withOwner).code).toBe('BUCKET_POLICY_MISSING');
  });

  it('AccessDenied from KMS inside S3 prints the key-policy statement', () => {
    const error = s3Error(
      'AccessDenied',
      403,
      'User: arn:aws:sts::111122223333:assumed-role/x/y is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:...',
    );
    const d = diagnose(error, context);
    expect(d.code).toBe('KMS_ACCESS_DENIED');
    expect(d.message).toContain(JSON.stringify(kmsKeyPolicyStatement(connection, ROLE)));
    expect(d.message).toContain('"kms:ViaService":"s3.ap-south-1.amazonaws.com"');
  });

  it("KMS AccessDenied on the bucket's default key, with no kmsKeyArn on the connection: the bucket's key policy, not the bucket policy, with the statement to add", async () => {
    const { kmsKeyArn: _none, ...plain } = connection;
    const bucketKey = 'arn:aws:kms:ap-south-1:444455556666:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b';
    // What S3 answers a PutObject whose bucket default-encrypts with a key the writer may not use.
    const error = await sdkErrorFor({
      statusCode: 403,
      body: s3ErrorXml(
        'AccessDenied',
        `User: arn:aws:sts::111122223333:assumed-role/s3-event-export-exporter/conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC is not authorized to perform: kms:GenerateDataKey on resource: ${bucketKey} because no resource-based policy allows the kms:GenerateDataKey action`,
      ),
    });
    expect((error as { name: string }).name).toBe('AccessDenied');
    for (const bucketOwnerAccountId of [undefined, '444455556666']) {
      const d = diagnose(error, {
        ...context,
        connection: { ...plain, ...(bucketOwnerAccountId ? { bucketOwnerAccountId } : {}) },
      });
      expect(d.code).toBe('BUCKET_KMS_KEY_DENIED');
      expect(d.message).toContain(`default with the customer managed KMS key ${bucketKey}`);
      expect(d.message).toContain(
        `add this statement to the key policy of ${bucketKey}: ${JSON.stringify(kmsKeyPolicyStatement(plain, ROLE))}`,
      );
      expect(d.message).toContain('"kms:ViaService":"s3.ap-south-1.amazonaws.com"');
      expect(d.message).not.toContain('111122223333:assumed-role');
    }
    // Without the key in the message, the fix says how to find it.
    const vague = s3Error('AccessDenied', 403, 'not authorized to perform: kms:GenerateDataKey');
    expect(diagnose(vague, { ...context, connection: plain }).message).toContain(
      'aws s3api get-bucket-encryption --bucket customer-data-lake',
    );
  });

  it('a 301 PermanentRedirect names the bucket’s real region from x-amz-bucket-region', async () => {
    const error = await sdkErrorFor({
      statusCode: 301,
      headers: { 'x-amz-bucket-region': 'eu-west-1' },
      body: s3ErrorXml(
        'PermanentRedirect',
        'The bucket you are attempting to access must be addressed using the specified endpoint.',
        {
          Bucket: connection.bucketName,
          Endpoint: `${connection.bucketName}.s3.eu-west-1.amazonaws.com`,
        },
      ),
    });
    const e = explain(error, context);
    expect(e.code).toBe('WRONG_REGION');
    expect(e.problem).toBe('bucket customer-data-lake is in eu-west-1, not in ap-south-1');
    expect(e.fix).toBe('set bucketRegion to eu-west-1 and use a KMS key in eu-west-1');
  });

  it('AuthorizationHeaderMalformed names the region from the error body', async () => {
    const error = await sdkErrorFor({
      statusCode: 400,
      body: s3ErrorXml(
        'AuthorizationHeaderMalformed',
        "the region 'ap-south-1' is wrong; expecting 'us-east-2'",
        {
          Region: 'us-east-2',
        },
      ),
    });
    expect(diagnose(error, context)).toMatchObject({
      code: 'WRONG_REGION',
      message: expect.stringContaining('us-east-2'),
    });
  });

  it('a 301 without the region header still says the region is wrong and how to find it', () => {
    const d = diagnose(s3Error('PermanentRedirect', 301, ''), context);
    expect(d.code).toBe('WRONG_REGION');
    expect(d.message).toContain('aws s3api get-bucket-location --bucket customer-data-lake');
  });

  it('NoSuchBucket', async () => {
    const modeled = new NoSuchBucket({
      $metadata: { httpStatusCode: 404 },
      message: 'The specified bucket does not exist',
    });
    expect(diagnose(modeled, context).code).toBe('BUCKET_NOT_FOUND');
    const deserialized = await sdkErrorFor({
      statusCode: 404,
      body: s3ErrorXml('NoSuchBucket', 'The specified bucket does not exist'),
    });
    expect(diagnose(deserialized, context).message).toBe(
      'bucket customer-data-lake does not exist: create it in ap-south-1, or correct bucketName',
    );
  });

  it('S3 reporting a disabled KMS key (KMS.DisabledException)', async () => {
    const error = await sdkErrorFor({
      statusCode: 400,
      body: s3ErrorXml('KMS.DisabledException', 'key is disabled'),
    });
    expect(diagnose(error, context).code).toBe('KMS_KEY_DISABLED');
  });

  it('SlowDown and throttling are transient', async () => {
    const slowDown = await sdkErrorFor({
      statusCode: 503,
      body: s3ErrorXml('SlowDown', 'Please reduce your request rate.'),
    });
    expect(explain(slowDown, context)).toMatchObject({ code: 'SLOW_DOWN', transient: true });
    expect(isTransient(slowDown)).toBe(true);
    const throttled = new KMSServiceException({
      name: 'ThrottlingException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message: 'Rate exceeded',
    });
    expect(explain(throttled, context)).toMatchObject({ code: 'THROTTLED', transient: true });
  });

  it('5xx and network failures are transient, not the customer’s problem', () => {
    expect(
      explain(s3Error('InternalError', 500, 'We encountered an internal error.'), context),
    ).toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      transient: true,
    });
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(isTransient(reset)).toBe(true);
  });
});

describe('diagnosis of KMS failures', () => {
  it('DisabledException, KMSInvalidStateException: the key is disabled or pending deletion', () => {
    for (const error of [
      new DisabledException({ $metadata: { httpStatusCode: 400 }, message: 'arn is disabled.' }),
      new KMSInvalidStateException({ $metadata: { httpStatusCode: 400 }, message: 'pending deletion' }),
    ]) {
      const d = diagnose(error, context, 'KMS');
      expect(d.code).toBe('KMS_KEY_DISABLED');
      expect(d.message).toContain(`aws kms enable-key --key-id ${connection.kmsKeyArn}`);
    }
  });

  it('NotFoundException: the key does not exist', () => {
    const d = diagnose(
      new NotFoundException({ $metadata: { httpStatusCode: 400 }, message: 'Key not found' }),
      context,
    );
    expect(d.code).toBe('KMS_KEY_NOT_FOUND');
    expect(d.message).toContain('correct kmsKeyArn');
  });

  it('AccessDeniedException from DescribeKey prints the key-policy statement', () => {
    const error = new KMSServiceException({
      name: 'AccessDeniedException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message: 'not authorized',
    });
    const d = diagnose(error, context, 'KMS');
    expect(d.code).toBe('KMS_ACCESS_DENIED');
    expect(d.message).toContain(
      '"Action":["kms:GenerateDataKey","kms:Encrypt","kms:Decrypt","kms:DescribeKey"]',
    );
  });
});

describe('diagnosis of STS failures', () => {
  const customerRole = 'arn:aws:iam::444455556666:role/event-export-writer';
  const assumeRole = {
    ...context,
    connection: { ...connection, assumeRoleArn: customerRole, externalId: 'very-secret-external-id' },
  };

  it("AccessDenied on the customer's role: print its trust policy, never the external id", () => {
    const error = new STSServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: `User: arn:aws:sts::111122223333:assumed-role/s3-event-export-exporter/export-conn_x is not authorized to perform: sts:AssumeRole on resource: ${customerRole}`,
    });
    const d = diagnose(error, assumeRole);
    expect(d.code).toBe('ASSUME_ROLE_DENIED');
    expect(d.message).toContain('"sts:ExternalId":"<the externalId of this connection>"');
    expect(d.message).not.toContain('very-secret-external-id');
  });

  it('AccessDenied on our own exporter role is an operator problem', () => {
    const error = new STSServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: `User: arn:aws:sts::111122223333:assumed-role/exporter-fn-role/x is not authorized to perform: sts:TagSession on resource: ${ROLE}`,
    });
    expect(diagnose(error, context).code).toBe('EXPORTER_ROLE_UNAVAILABLE');
  });
});

describe('our own refusals and the unknown', () => {
  it('an invalid PGP key keeps its message (field + fix)', async () => {
    const error = new InvalidPgpKeyError(
      'EXPIRED',
      'pgpPublicKey: the key of ABC expired on 2021-01-01T00:00:00Z; extend it',
    );
    expect(diagnose(error, context)).toMatchObject({ code: 'INVALID_PGP_KEY', message: error.message });
  });

  it('an unknown failure names the error code and request id but never its message (may hold data)', () => {
    const error = Object.assign(s3Error('WeirdFailure', 400, 'record {"email":"a@b.c"} broke'), {
      $metadata: { httpStatusCode: 400, requestId: 'REQ123' },
    });
    const d = diagnose(error, { ...context, windowEnd: new Date('2026-03-01T10:00:00Z') });
    expect(d.code).toBe('UNKNOWN');
    expect(d.message).toContain('WeirdFailure');
    expect(d.message).toContain('REQ123');
    expect(d.message).not.toContain('a@b.c');
    expect(d.windowEnd).toBe('2026-03-01T10:00:00.000Z');
    expect(diagnose(new SyntaxError('Unexpected token in {"secret": 1}'), context).message).not.toContain(
      'secret',
    );
  });
});

describe('translation of SDK errors (adapters/aws-errors.ts)', () => {
  it('gives a typed error with its name set and the SDK error as its cause; ours pass through', () => {
    const sdk = new NoSuchBucket({
      $metadata: { httpStatusCode: 404 },
      message: 'The specified bucket does not exist',
    });
    const typed = translateAwsError(sdk);
    expect(typed).toBeInstanceOf(BucketNotFoundError);
    expect(typed).toBeInstanceOf(DestinationError);
    expect(typed).toBeInstanceOf(DomainError);
    expect(typed).toMatchObject({
      name: 'BucketNotFoundError',
      code: 'NoSuchBucket',
      status: 404,
      cause: sdk,
    });
    expect(translateAwsError(typed)).toBe(typed);
    const ours = new InvalidPgpKeyError('EXPIRED', 'pgpPublicKey: expired');
    expect(translateAwsError(ours)).toBe(ours);
    const syntax = new SyntaxError('Unexpected token');
    expect(translateAwsError(syntax)).toBe(syntax);
  });

  it('the diagnosis maps typed errors only: an SDK error that no adapter translated is not parsed', () => {
    const raw = new NoSuchBucket({
      $metadata: { httpStatusCode: 404 },
      message: 'The specified bucket does not exist',
    });
    expect(diagnoseTyped(raw, context).code).toBe('UNKNOWN');
    expect(diagnose(raw, context).code).toBe('BUCKET_NOT_FOUND');
  });
});
