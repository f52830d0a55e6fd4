/**
 * Ingest: the Kinesis stream producers write to, and the stager that stages its
 * records into the staging bucket (lambdas/stager/handler.ts).
 */
import { Duration, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  STAGER_BATCH_SIZE,
  STAGER_MAX_BATCHING_WINDOW_SECONDS,
  STAGER_TIMEOUT_SECONDS,
} from '../lambdas/definitions.ts';
import { SERVICE_NAMES } from '../lambdas/domain/metrics.ts';
import { ExportFunction } from './function.ts';
import { SEGMENTS, type StagingStorage } from './staging.ts';

export interface IngestProps {
  /** The staging bucket's key (the stager encrypts the objects it stages). */
  readonly stagingKey: kms.IKey;
  /** The staging bucket the stager writes segments into. */
  readonly staging: StagingStorage;
  /** The stager's per-shard checkpoints. */
  readonly stagingLedger: dynamodb.ITable;
  /** Environment of every function (table and bucket names, settings). */
  readonly environment: Record<string, string>;
  /** Memory of the stager, MB. */
  readonly memorySize: number;
  /** Days the stager's logs are kept. */
  readonly logRetentionDays: number;
  /** Hours the stream keeps records; also how old a record may get before the stager gives up on it. */
  readonly streamRetentionHours: number;
  /**
   * Records per stager invocation: each batch is one segment whatever its apps, so larger
   * batches mean fewer requests per GB (the 6 MB invocation payload caps a batch first).
   * @default STAGER_BATCH_SIZE (10,000)
   */
  readonly batchSize?: number;
  /**
   * How long Lambda gathers records before invoking the stager.
   * @default STAGER_MAX_BATCHING_WINDOW_SECONDS (5 s)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Retries of a failing batch before its sequence range goes to the failure queue.
   * @default 20
   */
  readonly retryAttempts?: number;
}

export class Ingest extends Construct {
  readonly stream: kinesis.Stream;
  readonly stager: ExportFunction;
  /** Where Lambda records (shard, sequence range) of batches the stager gave up on. */
  readonly failureQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: IngestProps) {
    super(scope, id);
    if (props.streamRetentionHours > 7 * 24) {
      throw new Error(
        `Ingest streamRetentionHours must be at most 168 (7 days), got ${props.streamRetentionHours}: the stager's event source drops older records`,
      );
    }

    // Encrypted with the AWS managed key (aws/kinesis): records stay at most the stream retention,
    // producers need no key-policy grant, and KMS costs do not scale with producers and consumers
    // (cdk-nag KDS3). The long-lived copy, the staging bucket, is under the stack's own key.
    this.stream = new kinesis.Stream(this, 'Stream', {
      streamMode: kinesis.StreamMode.ON_DEMAND,
      encryption: kinesis.StreamEncryption.MANAGED,
      retentionPeriod: Duration.hours(props.streamRetentionHours),
    });

    this.stager = new ExportFunction(this, 'Stager', {
      entry: 'stager/handler.ts',
      serviceName: SERVICE_NAMES.stager,
      description: 'Stages Kinesis records into the staging bucket, each batch exactly once',
      memorySize: props.memorySize,
      timeout: Duration.seconds(STAGER_TIMEOUT_SECONDS),
      environment: props.environment,
      logRetentionDays: props.logRetentionDays,
    });

    const { bucket } = props.staging;
    this.stager.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'StageSegments',
        // GetObject: the stager HEADs a segment to learn whether an earlier attempt created it.
        actions: ['s3:PutObject', 's3:GetObject'],
        resources: [props.staging.bucket.arnForObjects(SEGMENTS)],
      }),
    );
    this.stager.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'HeadMissingObjectsAs404',
        // Without ListBucket, S3 answers HEAD of a missing key with 403 instead of 404.
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': SEGMENTS } },
      }),
    );
    this.stager.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'EncryptStagedObjects',
        actions: ['kms:GenerateDataKey'],
        resources: [props.stagingKey.keyArn],
      }),
    );
    this.stager.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ShardCheckpoints',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [props.stagingLedger.tableArn],
      }),
    );

    Validations.of(this.stager.role.node.findChild('DefaultPolicy')).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${props.staging.nagObjectsFinding(SEGMENTS)}]`,
      reason:
        'Segment keys are made at run time (slot, stage time, shard, sequence); the grant is limited to the segments/ prefix of the one staging bucket.',
    });

    this.failureQueue = new sqs.Queue(this, 'FailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.failureQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "This queue is the stager event source's on-failure destination (a dead-letter queue); it holds shard ids and sequence ranges for a replay and is alarmed when not empty.",
    });

    this.stager.function.addEventSource(
      new sources.KinesisEventSource(this.stream, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: props.batchSize ?? STAGER_BATCH_SIZE,
        maxBatchingWindow: props.maxBatchingWindow ?? Duration.seconds(STAGER_MAX_BATCHING_WINDOW_SECONDS),
        // One batch per shard at a time: the stager's checkpoint is one row per shard, in order.
        parallelizationFactor: 1,
        // No bisecting: a failing batch is retried whole, so a retry finds its pending unit and
        // re-creates the same segment. (A split or skipped unit is still safe: the next batch
        // completes or abandons it — lambdas/usecases/stage-batch.ts.)
        bisectBatchOnError: false,
        // The stager reports a failed batch's FIRST record, so the retry is the same batch again.
        reportBatchItemFailures: true,
        retryAttempts: props.retryAttempts ?? 20,
        maxRecordAge: Duration.hours(props.streamRetentionHours),
        onFailure: new sources.SqsDlq(this.failureQueue),
      }),
    );
  }
}
