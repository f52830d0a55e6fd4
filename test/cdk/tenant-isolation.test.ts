/**
 * Tenant isolation, evaluated: the documents customers apply (lambdas/domain/policies.ts) and
 * the exporter role's policies as synthesized from the stack (lib/export.ts) are run through an
 * IAM policy evaluator (@cloud-copilot/iam-simulate) for concrete requests. iam.test.ts compares
 * the statements as text; this file shows what they allow and deny together.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONNECTION_SESSION_TAG } from '../../lambdas/definitions.ts';
import { dataObjectKey, manifestObjectKey } from '../../lambdas/domain/object-keys.ts';
import {
  assumeRoleTrustPolicy,
  bucketPolicy,
  kmsKeyPolicyStatement,
  type PolicyDocument,
  type PolicyStatement,
  type PolicySubject,
} from '../../lambdas/domain/policies.ts';
import { type Statement, type Synthesized, statementsOfRole, synthesize } from './synth.ts';

const OPERATOR = '111122223333';
const CUSTOMER_A = '444455556666';
const CUSTOMER_B = '777788889999';
const REGION = 'eu-west-1';
const EXPORTER_ROLE = `arn:aws:iam::${OPERATOR}:role/s3-event-export-exporter`;
const KEY_A = `arn:aws:kms:${REGION}:${CUSTOMER_A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const KEY_B = `arn:aws:kms:${REGION}:${CUSTOMER_B}:key/0000bbbb-12ab-34cd-56ef-1234567890ab`;
/** A key of customer A that is not on the deployment's allowlist. */
const KEY_OFF_LIST = `arn:aws:kms:${REGION}:${CUSTOMER_A}:key/9999ffff-12ab-34cd-56ef-1234567890ab`;
const VIA_S3 = `s3.${REGION}.amazonaws.com`;

const connectionA: PolicySubject = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA',
  connectionName: 'daily-events',
  folderPath: 'exports',
  bucketName: 'customer-a-lake',
  bucketRegion: REGION,
  kmsKeyArn: KEY_A,
};
/** A second connection of customer A, in the same bucket. */
const connectionA2: PolicySubject = {
  ...connectionA,
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AA2',
  connectionName: 'hourly',
};
const connectionB: PolicySubject = {
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB',
  connectionName: 'events',
  bucketName: 'customer-b-lake',
  bucketRegion: REGION,
  kmsKeyArn: KEY_B,
};

const WINDOW_END = new Date('2026-03-01T00:00:00Z');
const objectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;
const dataArn = (subject: PolicySubject, bucket = subject.bucketName) =>
  objectArn(bucket, dataObjectKey(subject, WINDOW_END));

/** A session of the exporter role, tagged as the exporter tags it (or untagged). */
interface Session {
  principal: string;
  tags: Record<string, string>;
}
const sessionOf = (connectionId: string | undefined): Session => ({
  principal: `arn:aws:sts::${OPERATOR}:assumed-role/s3-event-export-exporter/export-${connectionId ?? 'untagged'}`,
  tags: connectionId ? { [`aws:PrincipalTag/${CONNECTION_SESSION_TAG}`]: connectionId } : {},
});
const sessionA = sessionOf(connectionA.connectionId);
const sessionB = sessionOf(connectionB.connectionId);
const untagged = sessionOf(undefined);

// ------------------------------------------------------------ the synthesized exporter role

/** CloudFormation intrinsics of the template, resolved for a stack in OPERATOR / REGION. */
function resolve(value: unknown, x: Synthesized): unknown {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((v) => resolve(v, x));
  if (!value || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  if ('Ref' in o) {
    const refs: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::AccountId': OPERATOR,
      'AWS::Region': REGION,
    };
    const ref = refs[o['Ref'] as string];
    if (!ref) throw new Error(`unresolved Ref ${String(o['Ref'])}`);
    return ref;
  }
  if ('Fn::GetAtt' in o) {
    const [id] = o['Fn::GetAtt'] as [string, string];
    const resource = x.template.toJSON().Resources[id];
    switch (resource?.Type) {
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${id.toLowerCase()}`;
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${REGION}:${OPERATOR}:key/${id}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${OPERATOR}:role/${resource.Properties.RoleName ?? id}`;
      default:
        return `arn:aws:${String(resource?.Type).split('::')[1]?.toLowerCase()}:${REGION}:${OPERATOR}:${id}`;
    }
  }
  if ('Fn::Join' in o) {
    const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => resolve(p, x)).join(separator);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolve(v, x)]));
}

let exporterRolePolicy: PolicyDocument;
let stagingBucketArn: string;
beforeAll(() => {
  const x = synthesize({ kmsKeyAllowlist: [KEY_A, KEY_B] });
  const statements = statementsOfRole(x.template, x.logicalId(x.stack.export.exporterRole));
  exporterRolePolicy = {
    Version: '2012-10-17',
    Statement: statements.map((st: Statement) => resolve(st, x) as PolicyStatement),
  };
  stagingBucketArn = resolve(x.arnOf(x.stack.staging.bucket), x) as string;
  expect(x.template.toJSON().Resources[x.logicalId(x.stack.export.exporterRole)].Properties.RoleName).toBe(
    's3-event-export-exporter',
  );
});

