/**
 * Monitoring: the alarm topic, the alarms (each described in docs/operations.md,
 * "Alarms and what to do") and the dashboard. Custom metrics are the ones the
 * Lambdas emit (lambdas/domain/metrics.ts), with the same dimensions.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FREQUENCIES, type Frequency } from '../lambdas/definitions.ts';
import { dataAtRiskAgeMs } from '../lambdas/domain/data-expiry.ts';
import {
  METRIC_NAMESPACE,
  METRICS,
  type MetricName,
  metricDimensions,
  SERVICE_NAMES,
  type ServiceName,
} from '../lambdas/domain/metrics.ts';
import { periodMs } from '../lambdas/domain/windows.ts';

export type FunctionRole =
  | 'stager'
  | 'compactor'
  | 'dispatcher'
  | 'exporter'
  | 'connectionTest'
  | 'connectionSweep';

export interface MonitoringProps {
  /** Every function of the stack, by its role: each gets error and throttle alarms. */
  readonly functions: Record<FunctionRole, lambda.IFunction>;
  /** The stream the stager consumes: records coming in while the stager is not invoked mean it stopped. */
  readonly stream: kinesis.IStream;
  /** Dead-letter queues by a short name (used in the alarm's id): any message means work was given up. */
  readonly deadLetterQueues: Record<string, sqs.IQueue>;
  /** The schedules' settle delay: the stager iterator-age threshold and the export-lag slack. */
  readonly settleDelayMinutes: number;
  /** Days staged data is kept: the data-at-risk alarms fire at half. */
  readonly stagingRetentionDays: number;
  /**
   * E-mail subscribed to the alarm topic (the recipient confirms the subscription).
   * @default undefined (the topic has no subscriber)
   */
  readonly alarmEmail?: string | undefined;
}

const FIVE_MINUTES = Duration.minutes(5);
const FIFTEEN_MINUTES = Duration.minutes(15);

/** The alarm period of a per-frequency metric: one datapoint per tick, at most a day (CloudWatch's limit). */
export function frequencyAlarmPeriod(frequency: Frequency): Duration {
  return Duration.seconds(Math.min(periodMs(frequency), 86_400_000) / 1000);
}

/** Export lag above which a connection is more than one window behind: one period plus the settle delay. */
export function exportLagThresholdSeconds(frequency: Frequency, settleDelayMinutes: number): number {
  return periodMs(frequency) / 1000 + settleDelayMinutes * 60;
}

/** Minutes of records coming in without a single stager invocation before SilentStager fires. */
export const SILENT_STAGER_MINUTES = 15;

/**
 * SilentStager's math: 1 in a period when the stream took records and the stager was not invoked
 * (a missing datapoint is 0: Lambda and Kinesis publish none for an idle minute). Nested IFs only.
 */
export const SILENT_STAGER_EXPRESSION = 'IF(FILL(incoming, 0) > 0, IF(FILL(invocations, 0) == 0, 1, 0), 0)';

/**
 * Age of the oldest unexported staged data at which a frequency's connections are at risk: the
 * retention minus max(2 days, 2 periods), never below what an on-time connection reaches
 * (lambdas/domain/data-expiry.ts).
 */
export function dataAtRiskThresholdSeconds(
  frequency: Frequency,
  stagingRetentionDays: number,
  settleDelayMinutes: number,
): number {
  return dataAtRiskAgeMs(frequency, stagingRetentionDays * 86_400_000, settleDelayMinutes * 60_000) / 1000;
}

