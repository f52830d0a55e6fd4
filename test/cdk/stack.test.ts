import { Match } from 'aws-cdk-lib/assertions';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CONNECTIONS_TABLE,
  ENV,
  EXPORT_STATE_TABLE,
  STAGER_TIMEOUT_SECONDS,
  STAGING_LEDGER_TABLE,
  TABLES,
} from '../../lambdas/definitions.ts';
import { type Synthesized, synthesize } from './synth.ts';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

describe('what cdk deploy creates (docs/product.md#operations)', () => {
  it.each([
    ['AWS::Kinesis::Stream', 1],
    ['AWS::S3::Bucket', 2], // staging + its access logs
    ['AWS::DynamoDB::Table', TABLES.length],
    ['AWS::Lambda::Function', 6], // stager, compactor, dispatcher, exporter, connection test, connection sweep
    ['AWS::Lambda::EventSourceMapping', 2],
    ['AWS::Scheduler::Schedule', 5], // three frequencies, the hourly connection sweep, compaction
    ['AWS::SQS::Queue', 5], // jobs, job DLQ, stager failures, schedule DLQ, compaction schedule DLQ
    ['AWS::SNS::Topic', 1],
    ['AWS::CloudWatch::Dashboard', 1],
    ['AWS::KMS::Key', 2], // staging data, alarm topic
    ['AWS::Logs::LogGroup', 6],
  ])('%s × %i', (type, count) => {
    s.template.resourceCountIs(type, count);
  });

  it('has no custom resource (nothing runs at deploy time besides CloudFormation)', () => {
    expect(Object.keys(s.template.findResources('AWS::CloudFormation::CustomResource'))).toEqual([]);
    expect(Object.keys(s.template.findResources('Custom::S3AutoDeleteObjects'))).toEqual([]);
  });

  it('outputs the exporter role ARN, stream, tables, buckets and queues', () => {
    const outputs = Object.keys(s.template.toJSON().Outputs);
    expect(outputs).toEqual(
      expect.arrayContaining([
        'ExporterRoleArn',
        'StreamName',
        'ConnectionsTableName',
        'ExportStateTableName',
        'StagingLedgerTableName',
        'StagingBucketName',
        'AccessLogBucketName',
        'JobQueueUrl',
        'JobDeadLetterQueueUrl',
        'AlarmTopicArn',
      ]),
    );
    s.template.hasOutput('ExporterRoleArn', { Value: s.arnOf(s.stack.export.exporterRole) });
  });
});