// ------------------------------------------------------------ evaluation

interface Request {
  session: Session;
  action: string;
  resource: string;
  /** The account owning the resource (`aws:ResourceAccount`). */
  resourceAccount: string;
  /** Bucket policy, key policy or trust policy; none = the resource has none. */
  resourcePolicy?: PolicyDocument | undefined;
  context?: Record<string, string>;
}

type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

async function decide(request: Request): Promise<Decision> {
  const simulation: Simulation = {
    request: {
      principal: request.session.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.resourceAccount },
      contextVariables: {
        'aws:PrincipalAccount': OPERATOR,
        'aws:PrincipalArn': EXPORTER_ROLE,
        'aws:ResourceAccount': request.resourceAccount,
        ...request.session.tags,
        ...request.context,
      },
    },
    identityPolicies: [{ name: 'ExporterRoleDefaultPolicy', policy: exporterRolePolicy }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(request.resourcePolicy ? { resourcePolicy: request.resourcePolicy } : {}),
  };
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') throw new Error(`simulation refused: ${JSON.stringify(result.errors)}`);
  return result.overallResult as Decision;
}

const policyA = bucketPolicy(connectionA, EXPORTER_ROLE);
const policyB = bucketPolicy(connectionB, EXPORTER_ROLE);
/** Customer A's bucket holding both of A's connections: one policy, two statements. */
const policyA12: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [...policyA.Statement, ...bucketPolicy(connectionA2, EXPORTER_ROLE).Statement],
};

const put = (session: Session, resource: string, resourceAccount: string, resourcePolicy?: PolicyDocument) =>
  decide({ session, action: 's3:PutObject', resource, resourceAccount, resourcePolicy });

describe("bucket policy × exporter role: a connection's session writes its own prefix only", () => {
  it("A's tagged session may write A's data parts and manifest, and abort its multipart uploads", async () => {
    expect(await put(sessionA, dataArn(connectionA), CUSTOMER_A, policyA)).toBe('Allowed');
    const manifest = objectArn(connectionA.bucketName, manifestObjectKey(connectionA, WINDOW_END));
    expect(await put(sessionA, manifest, CUSTOMER_A, policyA)).toBe('Allowed');
    expect(
      await decide({
        session: sessionA,
        action: 's3:AbortMultipartUpload',
        resource: dataArn(connectionA),
        resourceAccount: CUSTOMER_A,
        resourcePolicy: policyA,
      }),
    ).toBe('Allowed');
  });

  it("A's session is denied B's prefix in B's bucket", async () => {
    expect(await put(sessionA, dataArn(connectionB), CUSTOMER_B, policyB)).toBe('ImplicitlyDenied');
  });

  it("A's session is denied B's bucket, even under A's own prefix there", async () => {
    expect(await put(sessionA, dataArn(connectionA, connectionB.bucketName), CUSTOMER_B, policyB)).toBe(
      'ImplicitlyDenied',
    );
  });

  it("A's session is denied the prefix of another connection in the same bucket, and the rest of the bucket", async () => {
    expect(await put(sessionA, dataArn(connectionA), CUSTOMER_A, policyA12)).toBe('Allowed');
    expect(await put(sessionA, dataArn(connectionA2), CUSTOMER_A, policyA12)).toBe('ImplicitlyDenied');
    expect(
      await put(sessionA, objectArn(connectionA.bucketName, 'other/file.json.gz'), CUSTOMER_A, policyA12),
    ).toBe('ImplicitlyDenied');
  });

  it("an untagged session, or one tagged for B, is denied A's prefix", async () => {
    expect(await put(untagged, dataArn(connectionA), CUSTOMER_A, policyA)).toBe('ImplicitlyDenied');
    expect(await put(sessionB, dataArn(connectionA), CUSTOMER_A, policyA)).toBe('ImplicitlyDenied');
  });
});

