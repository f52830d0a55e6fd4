import { AssumeRoleCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createS3ClientProvider, roleSessionName } from '../../lambdas/adapters/s3-client-provider.ts';
import { CONNECTION_SESSION_TAG } from '../../lambdas/definitions.ts';
import type { Clock, SinkTarget } from '../../lambdas/ports/index.ts';

const EXPORTER_ROLE = 'arn:aws:iam::111122223333:role/s3-event-export-exporter';
const CUSTOMER_ROLE = 'arn:aws:iam::444455556666:role/event-export-writer';
const BASE = { accessKeyId: 'AKIDBASE', secretAccessKey: 'base-secret' };

const target: SinkTarget = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  bucketName: 'customer-data-lake',
  bucketRegion: 'ap-south-1',
};

class ManualClock implements Clock {
  constructor(private at: Date) {}
  now(): Date {
    return new Date(this.at);
  }
  advance(ms: number): void {
    this.at = new Date(this.at.getTime() + ms);
  }
}

const sts = mockClient(STSClient);
let clock: ManualClock;
let issued = 0;

/** STS answers with fresh one-hour credentials (per the test clock) for whichever role is asked. */
function stsIssuesCredentials() {
  sts.on(AssumeRoleCommand).callsFake((input: AssumeRoleCommand['input']) => {
    issued += 1;
    const who = input.RoleArn === CUSTOMER_ROLE ? 'CUSTOMER' : 'EXPORTER';
    return {
      Credentials: {
        AccessKeyId: `AKID${who}${issued}`,
        SecretAccessKey: `secret-${issued}`,
        SessionToken: `token-${issued}`,
        Expiration: new Date(clock.now().getTime() + 3600_000),
      },
    };
  });
}

beforeEach(() => {
  sts.reset();
  issued = 0;
  clock = new ManualClock(new Date('2026-03-01T10:00:00Z'));
  stsIssuesCredentials();
});
afterEach(() => sts.reset());

function awsProvider() {
  return createS3ClientProvider({
    region: 'us-east-1',
    baseCredentials: BASE,
    exporterRoleArn: EXPORTER_ROLE,
    clock,
  });
}

describe('S3 clients for customer buckets', () => {
  it("assumes the exporter role with the connection id as a session tag, in the bucket's region", async () => {
    const provider = awsProvider();
    const client = await provider.clientFor(target);

    const calls = sts.commandCalls(AssumeRoleCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toMatchObject({
      RoleArn: EXPORTER_ROLE,
      RoleSessionName: roleSessionName(target.connectionId),
      Tags: [{ Key: CONNECTION_SESSION_TAG, Value: target.connectionId }],
    });
    expect(calls[0]!.args[0].input.TransitiveTagKeys).toBeUndefined();
    expect(await client.config.region()).toBe('ap-south-1');
    const credentials = await client.config.credentials();
    expect(credentials.accessKeyId).toBe('AKIDEXPORTER1');
    expect(credentials.sessionToken).toBe('token-1');
  });

  it('each connection gets its own tagged session and client; the same connection reuses both', async () => {
    const provider = awsProvider();
    const other = { ...target, connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0XYZ' };
    const first = await provider.clientFor(target);
    const again = await provider.clientFor(target);
    const second = await provider.clientFor(other);

    expect(again).toBe(first);
    expect(second).not.toBe(first);
    const tags = sts.commandCalls(AssumeRoleCommand).map((call) => call.args[0].input.Tags?.[0]?.Value);
    expect(tags).toEqual([target.connectionId, other.connectionId]);
  });

  it('caches credentials until five minutes before they expire, then assumes the role again', async () => {
    const provider = awsProvider();
    const first = await provider.credentialsFor(target);
    clock.advance(54 * 60_000); // 6 minutes before expiry
    expect(await provider.credentialsFor(target)).toEqual(first);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(1);

    clock.advance(2 * 60_000); // 4 minutes before expiry
    const renewed = await provider.credentialsFor(target);
    expect(renewed?.accessKeyId).toBe('AKIDEXPORTER2');
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(2);
  });

  it('concurrent requests for one connection share one AssumeRole call', async () => {
    const provider = awsProvider();
    await Promise.all([
      provider.clientFor(target),
      provider.clientFor(target),
      provider.credentialsFor(target),
    ]);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(1);
  });

  it("assume-role mode: assumes the customer's role with the external id, from the tagged exporter session", async () => {
    const provider = awsProvider();
    const withRole = { ...target, assumeRoleArn: CUSTOMER_ROLE, externalId: 'ext-0123456789' };
    const client = await provider.clientFor(withRole);

    const calls = sts.commandCalls(AssumeRoleCommand);
    expect(calls.map((c) => c.args[0].input.RoleArn)).toEqual([EXPORTER_ROLE, CUSTOMER_ROLE]);
    expect(calls[0]!.args[0].input.Tags).toEqual([
      { Key: CONNECTION_SESSION_TAG, Value: target.connectionId },
    ]);
    expect(calls[1]!.args[0].input).toMatchObject({
      RoleArn: CUSTOMER_ROLE,
      ExternalId: 'ext-0123456789',
      RoleSessionName: roleSessionName(target.connectionId),
    });
    // The second call was signed with the exporter session, not the function's own credentials.
    const chainedSts = calls[1]!.thisValue as STSClient;
    expect((await chainedSts.config.credentials()).accessKeyId).toBe('AKIDEXPORTER1');
    expect((await client.config.credentials()).accessKeyId).toBe('AKIDCUSTOMER2');
  });

  it('a changed external id is a new identity, not a reused session', async () => {
    const provider = awsProvider();
    const withRole = { ...target, assumeRoleArn: CUSTOMER_ROLE, externalId: 'ext-0123456789' };
    const a = await provider.clientFor(withRole);
    const b = await provider.clientFor({ ...withRole, externalId: 'ext-9876543210' });
    expect(b).not.toBe(a);
    const externalIds = sts
      .commandCalls(AssumeRoleCommand)
      .map((c) => c.args[0].input.ExternalId)
      .filter(Boolean);
    expect(externalIds).toEqual(['ext-0123456789', 'ext-9876543210']);
  });

  it("an STS refusal reaches the caller before any upload (for the connection's diagnosis)", async () => {
    sts.on(AssumeRoleCommand).rejects(
      new STSServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'not authorized to perform: sts:AssumeRole',
      }),
    );
    // Translated by the provider: a typed STS refusal, the SDK's error as its cause.
    await expect(awsProvider().clientFor(target)).rejects.toMatchObject({
      name: 'DestinationAccessDeniedError',
      code: 'AccessDenied',
      facts: { refused: 'STS' },
      cause: { name: 'AccessDenied' },
    });
  });

  it('locally (no exporter role) returns a plain client to the endpoint, without STS', async () => {
    const provider = createS3ClientProvider({
      region: 'us-east-1',
      baseCredentials: BASE,
      endpoint: 'http://127.0.0.1:4569',
      clock,
    });
    const client = await provider.clientFor({ ...target, assumeRoleArn: CUSTOMER_ROLE, externalId: 'x1' });
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    expect(await provider.credentialsFor(target)).toBeUndefined();
    expect((await client.config.credentials()).accessKeyId).toBe('AKIDBASE');
    const endpoint = await client.config.endpoint?.();
    expect(endpoint?.hostname).toBe('127.0.0.1');
    expect(await client.config.region()).toBe('ap-south-1');
  });
});
