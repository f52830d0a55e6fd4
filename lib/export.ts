/**
 * Export: the three schedules, the dispatcher they invoke, the job queue (+ DLQ),
 * the exporter consuming it, the stable exporter role customers grant, and the
 * connection-test function.
 *
 * Every write into a customer bucket is made by a session of the exporter role,
 * tagged with the connection id (lambdas/adapters/s3-client-provider.ts); the
 * functions' own roles can only assume it, and only with that tag.
 */
import { Duration, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CONNECTION_SESSION_TAG, ENV, type Frequency } from '../lambdas/definitions.ts';
import { SERVICE_NAMES } from '../lambdas/domain/metrics.ts';
import { scheduleDefinitions } from '../lambdas/domain/schedules.ts';
import { ExportFunction } from './function.ts';
import { schedulerRole } from './scheduler-role.ts';
import { grantStagedReads, grantStagedWrites, type StagingStorage } from './staging.ts';
import type { ExportTables } from './tables.ts';

export interface ExportProps {
  /** The Connections, ExportState and StagingLedger tables. */
  readonly tables: ExportTables;
  /** The staging bucket the exporter reads windows from. */
  readonly staging: StagingStorage;
  /** The key of the staging bucket (the exporter decrypts staged objects). */
  readonly dataKey: kms.IKey;
  /** Environment shared by every function (tables, bucket, timing). */
  readonly environment: Record<string, string>;
  /** Minutes after a window boundary at which the dispatcher's schedules fire. */
  readonly settleDelayMinutes: number;
  /** Full ARNs of the customer KMS keys the exporter role may use, only via S3. */
  readonly kmsKeyAllowlist: string[];
  /** Customer roles the exporter role may assume (assume-role mode); '' for none. */
  readonly assumeRoleArnPattern: string;
  /** The exporter role's fixed name, which customers put in their bucket and key policies. */
  readonly exporterRoleName: string;
  /**
   * Operators' roles that may also take tagged exporter sessions (the CLI's connection test).
   * @default [] (only the exporter and connection-test functions)
   */
  readonly operatorRoleArns?: string[];
  /** Memory of the dispatcher, MB. */
  readonly dispatcherMemorySize: number;
  /** Memory of the exporter, MB. */
  readonly exporterMemorySize: number;
  /** Memory of the connection-test and connection-sweep functions, MB. */
  readonly connectionTestMemorySize: number;
  /** The exporter's timeout; a longer window continues in the next invocation. */
  readonly exporterTimeout: Duration;
  /** Visibility timeout of the job queue; at least the exporter's timeout. */
  readonly jobVisibilityTimeout: Duration;
  /** Deliveries of one job before it moves to the job dead-letter queue. */
  readonly jobMaxReceiveCount: number;
  /** Upper bound of concurrent exporter invocations. */
  readonly exporterMaxConcurrency: number;
  /** Days the functions' logs are kept. */
  readonly logRetentionDays: number;
  /**
   * Scheduler retries of a failed dispatcher invocation before the tick goes to the schedule DLQ.
   * @default 5
   */
  readonly scheduleRetryAttempts?: number;
}

