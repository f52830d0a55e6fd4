/**
 * SDK clients are made once per container and reused, not per call: the job queue's SQS
 * client, the KMS inspector's clients, the STS client that chains into customer roles.
 */
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { CredentialsOption } from '../../lambdas/adapters/aws-clients.ts';
import { createKmsKeyInspector } from '../../lambdas/adapters/kms-key-inspector.ts';
import {
  createS3ClientProvider,
  type SessionCredentials,
} from '../../lambdas/adapters/s3-client-provider.ts';
import { lazySqsJobQueue } from '../../lambdas/adapters/sqs-job-queue.ts';
import type { SinkTarget } from '../../lambdas/ports/index.ts';

const sqs = mockClient(SQSClient);
const kms = mockClient(KMSClient);
const sts = mockClient(STSClient);
afterEach(() => {
  sqs.reset();
  kms.reset();
  sts.reset();
});

const target: SinkTarget = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA',
  bucketName: 'customer-data-lake',
  bucketRegion: 'ap-south-1',
};
const KEY = 'arn:aws:kms:ap-south-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const job = (n: number) => ({
  connectionId: `conn_${n}`,
  windowEnd: '2026-03-01T00:15:00.000Z',
  reason: 'schedule' as const,
});

describe('job queue', () => {
  it('one SQS client for every enqueue of the container', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    let made = 0;
    const queue = lazySqsJobQueue(() => {
      made += 1;
      return new SQSClient({ region: 'us-east-1' });
    }, 'https://sqs.us-east-1.amazonaws.com/111122223333/jobs');
    await queue.enqueue([job(1)]);
    await queue.enqueue([job(2)]);
    await queue.enqueue(Array.from({ length: 12 }, (_, i) => job(i)));
    expect(made).toBe(1);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(4);
  });

  it('without a queue URL, enqueue fails with the variable to set, and no client is made', async () => {
    let made = 0;
    const queue = lazySqsJobQueue(() => {
      made += 1;
      return new SQSClient({ region: 'us-east-1' });
    }, undefined);
    await expect(queue.enqueue([job(1)])).rejects.toThrow(/JOB_QUEUE_URL is not set/);
    expect(made).toBe(0);
  });
});

describe('KMS key inspector', () => {
  const credentialsOf = (id: string): SessionCredentials => ({
    accessKeyId: id,
    secretAccessKey: 'secret',
    sessionToken: 'token',
    expiration: new Date(Date.now() + 3600_000),
  });

  it('one client per region and connection, kept across calls; it asks for the current session credentials', async () => {
    kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', KeyState: 'Enabled', Enabled: true } });
    const made: { region: string; credentials?: CredentialsOption }[] = [];
    let session = credentialsOf('AKIDFIRST');
    const inspector = createKmsKeyInspector({
      credentialsFor: async () => session,
      createKmsClient: (options) => {
        made.push(options);
        return new KMSClient({
          region: options.region,
          ...(options.credentials ? { credentials: options.credentials } : {}),
        });
      },
    });
    await inspector.describeKey(target, KEY);
    await inspector.describeKey(target, KEY);
    expect(made.map((m) => m.region)).toEqual(['ap-south-1']);
    await inspector.describeKey({ ...target, connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB' }, KEY);
    expect(made).toHaveLength(2);
    expect(kms.commandCalls(DescribeKeyCommand)).toHaveLength(3);

    // The session was renewed: the kept client signs with the new credentials.
    session = credentialsOf('AKIDRENEWED');
    const provider = made[0]!.credentials as () => Promise<{ accessKeyId: string }>;
    expect((await provider()).accessKeyId).toBe('AKIDRENEWED');
  });
});

describe('assume-role mode', () => {
  it("one STS client per connection chains into the customer's role, also when its session is renewed", async () => {
    let now = new Date('2026-03-01T10:00:00Z');
    let issued = 0;
    sts.on(AssumeRoleCommand).callsFake(() => {
      issued += 1;
      return {
        Credentials: {
          AccessKeyId: `AKID${issued}`,
          SecretAccessKey: 's',
          SessionToken: 't',
          Expiration: new Date(now.getTime() + 3600_000),
        },
      };
    });
    let made = 0;
    const provider = createS3ClientProvider({
      region: 'us-east-1',
      baseCredentials: { accessKeyId: 'AKIDBASE', secretAccessKey: 'base' },
      exporterRoleArn: 'arn:aws:iam::111122223333:role/s3-event-export-exporter',
      clock: { now: () => now },
      createStsClient: (options) => {
        made += 1;
        return new STSClient({
          region: options.region,
          ...(options.credentials ? { credentials: options.credentials } : {}),
        });
      },
    });
    const withRole = {
      ...target,
      assumeRoleArn: 'arn:aws:iam::444455556666:role/event-export-writer',
      externalId: 'ext-0123456789',
    };
    await provider.credentialsFor(withRole);
    now = new Date(now.getTime() + 2 * 3600_000); // both sessions expired: assume both again
    const renewed = await provider.credentialsFor(withRole);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(4);
    expect(renewed?.accessKeyId).toBe('AKID4');
    // The chained call was signed with the renewed exporter session.
    const chained = sts.commandCalls(AssumeRoleCommand)[3]!.thisValue as STSClient;
    expect((await chained.config.credentials()).accessKeyId).toBe('AKID3');
    // The function's own STS client and one for the connection's exporter session: no more.
    expect(made).toBe(2);
  });
});
