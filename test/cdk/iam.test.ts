/**
 * IAM, statement by statement. Each role's policy is compared whole, so an added
 * action, resource or statement fails here; and a guard over every Allow in the
 * template fails on any wildcard action, `Resource: *`, or wildcard resource not
 * on the reviewed list.
 */
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONNECTION_SESSION_TAG } from '../../lambdas/definitions.ts';
import {
  allIdentityStatements,
  asList,
  joinArn,
  type Statement,
  type Synthesized,
  statementsOfRole,
  synthesize,
} from './synth.ts';

const KEY_A = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_B = 'arn:aws:kms:us-east-1:444455556666:key/mrk-0123456789abcdef0123456789abcdef';
const partitionArn = (rest: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]] });

let s: Synthesized;
let withKeys: Synthesized;
beforeAll(() => {
  s = synthesize();
  withKeys = synthesize({
    kmsKeyAllowlist: [KEY_A, KEY_B],
    assumeRoleArnPattern: 'arn:aws:iam::*:role/s3-export-*',
  });
});

const logs = (x: Synthesized, group: IConstruct): Statement => ({
  Sid: 'WriteOwnLogs',
  Effect: 'Allow',
  Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
  Resource: x.arnOf(group),
});

describe('the exporter role customers grant', () => {
  const role = (x: Synthesized) => x.template.toJSON().Resources[x.logicalId(x.stack.export.exporterRole)];

  it('has the fixed name s3-event-export-exporter and one-hour sessions', () => {
    expect(role(s).Properties.RoleName).toBe('s3-event-export-exporter');
    expect(role(s).Properties.MaxSessionDuration).toBe(3600);
    expect(role(s).Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('trusts only the exporter and connection-test functions, only for sessions tagged with a connection id', () => {
    expect(role(s).Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'TaggedSessionsOfExportFunctions',
          Effect: 'Allow',
          Principal: {
            AWS: [s.arnOf(s.stack.export.exporter.role), s.arnOf(s.stack.export.connectionTest.role)],
          },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Condition: {
            StringLike: { [`aws:RequestTag/${CONNECTION_SESSION_TAG}`]: 'conn_*' },
            'ForAllValues:StringEquals': { 'aws:TagKeys': [CONNECTION_SESSION_TAG] },
          },
        },
      ],
    });
  });

  it('operatorRoleArns from context join the trusted principals, under the same tag condition', () => {
    const operator = 'arn:aws:iam::111122223333:role/platform-operator';
    const x = synthesize({ operatorRoleArns: operator });
    const [statement] = role(x).Properties.AssumeRolePolicyDocument.Statement;
    expect(statement.Principal.AWS).toEqual([
      x.arnOf(x.stack.export.exporter.role),
      x.arnOf(x.stack.export.connectionTest.role),
      operator,
    ]);
    expect(statement.Condition).toEqual(role(s).Properties.AssumeRolePolicyDocument.Statement[0].Condition);
  });

  const ownAccount = { 'aws:ResourceAccount': { Ref: 'AWS::AccountId' } };
  const writeCustomerBuckets: Statement = {
    Sid: 'WriteIntoCustomerBuckets',
    Effect: 'Allow',
    Action: ['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:PutObject'],
    Resource: partitionArn(':s3:::*/*'),
    Condition: { StringNotEquals: ownAccount },
  };
  const neverOwnAccountBuckets: Statement = {
    Sid: 'NeverOurOwnAccountBuckets',
    Effect: 'Deny',
    Action: ['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:PutObject'],
    Resource: partitionArn(':s3:::*/*'),
    Condition: { StringEquals: ownAccount },
  };
  const assumeCustomerRoles = (pattern: string): Statement[] => [
    {
      Sid: 'AssumeCustomerRoles',
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Resource: pattern,
      Condition: { StringNotEquals: ownAccount },
    },
    {
      Sid: 'NeverOurOwnAccountRoles',
      Effect: 'Deny',
      Action: 'sts:AssumeRole',
      Resource: {
        'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', { Ref: 'AWS::AccountId' }, ':role/*']],
      },
    },
  ];
  const neverOwnBuckets = (x: Synthesized): Statement => ({
    Sid: 'NeverOurOwnBuckets',
    Effect: 'Deny',
    Action: 's3:*',
    Resource: [
      x.arnOf(x.stack.staging.accessLogBucket),
      x.arnOf(x.stack.staging.bucket),
      joinArn(x.arnOf(x.stack.staging.accessLogBucket), '/*'),
      joinArn(x.arnOf(x.stack.staging.bucket), '/*'),
    ],
  });

  it("with an empty KMS allowlist: write objects (multipart included) anywhere but our account's buckets; no KMS at all", () => {
    expect(statementsOfRole(s.template, s.logicalId(s.stack.export.exporterRole))).toEqual([
      writeCustomerBuckets,
      neverOwnAccountBuckets,
      neverOwnBuckets(s),
      ...assumeCustomerRoles('arn:aws:iam::*:role/*'),
    ]);
  });

  it('with allowlisted keys: use exactly those keys, via S3 only; DescribeKey on them directly', () => {
    expect(
      statementsOfRole(withKeys.template, withKeys.logicalId(withKeys.stack.export.exporterRole)),
    ).toEqual([
      writeCustomerBuckets,
      neverOwnAccountBuckets,
      neverOwnBuckets(withKeys),
      {
        Sid: 'UseAllowlistedKeysViaS3',
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
        Resource: [KEY_A, KEY_B],
        Condition: { StringLike: { 'kms:ViaService': 's3.*.amazonaws.com' } },
      },
      {
        Sid: 'DescribeAllowlistedKeys',
        Effect: 'Allow',
        Action: 'kms:DescribeKey',
        Resource: [KEY_A, KEY_B],
      },
      ...assumeCustomerRoles('arn:aws:iam::*:role/s3-export-*'),
    ]);
  });

  it('assume-role mode can be switched off (no sts:AssumeRole on customer roles)', () => {
    const off = synthesize({ assumeRoleArnPattern: '' });
    const sids = statementsOfRole(off.template, off.logicalId(off.stack.export.exporterRole)).map(
      (st) => st.Sid,
    );
    expect(sids).toEqual(['WriteIntoCustomerBuckets', 'NeverOurOwnAccountBuckets', 'NeverOurOwnBuckets']);
  });
});