export class Export extends Construct {
  readonly jobQueue: sqs.Queue;
  readonly jobDeadLetterQueue: sqs.Queue;
  readonly scheduleDeadLetterQueue: sqs.Queue;
  /** The stable, named role customers allow in their bucket (and key) policies. */
  readonly exporterRole: iam.Role;
  readonly exporter: ExportFunction;
  readonly dispatcher: ExportFunction;
  readonly connectionTest: ExportFunction;
  /** Validates every connection row each hour (the dispatcher only sees rows of its index queries). */
  readonly connectionSweep: ExportFunction;
  readonly schedules: Record<Frequency, scheduler.Schedule>;
  readonly sweepSchedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: ExportProps) {
    super(scope, id);

    // ------------------------------------------------------------ job queue
    // Jobs carry a connection id and a window end, never event data: SQS-managed encryption
    // is enough and leaves no key policy to keep in step.
    this.jobDeadLetterQueue = new sqs.Queue(this, 'JobDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.jobDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue of the job queue; it is alarmed when not empty.',
    });
    this.jobQueue = new sqs.Queue(this, 'JobQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: props.jobVisibilityTimeout,
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.jobDeadLetterQueue, maxReceiveCount: props.jobMaxReceiveCount },
    });

    // ------------------------------------------------------------ functions
    const withJobs = { ...props.environment, [ENV.jobQueueUrl]: this.jobQueue.queueUrl };

    this.exporter = new ExportFunction(this, 'Exporter', {
      entry: 'exporter/handler.ts',
      serviceName: SERVICE_NAMES.exporter,
      description: "Exports one connection's window into the customer's bucket (SQS job)",
      memorySize: props.exporterMemorySize,
      timeout: props.exporterTimeout,
      environment: withJobs, // + exporter role and allowlist, below
      logRetentionDays: props.logRetentionDays,
      // Staged objects are selected, projected and compressed on worker threads (record-worker-pool.ts).
      workerEntries: ['usecases/record-worker-thread.ts'],
      // The record workers collect their garbage every 32 MB of staged data (record-worker-thread.ts):
      // peak memory stays flat in window size (docs/BENCHMARKS.md).
      nodeOptions: ['--expose-gc'],
    });
    this.connectionTest = new ExportFunction(this, 'ConnectionTest', {
      entry: 'connection-test/handler.ts',
      serviceName: SERVICE_NAMES.connectionTest,
      description: "Tests a connection: writes a probe with the connection's exact settings",
      memorySize: props.connectionTestMemorySize,
      timeout: Duration.minutes(1),
      environment: props.environment,
      logRetentionDays: props.logRetentionDays,
    });
    this.dispatcher = new ExportFunction(this, 'Dispatcher', {
      entry: 'dispatcher/handler.ts',
      serviceName: SERVICE_NAMES.dispatcher,
      description: 'Schedule tick: enqueues one export job per active connection of the frequency',
      memorySize: props.dispatcherMemorySize,
      timeout: Duration.minutes(5),
      environment: withJobs,
      logRetentionDays: props.logRetentionDays,
    });

    this.connectionSweep = new ExportFunction(this, 'ConnectionSweep', {
      entry: 'connection-sweep/handler.ts',
      serviceName: SERVICE_NAMES.connectionSweep,
      description:
        'Hourly: validates every connection row (schema, PGP key, KMS allowlist, namespace) and records refusals',
      memorySize: props.connectionTestMemorySize,
      timeout: Duration.minutes(5),
      environment: { ...props.environment, [ENV.kmsKeyAllowlist]: props.kmsKeyAllowlist.join(',') },
      logRetentionDays: props.logRetentionDays,
    });

    // ------------------------------------------------------------ exporter role
    this.exporterRole = this.createExporterRole(props);

    const assumeExporterRole = new iam.PolicyStatement({
      sid: 'AssumeExporterRoleTagged',
      actions: ['sts:AssumeRole', 'sts:TagSession'],
      resources: [this.exporterRole.roleArn],
    });
    const exporterEnvironment = {
      [ENV.exporterRoleArn]: this.exporterRole.roleArn,
      [ENV.kmsKeyAllowlist]: props.kmsKeyAllowlist.join(','),
    };
    for (const fn of [this.exporter, this.connectionTest]) {
      for (const [name, value] of Object.entries(exporterEnvironment))
        fn.function.addEnvironment(name, value);
      fn.role.addToPrincipalPolicy(assumeExporterRole);
    }

    this.grantFunctionPermissions(props);

    // ------------------------------------------------------------ schedules
    this.scheduleDeadLetterQueue = new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.scheduleDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is the dead-letter queue of the three schedules (ticks the dispatcher could not take); it is alarmed when not empty.',
    });
    const { schedules, sweep } = this.createSchedules(props);
    this.schedules = schedules;
    this.sweepSchedule = sweep;
  }

  /** The dispatcher's three schedules and the hourly connection sweep, into the schedule DLQ. */
  private createSchedules(props: ExportProps): {
    schedules: Record<Frequency, scheduler.Schedule>;
    sweep: scheduler.Schedule;
  } {
    const stack = Stack.of(this);
    const scheduleRole = schedulerRole(this, 'EventBridge Scheduler: invoke the s3-event-export dispatcher');
    const schedules: Partial<Record<Frequency, scheduler.Schedule>> = {};
    for (const definition of scheduleDefinitions(props.settleDelayMinutes)) {
      schedules[definition.frequency] = new scheduler.Schedule(this, `Schedule-${definition.frequency}`, {
        description: `s3-event-export ${definition.frequency} tick, ${props.settleDelayMinutes} min after each window boundary (UTC)`,
        schedule: scheduler.ScheduleExpression.expression(
          definition.expression,
          TimeZone.of(definition.timeZone),
        ),
        // The window end is the floor of the *scheduled* time: a flexible window would only delay exports.
        timeWindow: scheduler.TimeWindow.off(),
        target: new targets.LambdaInvoke(this.dispatcher.function, {
          role: scheduleRole,
          input: scheduler.ScheduleTargetInput.fromObject(definition.input),
          retryAttempts: props.scheduleRetryAttempts ?? 5,
          // A late tick still stands for the same window (its scheduled time is fixed).
          maxEventAge: Duration.hours(1),
          deadLetterQueue: this.scheduleDeadLetterQueue,
        }),
      });
    }
    const sweep = new scheduler.Schedule(this, 'Schedule-ConnectionSweep', {
      description: 's3-event-export hourly sweep: validate every connection row',
      schedule: scheduler.ScheduleExpression.rate(Duration.hours(1)),
      timeWindow: scheduler.TimeWindow.off(),
      target: new targets.LambdaInvoke(this.connectionSweep.function, {
        role: scheduleRole,
        retryAttempts: props.scheduleRetryAttempts ?? 5,
        // The next sweep starts from scratch: an older one is worth nothing.
        maxEventAge: Duration.hours(1),
        deadLetterQueue: this.scheduleDeadLetterQueue,
      }),
    });
    Validations.of(scheduleRole.node.findChild('DefaultPolicy')).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.dispatcher.function.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        'Generated by the Scheduler Lambda target: invoke the dispatcher function and its versions/aliases (`<function ARN>:*`); one function, one action.',
    });
    Validations.of(scheduleRole.node.findChild('DefaultPolicy')).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.connectionSweep.function.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        'Generated by the Scheduler Lambda target: invoke the connection-sweep function and its versions/aliases (`<function ARN>:*`); one function, one action.',
    });
    return { schedules: schedules as Record<Frequency, scheduler.Schedule>, sweep };
  }

  /**
   * The role that writes into customer buckets: assumed only by the export functions (and the
   * operator roles) with one connection tag per session, never into the operator's own account.
   */
  private createExporterRole(props: ExportProps): iam.Role {
    const { staging } = props;
    const partition = Stack.of(this).partition;
    const assumers = [this.exporter.role, this.connectionTest.role];
    const role = new iam.Role(this, 'ExporterRole', {
      roleName: props.exporterRoleName,
      description:
        'Writes export files into customer buckets. Customers allow this role in their bucket policy; every session is tagged with one connection id.',
      maxSessionDuration: Duration.hours(1),
      assumedBy: new iam.CompositePrincipal(...assumers.map((r) => new iam.ArnPrincipal(r.roleArn))),
    });
    // Replace the generated trust statement by one that also allows sts:TagSession and makes
    // every session carry the connection tag (and only it): customers' policies pin that tag.
    const taggedSessionsOnly = {
      StringLike: { [`aws:RequestTag/${CONNECTION_SESSION_TAG}`]: 'conn_*' },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [CONNECTION_SESSION_TAG] },
    };
    const cfnRole = role.node.defaultChild as iam.CfnRole;
    cfnRole.assumeRolePolicyDocument = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'TaggedSessionsOfExportFunctions',
          Effect: 'Allow',
          Principal: { AWS: [...assumers.map((r) => r.roleArn), ...(props.operatorRoleArns ?? [])] },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Condition: taggedSessionsOnly,
        },
      ],
    };

    // Inside one account no bucket policy is needed, so the customers' tag pinning never applies
    // there: the exporter role may not write into, nor assume a role of, the operator's own account.
    const account = Stack.of(this).account;
    const notOwnAccount = { StringNotEquals: { 'aws:ResourceAccount': account } };
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteIntoCustomerBuckets',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [`arn:${partition}:s3:::*/*`],
        conditions: notOwnAccount,
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NeverOurOwnAccountBuckets',
        effect: iam.Effect.DENY,
        // Explicit, so that no bucket policy of our account naming this role can grant a write either.
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [`arn:${partition}:s3:::*/*`],
        conditions: { StringEquals: { 'aws:ResourceAccount': account } },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NeverOurOwnBuckets',
        effect: iam.Effect.DENY,
        // Same-account writes need no bucket policy: a connection naming our staging or log
        // bucket must not be able to write into it.
        actions: ['s3:*'],
        resources: [
          staging.bucket.bucketArn,
          staging.bucket.arnForObjects('*'),
          staging.accessLogBucket.bucketArn,
          staging.accessLogBucket.arnForObjects('*'),
        ],
      }),
    );
    if (props.kmsKeyAllowlist.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'UseAllowlistedKeysViaS3',
          // Decrypt: S3 decrypts the data key to complete a multipart upload (docs/security.md).
          actions: ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt'],
          resources: props.kmsKeyAllowlist,
          conditions: { StringLike: { 'kms:ViaService': 's3.*.amazonaws.com' } },
        }),
      );
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'DescribeAllowlistedKeys',
          // Direct, not via S3: "test connection" reads the key's state and region for a precise
          // diagnosis. Metadata only; the customer's key policy decides whether it is allowed.
          actions: ['kms:DescribeKey'],
          resources: props.kmsKeyAllowlist,
        }),
      );
    }
    if (props.assumeRoleArnPattern) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'AssumeCustomerRoles',
          // Assume-role mode: the customer's trust policy checks the external id and the connection tag.
          actions: ['sts:AssumeRole'],
          resources: [props.assumeRoleArnPattern],
          conditions: notOwnAccount,
        }),
      );
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'NeverOurOwnAccountRoles',
          effect: iam.Effect.DENY,
          // By ARN as well as by condition: a role of our own account is never a customer's.
          actions: ['sts:AssumeRole'],
          resources: [`arn:${partition}:iam::${account}:role/*`],
        }),
      );
    }
    acknowledgeExporterPolicy(role, props.assumeRoleArnPattern);
    return role;
  }

  /** What the exporter, connection-test, connection-sweep and dispatcher functions may do. */
  private grantFunctionPermissions(props: ExportProps): void {
    const { tables, staging } = props;
    // ------------------------------------------------------------ exporter permissions
    const exporterRole = this.exporter.role;
    exporterRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadConnection',
        actions: ['dynamodb:GetItem'],
        resources: [tables.connections.tableArn],
      }),
    );
    exporterRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ExportState',
        // Get/Update the watermark row; the commit transaction also Puts the window history row.
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'],
        resources: [tables.exportState.tableArn],
      }),
    );
    // The exporter compacts a staging slot itself when the schedule has not reached it yet.
    grantStagedReads(exporterRole, staging, props.dataKey);
    grantStagedWrites(exporterRole, staging, props.dataKey);
    exporterRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'EnqueueContinuations',
        actions: ['sqs:SendMessage'],
        resources: [this.jobQueue.queueArn],
      }),
    );
    exporterRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PublishExportOutcomes',
        actions: ['events:PutEvents'],
        resources: [
          Stack.of(this).formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' }),
        ],
      }),
    );
    this.exporter.function.addEventSource(
      new sources.SqsEventSource(this.jobQueue, {
        // One job per invocation: a slow window never holds other connections' jobs.
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: props.exporterMaxConcurrency,
      }),
    );

    // ------------------------------------------------------------ connection-test permissions
    this.connectionTest.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadConnection',
        actions: ['dynamodb:GetItem'],
        resources: [tables.connections.tableArn],
      }),
    );
    this.connectionTest.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RecordDiagnosis',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [tables.exportState.tableArn],
      }),
    );

    // ------------------------------------------------------------ connection-sweep permissions
    this.connectionSweep.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ScanConnections',
        // Every row, not an index: a row with a bad frequency is in no index query.
        actions: ['dynamodb:Scan'],
        resources: [tables.connections.tableArn],
      }),
    );
    this.connectionSweep.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RecordDiagnosesAndClaimPrefixes',
        // lastError on the state row; the prefix claims (Get, then a transaction of Updates).
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [tables.exportState.tableArn],
      }),
    );

    // ------------------------------------------------------------ dispatcher permissions
    this.dispatcher.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'QueryConnectionsByFrequency',
        actions: ['dynamodb:Query'],
        resources: [tables.connectionsIndexArn('byFrequency')],
      }),
    );
    this.dispatcher.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadStateRecordInvalidRows',
        // BatchGetItem: the states of a page of connections, 100 per call.
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
        resources: [tables.exportState.tableArn],
      }),
    );
    this.dispatcher.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'EnqueueExportJobs',
        actions: ['sqs:SendMessage'],
        resources: [this.jobQueue.queueArn],
      }),
    );
  }
}

/** cdk-nag acknowledgements of the exporter role's run-time resources (customer buckets and roles). */
function acknowledgeExporterPolicy(role: iam.Role, assumeRoleArnPattern: string): void {
  const exporterPolicy = role.node.findChild('DefaultPolicy');
  Validations.of(exporterPolicy).acknowledge({
    id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::*/*]`,
    reason:
      "Customer buckets are arbitrary and added at run time as connection rows; each customer's bucket policy (scoped to the connection's prefix and pinned to the connection id session tag) is what grants the write. Only PutObject/multipart actions, never read, list or delete; our own buckets are denied.",
  });
  if (assumeRoleArnPattern.includes('*')) {
    Validations.of(exporterPolicy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${assumeRoleArnPattern}]`,
      reason:
        "Assume-role mode: customer roles live in customers' accounts, added at run time. The operator narrows the pattern with the assumeRoleArnPattern context; each customer's trust policy requires the connection's external id and session tag.",
    });
  }
}