describe('tables, from lambdas/definitions.ts', () => {
  const table = (logicalName: string) => {
    const tables = s.stack.tables;
    const byName: Record<string, Table> = {
      [CONNECTIONS_TABLE.logicalName]: tables.connections,
      [EXPORT_STATE_TABLE.logicalName]: tables.exportState,
      [STAGING_LEDGER_TABLE.logicalName]: tables.stagingLedger,
    };
    const construct = byName[logicalName];
    if (!construct) throw new Error(logicalName);
    return s.template.toJSON().Resources[s.logicalId(construct)];
  };

  it.each(TABLES.map((t) => [t.logicalName, t] as const))(
    '%s: keys as defined, on-demand, PITR, deletion protection, encrypted, retained',
    (name, definition) => {
      const resource = table(name);
      const keySchema = [
        { AttributeName: definition.partitionKey.name, KeyType: 'HASH' },
        ...('sortKey' in definition ? [{ AttributeName: definition.sortKey.name, KeyType: 'RANGE' }] : []),
      ];
      expect(resource.Properties.KeySchema).toEqual(keySchema);
      expect(resource.Properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(resource.Properties.PointInTimeRecoverySpecification).toEqual({
        PointInTimeRecoveryEnabled: true,
      });
      expect(resource.Properties.DeletionProtectionEnabled).toBe(true);
      expect(resource.Properties.SSESpecification).toEqual({ SSEEnabled: true });
      expect(resource.DeletionPolicy).toBe('Retain');
      expect(resource.UpdateReplacePolicy).toBe('Retain');
    },
  );

  it('TTL on expiresAt where the definition has one', () => {
    for (const definition of TABLES) {
      const ttl = table(definition.logicalName).Properties.TimeToLiveSpecification;
      if ('timeToLiveAttribute' in definition) {
        expect(ttl).toEqual({ AttributeName: definition.timeToLiveAttribute, Enabled: true });
      } else {
        expect(ttl).toBeUndefined();
      }
    }
  });

  it('the connections table has the byFrequency GSI (frequency, connectionId) the dispatcher queries', () => {
    const [gsi] = CONNECTIONS_TABLE.globalSecondaryIndexes;
    expect(table('Connections').Properties.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: gsi.indexName,
        KeySchema: [
          { AttributeName: 'frequency', KeyType: 'HASH' },
          { AttributeName: 'connectionId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
  });
});

describe('staging bucket', () => {
  const bucket = () => s.template.toJSON().Resources[s.logicalId(s.stack.staging.bucket)];

  it('is encrypted with the stack data key (SSE-KMS, bucket key), never public, unversioned, retained', () => {
    const b = bucket();
    expect(b.Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        {
          BucketKeyEnabled: true,
          ServerSideEncryptionByDefault: {
            SSEAlgorithm: 'aws:kms',
            KMSMasterKeyID: s.arnOf(s.stack.dataKey),
          },
        },
      ],
    });
    expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(b.Properties.VersioningConfiguration).toBeUndefined();
    expect(b.DeletionPolicy).toBe('Retain');
  });

  it('expires staged objects after the staging retention (default 14 days)', () => {
    expect(bucket().Properties.LifecycleConfiguration.Rules).toEqual([
      {
        Id: 'expire-staged-data',
        Status: 'Enabled',
        ExpirationInDays: 14,
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      },
    ]);
    const longer = synthesize({ stagingRetentionDays: '30' });
    longer.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 30 })] },
    });
  });

  it('logs server access to the access-log bucket', () => {
    expect(bucket().Properties.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: s.logicalId(s.stack.staging.accessLogBucket) },
      LogFilePrefix: 'staging/',
    });
  });

  it.each(['bucket', 'accessLogBucket'] as const)(
    'the %s policy refuses every request without TLS',
    (which) => {
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: s.logicalId(s.stack.staging[which]) },
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Action: 's3:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Resource: [
                s.arnOf(s.stack.staging[which]),
                { 'Fn::Join': ['', [s.arnOf(s.stack.staging[which]), '/*']] },
              ],
            },
          ]),
        },
      });
    },
  );
});

describe('queues', () => {
  it('every queue is encrypted and its policy refuses requests without TLS', () => {
    const queues = s.template.findResources('AWS::SQS::Queue');
    for (const q of Object.values(queues)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = Object.values(s.template.findResources('AWS::SQS::QueuePolicy'));
    const guarded = policies.flatMap((p) =>
      (p.Properties.PolicyDocument.Statement as { Effect: string; Condition?: unknown }[])
        .filter(
          (st) =>
            st.Effect === 'Deny' &&
            JSON.stringify(st.Condition) === '{"Bool":{"aws:SecureTransport":"false"}}',
        )
        .map(() => (p.Properties.Queues as { Ref: string }[])[0]?.Ref),
    );
    expect(guarded.sort()).toEqual(Object.keys(queues).sort());
  });

  it('the job queue moves a job to its DLQ after maxReceiveCount (default 5), visibility ≥ exporter timeout', () => {
    s.template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 20 * 60,
      RedrivePolicy: { deadLetterTargetArn: s.arnOf(s.stack.export.jobDeadLetterQueue), maxReceiveCount: 5 },
    });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Timeout: 15 * 60,
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'exporter' }) },
    });
  });
});

describe('ingest', () => {
  it('the stream is on-demand and KMS-encrypted', () => {
    s.template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
      RetentionPeriodHours: 24,
    });
  });

  it('the stager event source: no bisect, partial failures, one batch per shard, bounded retries, failure queue', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: s.arnOf(s.stack.ingest.stream),
      FunctionName: { Ref: s.logicalId(s.stack.ingest.stager.function) },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 10_000,
      MaximumBatchingWindowInSeconds: 5,
      BisectBatchOnFunctionError: false,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ParallelizationFactor: 1,
      MaximumRetryAttempts: 20,
      MaximumRecordAgeInSeconds: 24 * 3600,
      DestinationConfig: { OnFailure: { Destination: s.arnOf(s.stack.ingest.failureQueue) } },
    });
  });

  it('the stager times out at STAGER_TIMEOUT_SECONDS, well below the settle delay', () => {
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: STAGER_TIMEOUT_SECONDS,
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'stager' }) },
    });
    expect(STAGER_TIMEOUT_SECONDS).toBeLessThan(s.stack.config.settleDelayMinutes * 60);
  });

  it('the exporter takes one job at a time, reports partial failures, with bounded concurrency', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: s.arnOf(s.stack.export.jobQueue),
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 20 },
    });
  });
});

