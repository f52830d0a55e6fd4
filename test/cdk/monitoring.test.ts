import { readFileSync } from 'node:fs';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FREQUENCIES } from '../../lambdas/definitions.ts';
import { DIMENSIONS, METRICS, SERVICE_NAMES } from '../../lambdas/domain/metrics.ts';
import { PROJECT_ROOT } from '../../lib/function.ts';
import { type Synthesized, synthesize } from './synth.ts';

let s: Synthesized;
let withEmail: Synthesized;
beforeAll(() => {
  s = synthesize();
  withEmail = synthesize({
    alarmEmail: 'oncall@example.com',
    stagingRetentionDays: '20',
    settleDelayMinutes: 10,
  });
});

type Alarm = Record<string, unknown> & { AlarmName: string };
const alarms = (x: Synthesized): Record<string, Alarm> =>
  Object.fromEntries(
    Object.values(x.template.findResources('AWS::CloudWatch::Alarm')).map((a) => [
      (a.Properties.AlarmName as string).replace(/^S3EventExport-/, ''),
      a.Properties as Alarm,
    ]),
  );
const topic = (x: Synthesized) => [{ Ref: x.logicalId(x.stack.monitoring.topic) }];

/** Every alarm notifies the topic on ALARM and on OK, and compares "greater than". */
function expectNotifies(x: Synthesized, alarm: Alarm) {
  expect(alarm.AlarmActions).toEqual(topic(x));
  expect(alarm.OKActions).toEqual(topic(x));
  expect(alarm.ComparisonOperator).toBe('GreaterThanThreshold');
  expect(alarm.AlarmDescription).toMatch(/Runbook: docs\/operations\.md/);
}

describe('alarm topic', () => {
  it('is KMS-encrypted with its own key that CloudWatch may use, and publish requires TLS', () => {
    const key = s.stack.monitoring.node.findChild('AlarmTopicKey');
    s.template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: s.arnOf(key) });
    s.template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          {
            Sid: 'CloudWatchAlarmsPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: '*',
          },
        ]),
      },
    });
    s.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ],
      },
    });
  });

  it('subscribes the alarmEmail from context, and nobody without it', () => {
    s.template.resourceCountIs('AWS::SNS::Subscription', 0);
    withEmail.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: withEmail.logicalId(withEmail.stack.monitoring.topic) },
    });
  });
});

