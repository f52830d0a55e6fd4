/**
 * The production stack (docs/product.md#operations): everything `cdk deploy` creates, assembled
 * from one construct per concern.
 */
import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { ENV } from '../lambdas/definitions.ts';
import { Compaction } from './compaction.ts';
import { configOf, type ExportStackConfig } from './config.ts';

/** The KmsKeyAllowlist output when the list is empty (CloudFormation refuses an empty output value). */
export const EMPTY_LIST_OUTPUT = '-';

import { Export } from './export.ts';
import { Ingest } from './ingest.ts';
import { Monitoring } from './monitoring.ts';
import { StagingStorage } from './staging.ts';
import { ExportTables } from './tables.ts';

/**
 * The stack's props: CDK's own (env, description, …) and, flat beside them, the deployment's
 * settings (lib/config.ts ExportStackConfig, each with its default when absent).
 */
export interface S3EventExportStackProps extends StackProps, Partial<ExportStackConfig> {}

export class S3EventExportStack extends Stack {
  readonly config: ExportStackConfig;
  /** Encrypts the staging bucket: the event data kept for the staging retention. */
  readonly dataKey: kms.Key;
  readonly tables: ExportTables;
  readonly staging: StagingStorage;
  readonly ingest: Ingest;
  readonly compaction: Compaction;
  readonly export: Export;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: S3EventExportStackProps = {}) {
    super(scope, id, props);
    const config = configOf(props);
    this.config = config;

    this.dataKey = new kms.Key(this, 'DataKey', {
      description: 's3-event-export: staging bucket',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.tables = new ExportTables(this, 'Tables');
    this.staging = new StagingStorage(this, 'Staging', {
      key: this.dataKey,
      retentionDays: config.stagingRetentionDays,
    });

    const environment: Record<string, string> = {
      [ENV.connectionsTable]: this.tables.connections.tableName,
      [ENV.exportStateTable]: this.tables.exportState.tableName,
      [ENV.stagingLedgerTable]: this.tables.stagingLedger.tableName,
      [ENV.stagingBucket]: this.staging.bucket.bucketName,
      [ENV.settleDelayMinutes]: String(config.settleDelayMinutes),
      [ENV.stagingRetentionDays]: String(config.stagingRetentionDays),
    };

    this.ingest = new Ingest(this, 'Ingest', {
      stagingKey: this.dataKey,
      staging: this.staging,
      stagingLedger: this.tables.stagingLedger,
      environment,
      memorySize: config.stagerMemoryMb,
      logRetentionDays: config.logRetentionDays,
      streamRetentionHours: config.streamRetentionHours,
    });

    this.compaction = new Compaction(this, 'Compaction', {
      stagingKey: this.dataKey,
      staging: this.staging,
      environment,
      memorySize: config.compactorMemoryMb,
      logRetentionDays: config.logRetentionDays,
    });

    this.export = new Export(this, 'Export', {
      tables: this.tables,
      staging: this.staging,
      dataKey: this.dataKey,
      environment,
      settleDelayMinutes: config.settleDelayMinutes,
      kmsKeyAllowlist: config.kmsKeyAllowlist,
      assumeRoleArnPattern: config.assumeRoleArnPattern,
      exporterRoleName: config.exporterRoleName,
      operatorRoleArns: config.operatorRoleArns,
      dispatcherMemorySize: config.dispatcherMemoryMb,
      exporterMemorySize: config.exporterMemoryMb,
      connectionTestMemorySize: config.connectionTestMemoryMb,
      exporterTimeout: Duration.minutes(config.exporterTimeoutMinutes),
      jobVisibilityTimeout: Duration.minutes(config.jobVisibilityTimeoutMinutes),
      jobMaxReceiveCount: config.jobMaxReceiveCount,
      exporterMaxConcurrency: config.exporterMaxConcurrency,
      logRetentionDays: config.logRetentionDays,
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      functions: {
        stager: this.ingest.stager.function,
        compactor: this.compaction.compactor.function,
        dispatcher: this.export.dispatcher.function,
        exporter: this.export.exporter.function,
        connectionTest: this.export.connectionTest.function,
        connectionSweep: this.export.connectionSweep.function,
      },
      stream: this.ingest.stream,
      deadLetterQueues: {
        JobDeadLetterQueue: this.export.jobDeadLetterQueue,
        StagerFailureQueue: this.ingest.failureQueue,
        ScheduleDeadLetterQueue: this.export.scheduleDeadLetterQueue,
        CompactionScheduleDeadLetterQueue: this.compaction.scheduleDeadLetterQueue,
      },
      settleDelayMinutes: config.settleDelayMinutes,
      stagingRetentionDays: config.stagingRetentionDays,
      alarmEmail: config.alarmEmail,
    });

    if (!config.alarmEmail) {
      Annotations.of(this).addWarningV2(
        's3-event-export:no-alarm-destination',
        'no alarmEmail: every alarm notifies the SNS topic AlarmTopicArn, which has no subscriber, so alarms reach nobody. ' +
          'Deploy with -c alarmEmail=oncall@example.com, or subscribe your paging tool to the AlarmTopicArn output',
      );
    }

    this.addOutputs(config);
  }

  /** What operators, the CLI and the runbooks read from the deployment. */
  private addOutputs(config: ExportStackConfig): void {
    const outputs: Record<string, [string, string]> = {
      Region: [this.region, 'Region of the deployment (AWS_REGION for the CLI)'],
      SettleDelayMinutes: [
        String(config.settleDelayMinutes),
        'Minutes after a window boundary at which schedules fire (SETTLE_DELAY_MINUTES for the CLI)',
      ],
      StagingRetentionDays: [
        String(config.stagingRetentionDays),
        'Days staged events are kept (STAGING_RETENTION_DAYS for the CLI)',
      ],
      KmsKeyAllowlist: [
        config.kmsKeyAllowlist.length > 0 ? config.kmsKeyAllowlist.join(',') : EMPTY_LIST_OUTPUT,
        `Customer KMS keys connections may use, comma-separated ("${EMPTY_LIST_OUTPUT}": none) (KMS_KEY_ALLOWLIST for the CLI)`,
      ],
      ExporterRoleArn: [
        this.export.exporterRole.roleArn,
        "The role customers allow in their bucket policy (and KMS key policy); the CLI prints a connection's ready-to-paste policies",
      ],
      StreamName: [this.ingest.stream.streamName, 'Kinesis stream producers PutRecords into'],
      StreamArn: [this.ingest.stream.streamArn, 'Kinesis stream ARN (grant producers kinesis:PutRecords)'],
      DataKeyArn: [this.dataKey.keyArn, 'KMS key of the staging bucket'],
      ConnectionsTableName: [this.tables.connections.tableName, 'DynamoDB table of connection rows'],
      ExportStateTableName: [
        this.tables.exportState.tableName,
        'DynamoDB table of watermarks, history, usage',
      ],
      StagingLedgerTableName: [
        this.tables.stagingLedger.tableName,
        "DynamoDB table of the stager's checkpoints",
      ],
      StagingBucketName: [
        this.staging.bucket.bucketName,
        'Staged events (expire after the staging retention)',
      ],
      AccessLogBucketName: [
        this.staging.accessLogBucket.bucketName,
        'Server access logs of the staging bucket',
      ],
      JobQueueUrl: [this.export.jobQueue.queueUrl, 'SQS queue of export jobs'],
      JobQueueArn: [this.export.jobQueue.queueArn, 'SQS queue of export jobs (ARN, for IAM policies)'],
      JobDeadLetterQueueUrl: [this.export.jobDeadLetterQueue.queueUrl, 'Export jobs given up after retries'],
      JobDeadLetterQueueArn: [
        this.export.jobDeadLetterQueue.queueArn,
        'Job DLQ ARN (aws sqs start-message-move-task --source-arn)',
      ],
      StagerFailureQueueUrl: [this.ingest.failureQueue.queueUrl, 'Kinesis batches the stager gave up on'],
      StagerFailureQueueArn: [this.ingest.failureQueue.queueArn, 'Stager failure queue ARN'],
      ScheduleDeadLetterQueueUrl: [
        this.export.scheduleDeadLetterQueue.queueUrl,
        'Schedule ticks that could not invoke the dispatcher',
      ],
      ScheduleDeadLetterQueueArn: [this.export.scheduleDeadLetterQueue.queueArn, 'Schedule DLQ ARN'],
      DispatcherFunctionName: [this.export.dispatcher.function.functionName, 'Invoke for a manual tick'],
      ConnectionTestFunctionName: [
        this.export.connectionTest.function.functionName,
        'Invoke with {"connectionId": "conn_..."} to test a connection',
      ],
      AlarmTopicArn: [this.monitoring.topic.topicArn, 'SNS topic of every alarm'],
    };
    for (const [name, [value, description]] of Object.entries(outputs)) {
      new CfnOutput(this, name, { value, description });
    }
  }
}