describe('functions', () => {
  const functions = () => Object.values(s.template.findResources('AWS::Lambda::Function'));

  it('all run Node.js 24 on arm64 with source maps, esm bundles and a log group with retention', () => {
    for (const fn of functions()) {
      expect(fn.Properties.Runtime).toBe('nodejs24.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Handler).toBe('index.handler');
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toMatch(
        /^--enable-source-maps( --expose-gc)?$/,
      );
      expect(fn.Properties.LoggingConfig.LogGroup).toEqual({ Ref: expect.any(String) });
    }
    const groups = Object.values(s.template.findResources('AWS::Logs::LogGroup'));
    for (const g of groups) expect(g.Properties.RetentionInDays).toBe(90);
    // Only the exporter exposes gc(): its record worker threads collect garbage every 32 MB.
    const exposing = functions().filter((fn) =>
      fn.Properties.Environment.Variables.NODE_OPTIONS.includes('--expose-gc'),
    );
    expect(exposing.map((fn) => fn.Properties.Description)).toEqual([
      "Exports one connection's window into the customer's bucket (SQS job)",
    ]);
  });

  it('get the environment from ENV: tables, bucket, timing; queue, role and allowlist where used', () => {
    const byService = Object.fromEntries(
      functions().map((fn) => [fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME, fn.Properties]),
    );
    expect(Object.keys(byService).sort()).toEqual([
      'compactor',
      'connection-sweep',
      'connection-test',
      'dispatcher',
      'exporter',
      'stager',
    ]);
    const common = {
      [ENV.connectionsTable]: { Ref: s.logicalId(s.stack.tables.connections) },
      [ENV.exportStateTable]: { Ref: s.logicalId(s.stack.tables.exportState) },
      [ENV.stagingLedgerTable]: { Ref: s.logicalId(s.stack.tables.stagingLedger) },
      [ENV.stagingBucket]: { Ref: s.logicalId(s.stack.staging.bucket) },
      [ENV.settleDelayMinutes]: '4',
      [ENV.stagingRetentionDays]: '14',
      POWERTOOLS_METRICS_NAMESPACE: 'S3EventExport',
    };
    const queueUrl = { Ref: s.logicalId(s.stack.export.jobQueue) };
    const roleArn = s.arnOf(s.stack.export.exporterRole);
    const env = (service: string) => byService[service].Environment.Variables;
    expect(env('stager')).toMatchObject(common);
    expect(env('stager')[ENV.jobQueueUrl]).toBeUndefined();
    expect(env('stager')[ENV.exporterRoleArn]).toBeUndefined();
    expect(env('dispatcher')).toMatchObject({ ...common, [ENV.jobQueueUrl]: queueUrl });
    expect(env('exporter')).toMatchObject({
      ...common,
      [ENV.jobQueueUrl]: queueUrl,
      [ENV.exporterRoleArn]: roleArn,
      [ENV.kmsKeyAllowlist]: '',
    });
    expect(env('connection-test')).toMatchObject({ ...common, [ENV.exporterRoleArn]: roleArn });
    expect(env('connection-sweep')).toMatchObject({ ...common, [ENV.kmsKeyAllowlist]: '' });
    expect(env('connection-sweep')[ENV.exporterRoleArn]).toBeUndefined();
  });

  it('memory sizes come from the context', () => {
    const custom = synthesize({ exporterMemoryMb: '3008', stagerMemoryMb: 1024, compactorMemoryMb: 4096 });
    custom.template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 3008,
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'exporter' }) },
    });
    custom.template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 1024,
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'stager' }) },
    });
    // The compactor has its own size (its read budget follows it), not the stager's.
    custom.template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 4096,
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'compactor' }) },
    });
  });
});