describe('alarms', () => {
  it('there are exactly these alarms', () => {
    expect(Object.keys(alarms(s)).sort()).toEqual(
      [
        ...['Stager', 'Compactor', 'Dispatcher', 'Exporter', 'ConnectionTest', 'ConnectionSweep'].flatMap(
          (f) => [`${f}Errors`, `${f}Throttles`],
        ),
        'JobDeadLetterQueueNotEmpty',
        'StagerFailureQueueNotEmpty',
        'ScheduleDeadLetterQueueNotEmpty',
        'CompactionScheduleDeadLetterQueueNotEmpty',
        'StagerIteratorAge',
        'StagingRangesAbandoned',
        'ExportFailures',
        'InvalidConnections-Sweep',
        'StagingFailures',
        'RecordsQuarantined',
        'ConnectionsRefused',
        'SilentStager',
        ...FREQUENCIES.flatMap((f) => [`ExportLag-${f}`, `DataAtRisk-${f}`, `InvalidConnections-${f}`]),
      ].sort(),
    );
  });

  it.each([
    ['Stager', 'stager'],
    ['Dispatcher', 'dispatcher'],
    ['Exporter', 'exporter'],
    ['ConnectionTest', 'connectionTest'],
  ] as const)('%s: any error or throttle in 5 minutes', (label, key) => {
    const fn = key === 'stager' ? s.stack.ingest.stager : s.stack.export[key];
    for (const metric of ['Errors', 'Throttles']) {
      const alarm = alarms(s)[`${label}${metric}`] as Alarm;
      expect(alarm).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: s.logicalId(fn.function) } }],
        Statistic: 'Sum',
        Period: 300,
        Threshold: 0,
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
      expectNotifies(s, alarm);
    }
  });

  it.each([
    ['JobDeadLetterQueueNotEmpty', () => s.stack.export.jobDeadLetterQueue],
    ['StagerFailureQueueNotEmpty', () => s.stack.ingest.failureQueue],
    ['ScheduleDeadLetterQueueNotEmpty', () => s.stack.export.scheduleDeadLetterQueue],
  ] as const)('%s: a single visible message', (name, queue) => {
    const alarm = alarms(s)[name] as Alarm;
    expect(alarm).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [s.logicalId(queue()), 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 0,
    });
    expectNotifies(s, alarm);
  });

  it('stager iterator age above the settle delay for 3 minutes', () => {
    const alarm = alarms(s).StagerIteratorAge as Alarm;
    expect(alarm).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: s.logicalId(s.stack.ingest.stager.function) } }],
      Statistic: 'Maximum',
      Period: 60,
      EvaluationPeriods: 3,
      Threshold: 4 * 60_000,
    });
    expectNotifies(s, alarm);
    expect(alarms(withEmail).StagerIteratorAge?.Threshold).toBe(10 * 60_000);
  });

  it('export failures in two 15-minute periods in a row', () => {
    const alarm = alarms(s).ExportFailures as Alarm;
    expect(alarm).toMatchObject({
      Namespace: 'S3EventExport',
      MetricName: 'ExportFailures',
      Dimensions: [{ Name: 'service', Value: 'exporter' }],
      Statistic: 'Sum',
      Period: 900,
      EvaluationPeriods: 2,
      Threshold: 0,
    });
    expectNotifies(s, alarm);
  });

  it.each([
    ['StagingFailures', 'stager', 300, 2],
    ['RecordsQuarantined', 'stager', 900, 1],
    ['ConnectionsRefused', 'exporter', 900, 1],
  ] as const)('%s: any in %is periods (%i in a row)', (name, service, period, evaluationPeriods) => {
    const alarm = alarms(s)[name] as Alarm;
    expect(alarm).toMatchObject({
      Namespace: 'S3EventExport',
      MetricName: name,
      Dimensions: [{ Name: 'service', Value: service }],
      Statistic: 'Sum',
      Period: period,
      EvaluationPeriods: evaluationPeriods,
      Threshold: 0,
      TreatMissingData: 'notBreaching',
    });
    expectNotifies(s, alarm);
  });

  it("SilentStager: the stream's IncomingRecords with no stager Invocations for 15 minutes", () => {
    const alarm = alarms(s).SilentStager as Alarm;
    expect(alarm).toMatchObject({ Threshold: 0, EvaluationPeriods: 3, TreatMissingData: 'notBreaching' });
    expectNotifies(s, alarm);
    expect(alarm.Metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Id: 'incoming',
          ReturnData: false,
          MetricStat: expect.objectContaining({
            Metric: expect.objectContaining({
              Namespace: 'AWS/Kinesis',
              MetricName: 'IncomingRecords',
              Dimensions: [{ Name: 'StreamName', Value: { Ref: s.logicalId(s.stack.ingest.stream) } }],
            }),
            Period: 300,
            Stat: 'Sum',
          }),
        }),
        expect.objectContaining({
          Id: 'invocations',
          MetricStat: expect.objectContaining({
            Metric: expect.objectContaining({
              Namespace: 'AWS/Lambda',
              MetricName: 'Invocations',
              Dimensions: [
                { Name: 'FunctionName', Value: { Ref: s.logicalId(s.stack.ingest.stager.function) } },
              ],
            }),
          }),
        }),
      ]),
    );
  });

  const lagMetric = (frequency: string) => ({
    Namespace: 'S3EventExport',
    MetricName: 'ExportLagSeconds',
    Dimensions: [
      { Name: 'Frequency', Value: frequency },
      { Name: 'service', Value: 'dispatcher' },
    ],
    Statistic: 'Maximum',
  });

  it.each([
    ['FIFTEEN_MINUTES', 900, 900 + 240],
    ['DAILY', 86_400, 86_400 + 240],
    ['WEEKLY', 86_400, 7 * 86_400 + 240],
  ] as const)('ExportLag-%s: lag above one period plus the settle delay', (frequency, period, threshold) => {
    const alarm = alarms(s)[`ExportLag-${frequency}`] as Alarm;
    expect(alarm).toMatchObject({
      ...lagMetric(frequency),
      Period: period,
      EvaluationPeriods: 1,
      Threshold: threshold,
      TreatMissingData: 'ignore',
    });
    expectNotifies(s, alarm);
  });

  it.each([
    // 14-day retention, 4-minute settle delay: retention − max(2 days, 2 periods), at least one
    // period + settle delay + 1 h (a weekly connection on time is 7 days behind at its tick).
    ['FIFTEEN_MINUTES', 12 * 86_400, 18 * 86_400],
    ['DAILY', 12 * 86_400, 18 * 86_400],
    ['WEEKLY', 7 * 86_400 + 240 + 3600, 7 * 86_400 + 600 + 3600],
  ] as const)(
    'DataAtRisk-%s: unexported data older than the retention minus the lead time',
    (frequency, threshold, withTwentyDays) => {
      const alarm = alarms(s)[`DataAtRisk-${frequency}`] as Alarm;
      expect(alarm).toMatchObject({
        ...lagMetric(frequency),
        MetricName: 'UnexportedDataAgeSeconds',
        Threshold: threshold,
        TreatMissingData: 'ignore',
      });
      expectNotifies(s, alarm);
      expect(alarms(withEmail)[`DataAtRisk-${frequency}`]?.Threshold).toBe(withTwentyDays);
    },
  );

  it.each(FREQUENCIES)('InvalidConnections-%s: any invalid row', (frequency) => {
    const alarm = alarms(s)[`InvalidConnections-${frequency}`] as Alarm;
    expect(alarm).toMatchObject({
      Namespace: 'S3EventExport',
      MetricName: 'InvalidConnections',
      Dimensions: [
        { Name: 'Frequency', Value: frequency },
        { Name: 'service', Value: 'dispatcher' },
      ],
      Statistic: 'Maximum',
      Threshold: 0,
      TreatMissingData: 'ignore',
    });
    expectNotifies(s, alarm);
  });
});