describe('function roles: least privilege', () => {
  it('every function role is assumable by Lambda only and has no managed policy', () => {
    for (const fn of [
      s.stack.ingest.stager,
      s.stack.export.dispatcher,
      s.stack.export.exporter,
      s.stack.export.connectionTest,
    ]) {
      const role = s.template.toJSON().Resources[s.logicalId(fn.role)];
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
      ]);
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  /** The exporter's and the compactor's staging grants (it compacts a late slot itself). */
  function stagedReadsAndWrites(bucketArn: unknown, keyArn: unknown) {
    return [
      {
        Sid: 'ReadStagedData',
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [joinArn(bucketArn, '/segments/*'), joinArn(bucketArn, '/slots/*')],
      },
      {
        Sid: 'ListSegments',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['segments/*', 'slots/*'] } },
      },
      { Sid: 'DecryptStagedData', Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn },
      {
        Sid: 'WriteCompactedSlots',
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:PutObject'],
        Resource: [joinArn(bucketArn, '/quarantine/*'), joinArn(bucketArn, '/slots/*')],
      },
      { Sid: 'EncryptCompactedSlots', Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: keyArn },
    ];
  }

  it('compactor: read segments and slots, write slots and quarantine, nothing else', () => {
    const { staging, compaction, dataKey } = s.stack;
    expect(statementsOfRole(s.template, s.logicalId(compaction.compactor.role))).toEqual([
      logs(s, compaction.compactor.logGroup),
      ...stagedReadsAndWrites(s.arnOf(staging.bucket), s.arnOf(dataKey)),
    ]);
  });

  it('stager: write segments and its checkpoints; read the stream; report failures', () => {
    const { staging, ingest, tables, dataKey } = s.stack;
    const bucketArn = s.arnOf(staging.bucket);
    expect(statementsOfRole(s.template, s.logicalId(ingest.stager.role))).toEqual([
      logs(s, ingest.stager.logGroup),
      {
        Sid: 'StageSegments',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: joinArn(bucketArn, '/segments/*'),
      },
      {
        Sid: 'HeadMissingObjectsAs404',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': 'segments/*' } },
      },
      {
        Sid: 'EncryptStagedObjects',
        Effect: 'Allow',
        Action: 'kms:GenerateDataKey',
        Resource: s.arnOf(dataKey),
      },
      {
        Sid: 'ShardCheckpoints',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        Resource: s.arnOf(tables.stagingLedger),
      },
      {
        Effect: 'Allow',
        Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        Resource: s.arnOf(ingest.failureQueue),
      },
      {
        Effect: 'Allow',
        Action: [
          'kinesis:DescribeStream',
          'kinesis:DescribeStreamConsumer',
          'kinesis:DescribeStreamSummary',
          'kinesis:GetRecords',
          'kinesis:GetShardIterator',
          'kinesis:ListShards',
          'kinesis:ListStreams',
          'kinesis:SubscribeToShard',
        ],
        Resource: s.arnOf(ingest.stream),
      },
    ]);
  });

  it('dispatcher: query the byFrequency index, read/record state, enqueue jobs — nothing else', () => {
    const { export: ex, tables } = s.stack;
    expect(statementsOfRole(s.template, s.logicalId(ex.dispatcher.role))).toEqual([
      logs(s, ex.dispatcher.logGroup),
      {
        Sid: 'QueryConnectionsByFrequency',
        Effect: 'Allow',
        Action: 'dynamodb:Query',
        Resource: joinArn(s.arnOf(tables.connections), '/index/byFrequency'),
      },
      {
        Sid: 'ReadStateRecordInvalidRows',
        Effect: 'Allow',
        Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
        Resource: s.arnOf(tables.exportState),
      },
      {
        Sid: 'EnqueueExportJobs',
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Resource: s.arnOf(ex.jobQueue),
      },
    ]);
  });

  it('exporter: read staged events, its state and connection, consume jobs, publish outcomes, assume the exporter role', () => {
    const { export: ex, tables, staging, dataKey } = s.stack;
    const bucketArn = s.arnOf(staging.bucket);
    expect(statementsOfRole(s.template, s.logicalId(ex.exporter.role))).toEqual([
      logs(s, ex.exporter.logGroup),
      {
        Sid: 'AssumeExporterRoleTagged',
        Effect: 'Allow',
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Resource: s.arnOf(ex.exporterRole),
      },
      {
        Sid: 'ReadConnection',
        Effect: 'Allow',
        Action: 'dynamodb:GetItem',
        Resource: s.arnOf(tables.connections),
      },
      {
        Sid: 'ExportState',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Resource: s.arnOf(tables.exportState),
      },
      ...stagedReadsAndWrites(bucketArn, s.arnOf(dataKey)),
      {
        Sid: 'EnqueueContinuations',
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Resource: s.arnOf(ex.jobQueue),
      },
      {
        Sid: 'PublishExportOutcomes',
        Effect: 'Allow',
        Action: 'events:PutEvents',
        Resource: {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':events:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              ':event-bus/default',
            ],
          ],
        },
      },
      {
        Effect: 'Allow',
        Action: [
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
          'sqs:ReceiveMessage',
        ],
        Resource: s.arnOf(ex.jobQueue),
      },
    ]);
  });

  it('connection test: read the connection, record its diagnosis, assume the exporter role', () => {
    const { export: ex, tables } = s.stack;
    expect(statementsOfRole(s.template, s.logicalId(ex.connectionTest.role))).toEqual([
      logs(s, ex.connectionTest.logGroup),
      {
        Sid: 'AssumeExporterRoleTagged',
        Effect: 'Allow',
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Resource: s.arnOf(ex.exporterRole),
      },
      {
        Sid: 'ReadConnection',
        Effect: 'Allow',
        Action: 'dynamodb:GetItem',
        Resource: s.arnOf(tables.connections),
      },
      {
        Sid: 'RecordDiagnosis',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        Resource: s.arnOf(tables.exportState),
      },
    ]);
  });

  it('schedules: EventBridge Scheduler of this account may invoke the dispatcher and the connection sweep and write the schedule DLQ', () => {
    const { export: ex } = s.stack;
    const roleId = s.logicalId(ex.node.findChild('ScheduleRole'));
    const statements = statementsOfRole(s.template, roleId);
    expect(statements).toHaveLength(2);
    const [invoke, dlq] = statements;
    expect(invoke).toMatchObject({ Effect: 'Allow', Action: 'lambda:InvokeFunction' });
    const key = (r: unknown) => JSON.stringify(r);
    expect(((invoke?.Resource ?? []) as unknown[]).map(key).sort()).toEqual(
      [
        s.arnOf(ex.dispatcher.function),
        joinArn(s.arnOf(ex.dispatcher.function), ':*'),
        s.arnOf(ex.connectionSweep.function),
        joinArn(s.arnOf(ex.connectionSweep.function), ':*'),
      ]
        .map(key)
        .sort(),
    );
    expect(dlq).toEqual({
      Effect: 'Allow',
      Action: 'sqs:SendMessage',
      Resource: s.arnOf(ex.scheduleDeadLetterQueue),
    });
    const trust = s.template.toJSON().Resources[roleId].Properties.AssumeRolePolicyDocument.Statement;
    expect(trust).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: {
          StringEquals: {
            'aws:SourceAccount': { Ref: 'AWS::AccountId' },
            'aws:SourceArn': {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':scheduler:',
                  { Ref: 'AWS::Region' },
                  ':',
                  { Ref: 'AWS::AccountId' },
                  ':schedule-group/default',
                ],
              ],
            },
          },
        },
      },
    ]);
  });
});

describe('no statement is wider than reviewed', () => {
  /** Wildcard resources that were reviewed (each acknowledged for cdk-nag with its reason). */
  const reviewedWildcards = (x: Synthesized, pattern: string) => {
    const bucket = x.logicalId(x.stack.staging.bucket);
    const dispatcher = x.logicalId(x.stack.export.dispatcher.function);
    const sweep = x.logicalId(x.stack.export.connectionSweep.function);
    const compactor = x.logicalId(x.stack.compaction.compactor.function);
    return [
      JSON.stringify(joinArn({ 'Fn::GetAtt': [compactor, 'Arn'] }, ':*')),
      JSON.stringify(joinArn({ 'Fn::GetAtt': [bucket, 'Arn'] }, '/segments/*')),
      JSON.stringify(joinArn({ 'Fn::GetAtt': [bucket, 'Arn'] }, '/slots/*')),
      JSON.stringify(joinArn({ 'Fn::GetAtt': [sweep, 'Arn'] }, ':*')),
      JSON.stringify(partitionArn(':s3:::*/*')),
      JSON.stringify(joinArn({ 'Fn::GetAtt': [bucket, 'Arn'] }, '/quarantine/*')),
      JSON.stringify(joinArn({ 'Fn::GetAtt': [dispatcher, 'Arn'] }, ':*')),
      JSON.stringify(pattern),
    ];
  };

  it.each([
    ['default context', () => s, 'arn:aws:iam::*:role/*'],
    ['allowlisted keys', () => withKeys, 'arn:aws:iam::*:role/s3-export-*'],
  ] as const)('%s: no wildcard action, no Resource *, no unreviewed wildcard resource', (_, get, pattern) => {
    const x = get();
    const allowed = reviewedWildcards(x, pattern);
    const allows = allIdentityStatements(x.template).filter(({ statement }) => statement.Effect === 'Allow');
    expect(allows.length).toBeGreaterThan(20);
    for (const { policy, statement } of allows) {
      for (const action of asList(statement.Action)) {
        expect(action, `${policy}: ${action}`).not.toMatch(/\*/);
      }
      for (const resource of asList(statement.Resource)) {
        expect(resource, `${policy}: Resource *`).not.toBe('*');
        const text = JSON.stringify(resource);
        if (text.includes('*')) expect(allowed, `${policy}: ${text}`).toContain(text);
      }
      if (asList(statement.Action).some((a) => a.startsWith('kms:'))) {
        expect(JSON.stringify(statement.Resource), `${policy}: KMS on *`).not.toContain('*');
      }
    }
  });

  it('customer bucket writes and customer KMS keys are granted to the exporter role only', () => {
    const exporterRole = withKeys.logicalId(withKeys.stack.export.exporterRole);
    for (const { policy, statement } of allIdentityStatements(withKeys.template)) {
      if (statement.Effect !== 'Allow') continue;
      const text = JSON.stringify(statement.Resource);
      if (text.includes(':s3:::*/*') || text.includes(KEY_A)) {
        const roles = withKeys.template.toJSON().Resources[policy].Properties.Roles;
        expect(roles).toEqual([{ Ref: exporterRole }]);
      }
    }
  });
});