export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: Record<string, cloudwatch.Alarm> = {};

  private readonly action: actions.SnsAction;
  private readonly prefix: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.prefix = Stack.of(this).stackName;

    // Its own key: CloudWatch must be allowed to use it, and it should not be able to use the data key.
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: 's3-event-export alarm topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 's3-event-export alarms',
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    this.action = new actions.SnsAction(this.topic);

    this.addFunctionAlarms(props);
    this.addStagingAlarms(props);
    this.addExportAlarms(props);

    this.dashboard = this.buildDashboard(props);
  }

  /** Errors and throttles of every function, and every dead-letter queue that holds messages. */
  private addFunctionAlarms(props: MonitoringProps): void {
    const fnLabels: Record<FunctionRole, string> = {
      stager: 'Stager',
      compactor: 'Compactor',
      dispatcher: 'Dispatcher',
      exporter: 'Exporter',
      connectionTest: 'ConnectionTest',
      connectionSweep: 'ConnectionSweep',
    };
    for (const [role, fn] of Object.entries(props.functions) as [FunctionRole, lambda.IFunction][]) {
      const label = fnLabels[role];
      this.alarm(`${label}Errors`, {
        metric: fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
        threshold: 0,
        description: `The ${label} function failed (threw or timed out).`,
      });
      this.alarm(`${label}Throttles`, {
        metric: fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }),
        threshold: 0,
        description: `The ${label} function was throttled (account or reserved concurrency exhausted).`,
      });
    }

    for (const [name, queue] of Object.entries(props.deadLetterQueues)) {
      this.alarm(`${name}NotEmpty`, {
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: FIVE_MINUTES,
          statistic: 'Maximum',
        }),
        threshold: 0,
        description: `${name} has messages: work was given up after its retries.`,
      });
    }
  }

  /** The stager and staging: iterator age, abandoned ranges, failures, quarantine, refusals, silence. */
  private addStagingAlarms(props: MonitoringProps): void {
    this.alarm('StagerIteratorAge', {
      metric: props.functions.stager.metric('IteratorAge', {
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      threshold: props.settleDelayMinutes * 60_000,
      evaluationPeriods: 3,
      description: `The stager is more than the settle delay (${props.settleDelayMinutes} min) behind the stream: events land in later windows than they were received in, and may expire from the stream.`,
    });

    this.alarm('StagingRangesAbandoned', {
      metric: this.custom(
        METRICS.stagingRangesAbandoned,
        SERVICE_NAMES.stager,
        undefined,
        FIVE_MINUTES,
        'Sum',
      ),
      threshold: 0,
      description:
        'The Kinesis event source gave up on records before they were staged (retries or record age exhausted); they are in the stager failure queue and must be put again.',
    });
    this.alarm('StagingFailures', {
      metric: this.custom(METRICS.stagingFailures, SERVICE_NAMES.stager, undefined, FIVE_MINUTES, 'Sum'),
      threshold: 0,
      evaluationPeriods: 2,
      description:
        'Stager batches keep failing (two 5-minute periods in a row): the shard does not advance, and its records age towards the stream retention.',
    });
    this.alarm('RecordsQuarantined', {
      metric: this.custom(
        METRICS.recordsQuarantined,
        SERVICE_NAMES.stager,
        undefined,
        FIFTEEN_MINUTES,
        'Sum',
      ),
      threshold: 0,
      description: 'Records could not be staged as events and were quarantined (malformed or too large).',
    });
    this.alarm('ConnectionsRefused', {
      metric: this.custom(
        METRICS.connectionsRefused,
        SERVICE_NAMES.exporter,
        undefined,
        FIFTEEN_MINUTES,
        'Sum',
      ),
      threshold: 0,
      description:
        'The exporter refused a connection (configuration problem: its error is recorded on its state, see `status`).',
    });
    const silentPeriod = FIVE_MINUTES;
    this.alarm('SilentStager', {
      metric: new cloudwatch.MathExpression({
        expression: SILENT_STAGER_EXPRESSION,
        usingMetrics: {
          incoming: props.stream.metricIncomingRecords({ period: silentPeriod, statistic: 'Sum' }),
          invocations: props.functions.stager.metricInvocations({ period: silentPeriod, statistic: 'Sum' }),
        },
        period: silentPeriod,
        label: 'records in, stager not invoked',
      }),
      threshold: 0,
      evaluationPeriods: SILENT_STAGER_MINUTES / silentPeriod.toMinutes(),
      description: `The stream took records for ${SILENT_STAGER_MINUTES} minutes and the stager was not invoked once (event source mapping disabled or deleted, or its permissions removed).`,
    });
  }

  /** The exports: failures, lag, data at risk, invalid rows. */
  private addExportAlarms(props: MonitoringProps): void {
    this.alarm('ExportFailures', {
      metric: this.custom(METRICS.exportFailures, SERVICE_NAMES.exporter, undefined, FIFTEEN_MINUTES, 'Sum'),
      threshold: 0,
      evaluationPeriods: 2,
      description: 'Export jobs keep failing with unexpected errors (two 15-minute periods in a row).',
    });

    for (const frequency of FREQUENCIES) {
      const period = frequencyAlarmPeriod(frequency);
      const lag = this.custom(
        METRICS.exportLagSeconds,
        SERVICE_NAMES.dispatcher,
        frequency,
        period,
        'Maximum',
      );
      // Datapoints come once per tick: keep the state between ticks (IGNORE) rather than flap to OK.
      this.alarm(`ExportLag-${frequency}`, {
        metric: lag,
        threshold: exportLagThresholdSeconds(frequency, props.settleDelayMinutes),
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
        description: `A ${frequency} connection is more than one period (plus the settle delay) behind.`,
      });
      const atRisk = dataAtRiskThresholdSeconds(
        frequency,
        props.stagingRetentionDays,
        props.settleDelayMinutes,
      );
      this.alarm(`DataAtRisk-${frequency}`, {
        metric: this.custom(
          METRICS.unexportedDataAgeSeconds,
          SERVICE_NAMES.dispatcher,
          frequency,
          period,
          'Maximum',
        ),
        threshold: atRisk,
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
        description: `A ${frequency} connection (active, paused, invalid or never exported) has staged data unexported for more than ${Math.round((atRisk / 86_400) * 10) / 10} days: it expires at the staging retention (${props.stagingRetentionDays} days), and is then lost.`,
      });
      this.alarm(`InvalidConnections-${frequency}`, {
        metric: this.custom(
          METRICS.invalidConnections,
          SERVICE_NAMES.dispatcher,
          frequency,
          period,
          'Maximum',
        ),
        threshold: 0,
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
        description: `${frequency} connection rows fail validation and are not exported until fixed.`,
      });
    }

    this.alarm('InvalidConnections-Sweep', {
      metric: this.custom(
        METRICS.invalidConnections,
        SERVICE_NAMES.connectionSweep,
        undefined,
        Duration.hours(1),
        'Maximum',
      ),
      threshold: 0,
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
      description:
        'The hourly sweep found connection rows that are refused (invalid row, unusable PGP or KMS key, prefix collision), including rows no schedule sees.',
    });
  }

  private custom(
    metricName: MetricName,
    service: ServiceName,
    frequency: Frequency | undefined,
    period: Duration,
    statistic: 'Sum' | 'Maximum',
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName,
      dimensionsMap: metricDimensions(service, frequency),
      period,
      statistic,
    });
  }

  private alarm(
    id: string,
    options: {
      metric: cloudwatch.IMetric;
      threshold: number;
      description: string;
      evaluationPeriods?: number;
      treatMissingData?: cloudwatch.TreatMissingData;
    },
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmName: `${this.prefix}-${id}`,
      alarmDescription: `${options.description} Runbook: docs/operations.md, alarm ${id.replace(/-.*$/, '')}.`,
      metric: options.metric,
      threshold: options.threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      treatMissingData: options.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    this.alarms[id] = alarm;
    return alarm;
  }

  private buildDashboard(props: MonitoringProps): cloudwatch.Dashboard {
    const sum = (name: MetricName, service: ServiceName, label: string) =>
      new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: name,
        dimensionsMap: metricDimensions(service),
        period: FIFTEEN_MINUTES,
        statistic: 'Sum',
        label,
      });
    const perFrequency = (name: MetricName) =>
      FREQUENCIES.map((f) =>
        this.custom(name, SERVICE_NAMES.dispatcher, f, FIFTEEN_MINUTES, 'Maximum').with({ label: f }),
      );
    const fns = Object.entries(props.functions) as [FunctionRole, lambda.IFunction][];

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${this.prefix}-operations`,
      defaultInterval: Duration.days(1),
    });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Events staged / exported / quarantined',
        left: [
          sum(METRICS.eventsStaged, SERVICE_NAMES.stager, 'staged'),
          sum(METRICS.eventsExported, SERVICE_NAMES.exporter, 'exported'),
          sum(METRICS.recordsQuarantined, SERVICE_NAMES.stager, 'quarantined'),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Bytes exported / staged bytes read',
        left: [sum(METRICS.bytesExported, SERVICE_NAMES.exporter, 'bytes')],
        right: [sum(METRICS.stagedBytesRead, SERVICE_NAMES.exporter, 'staged bytes read')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Files exported / connections refused',
        left: [
          sum(METRICS.filesExported, SERVICE_NAMES.exporter, 'files'),
          sum(METRICS.connectionsRefused, SERVICE_NAMES.exporter, 'refused'),
        ],
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Export lag / age of unexported data (s, max per frequency)',
        left: perFrequency(METRICS.exportLagSeconds),
        right: perFrequency(METRICS.unexportedDataAgeSeconds),
        rightAnnotations: [
          {
            value: dataAtRiskThresholdSeconds('DAILY', props.stagingRetentionDays, props.settleDelayMinutes),
            label: 'data at risk (daily, 15-minute)',
            color: cloudwatch.Color.RED,
          },
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Jobs enqueued / invalid connection rows',
        left: perFrequency(METRICS.exportJobsEnqueued),
        right: perFrequency(METRICS.invalidConnections),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Stager iterator age (ms)',
        left: [
          props.functions.stager.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
        ],
        leftAnnotations: [{ value: props.settleDelayMinutes * 60_000, label: 'settle delay' }],
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Errors per function',
        left: fns.map(([role, fn]) =>
          fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum', label: role }),
        ),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Throttles / export failures',
        left: fns.map(([role, fn]) =>
          fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum', label: role }),
        ),
        right: [sum(METRICS.exportFailures, SERVICE_NAMES.exporter, 'export failures')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues (visible messages)',
        left: Object.entries(props.deadLetterQueues).map(([name, q]) =>
          q.metricApproximateNumberOfMessagesVisible({
            period: FIVE_MINUTES,
            statistic: 'Maximum',
            label: name,
          }),
        ),
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        alarms: Object.values(this.alarms),
        width: 24,
      }),
    );
    return dashboard;
  }
}