describe('dashboard', () => {
  it('shows staged/exported events, bytes, files, lag, errors per function and every alarm', () => {
    const body = JSON.stringify(
      Object.values(s.template.findResources('AWS::CloudWatch::Dashboard'))[0]?.Properties.DashboardBody,
    );
    for (const metric of [
      'EventsStaged',
      'EventsExported',
      'RecordsQuarantined',
      'BytesExported',
      'StagedBytesRead',
      'FilesExported',
      'ExportLagSeconds',
      'InvalidConnections',
      'ExportJobsEnqueued',
      'IteratorAge',
      'Errors',
      'Throttles',
    ]) {
      expect(body).toContain(`\\"${metric}\\"`);
    }
    expect(body).toContain('\\"alarms\\"');
    for (const fn of [s.stack.ingest.stager, s.stack.export.exporter, s.stack.export.dispatcher]) {
      expect(body).toContain(s.logicalId(fn.function));
    }
  });
});

describe('the functions emit what the alarms watch (lambdas/domain/metrics.ts)', () => {
  const source = (fn: string) => readFileSync(`${PROJECT_ROOT}lambdas/${fn}/handler.ts`, 'utf8');
  const emits = (code: string, key: keyof typeof METRICS) =>
    code.includes(`'${METRICS[key]}'`) || code.includes(`METRICS.${key}`);

  it.each([
    ['stager', ['eventsStaged', 'recordsQuarantined', 'stagingFailures']],
    [
      'dispatcher',
      [
        'exportJobsEnqueued',
        'invalidConnections',
        'exportLagSeconds',
        'unexportedDataAgeSeconds',
        'dataAtRiskConnections',
      ],
    ],
    [
      'exporter',
      [
        'eventsExported',
        'filesExported',
        'bytesExported',
        'connectionsRefused',
        'exportFailures',
        'stagedBytesRead',
      ],
    ],
  ] as const)('%s handler emits %j under its service name', (fn, keys) => {
    const code = source(fn);
    for (const key of keys) expect(emits(code, key), `${fn}: ${METRICS[key]}`).toBe(true);
    const service = SERVICE_NAMES[fn];
    expect(code.includes(`createMetrics('${service}')`) || code.includes(`SERVICE_NAMES.${fn}`)).toBe(true);
  });

  it('the dispatcher adds the Frequency dimension', () => {
    const code = source('dispatcher');
    expect(
      code.includes(`addDimension('${DIMENSIONS.frequency}'`) || code.includes('DIMENSIONS.frequency'),
    ).toBe(true);
  });
});