describe("KMS key policy × exporter role: a connection's session uses its own key, via S3 only", () => {
  /** A key policy as a customer keeps it: their account administers the key, plus our statement. */
  const keyPolicy = (owner: string, ...statements: PolicyStatement[]): PolicyDocument => ({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'KeyAdministration',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${owner}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
      ...statements,
    ],
  });
  const keyPolicyA = keyPolicy(CUSTOMER_A, kmsKeyPolicyStatement(connectionA, EXPORTER_ROLE));
  const keyPolicyB = keyPolicy(CUSTOMER_B, kmsKeyPolicyStatement(connectionB, EXPORTER_ROLE));
  const useKey = (session: Session, key: string, owner: string, policy: PolicyDocument, viaS3 = true) =>
    decide({
      session,
      action: 'kms:GenerateDataKey',
      resource: key,
      resourceAccount: owner,
      resourcePolicy: policy,
      context: viaS3 ? { 'kms:ViaService': VIA_S3 } : {},
    });

  it("A's session may use A's key through S3", async () => {
    expect(await useKey(sessionA, KEY_A, CUSTOMER_A, keyPolicyA)).toBe('Allowed');
    for (const action of ['kms:Encrypt', 'kms:Decrypt']) {
      expect(
        await decide({
          session: sessionA,
          action,
          resource: KEY_A,
          resourceAccount: CUSTOMER_A,
          resourcePolicy: keyPolicyA,
          context: { 'kms:ViaService': VIA_S3 },
        }),
      ).toBe('Allowed');
    }
  });

  it("A's session is denied A's key outside S3", async () => {
    expect(await useKey(sessionA, KEY_A, CUSTOMER_A, keyPolicyA, false)).toBe('ImplicitlyDenied');
  });

  it("A's session is denied B's key, although both keys are on the allowlist", async () => {
    expect(await useKey(sessionA, KEY_B, CUSTOMER_B, keyPolicyB)).toBe('ImplicitlyDenied');
    expect(await useKey(sessionB, KEY_B, CUSTOMER_B, keyPolicyB)).toBe('Allowed');
  });

  it('a key that is not on the allowlist is denied, even when its policy trusts the exporter role outright', async () => {
    const open = keyPolicy(CUSTOMER_A, {
      Sid: 'TrustsTheExporterRole',
      Effect: 'Allow',
      Principal: { AWS: EXPORTER_ROLE },
      Action: ['kms:GenerateDataKey'],
      Resource: '*',
    });
    expect(await useKey(sessionA, KEY_OFF_LIST, CUSTOMER_A, open)).toBe('ImplicitlyDenied');
  });

  it("an untagged session is denied A's key", async () => {
    expect(await useKey(untagged, KEY_A, CUSTOMER_A, keyPolicyA)).toBe('ImplicitlyDenied');
  });
});

describe("trust policy × exporter role: assume-role mode reaches the connection's role only", () => {
  const role = `arn:aws:iam::${CUSTOMER_A}:role/event-export-writer`;
  const withRole: PolicySubject = { ...connectionA, assumeRoleArn: role };
  const trust = assumeRoleTrustPolicy(withRole, EXPORTER_ROLE, 'ext-a-0123456789');
  const assume = (session: Session, externalId: string, arn = role, account = CUSTOMER_A, policy = trust) =>
    decide({
      session,
      action: 'sts:AssumeRole',
      resource: arn,
      resourceAccount: account,
      resourcePolicy: policy,
      context: { 'sts:ExternalId': externalId },
    });

  it("A's tagged session with A's external id may assume A's role", async () => {
    expect(await assume(sessionA, 'ext-a-0123456789')).toBe('Allowed');
  });

  it('a wrong external id, a session tagged for B, or an untagged session is denied', async () => {
    expect(await assume(sessionA, 'ext-guessed')).toBe('ImplicitlyDenied');
    expect(await assume(sessionB, 'ext-a-0123456789')).toBe('ImplicitlyDenied');
    expect(await assume(untagged, 'ext-a-0123456789')).toBe('ImplicitlyDenied');
  });
});

describe("the operator's own account is out of reach of the exporter role", () => {
  const ownBucketObject = objectArn('operator-analytics', `${connectionA.connectionName}/x.json.gz`);
  /** A bucket policy of the operator's account that names the exporter role (as one might by mistake). */
  const naming = (resource: string): PolicyDocument => ({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Mistake',
        Effect: 'Allow',
        Principal: { AWS: EXPORTER_ROLE },
        Action: ['s3:PutObject'],
        Resource: resource,
      },
    ],
  });

  it('no write into a bucket of our account: without a bucket policy (same account needs none), or with one naming the role', async () => {
    expect(await put(sessionA, ownBucketObject, OPERATOR)).not.toBe('Allowed');
    expect(await put(sessionA, ownBucketObject, OPERATOR, naming(ownBucketObject))).toBe('ExplicitlyDenied');
    expect(await put(sessionA, `${stagingBucketArn}/events/x`, OPERATOR)).toBe('ExplicitlyDenied');
    // A customer bucket is still writable: the condition is on the account, nothing else.
    expect(await put(sessionA, dataArn(connectionA), CUSTOMER_A, policyA)).toBe('Allowed');
  });

  it('no role of our account can be assumed, even one whose trust policy names the exporter role', async () => {
    const ownRole = `arn:aws:iam::${OPERATOR}:role/operator-admin`;
    const trustsExporter: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [
        { Sid: 'Mistake', Effect: 'Allow', Principal: { AWS: EXPORTER_ROLE }, Action: 'sts:AssumeRole' },
      ],
    };
    const decision = await decide({
      session: sessionA,
      action: 'sts:AssumeRole',
      resource: ownRole,
      resourceAccount: OPERATOR,
      resourcePolicy: trustsExporter,
    });
    expect(decision).toBe('ExplicitlyDenied');
  });
});
