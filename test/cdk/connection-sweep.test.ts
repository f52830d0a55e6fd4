/**
 * The hourly connection sweep in the stack: an EventBridge Scheduler schedule invokes the
 * connection-sweep function every hour (so a row with a bad frequency, which no dispatcher
 * query returns, is reported within the hour); the function may scan the Connections table and
 * record diagnoses; an alarm watches its InvalidConnections metric.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lambdas/definitions.ts';
import { METRICS, SERVICE_NAMES } from '../../lambdas/domain/metrics.ts';
import { type Synthesized, statementsOfRole, synthesize } from './synth.ts';

const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
let s: Synthesized;
beforeAll(() => {
  s = synthesize({ kmsKeyAllowlist: KEY });
});

describe('connection sweep', () => {
  it('an hourly schedule invokes the sweep function, with retries and the schedule DLQ', () => {
    const ex = s.stack.export;
    const schedule = s.template.toJSON().Resources[s.logicalId(ex.sweepSchedule)].Properties;
    expect(schedule.ScheduleExpression).toBe('rate(1 hour)');
    expect(schedule.State).toBe('ENABLED');
    expect(schedule.FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
    expect(schedule.Target.Arn).toEqual(s.arnOf(ex.connectionSweep.function));
    expect(schedule.Target.RetryPolicy).toEqual({ MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 3600 });
    expect(schedule.Target.DeadLetterConfig).toEqual({ Arn: s.arnOf(ex.scheduleDeadLetterQueue) });
    expect(schedule.Target.RoleArn).toEqual(s.arnOf(ex.node.findChild('ScheduleRole')));
  });

  it('the sweep function knows the tables and the KMS allowlist it checks rows against', () => {
    const fn = s.template.toJSON().Resources[s.logicalId(s.stack.export.connectionSweep.function)].Properties;
    expect(fn.Handler).toBe('index.handler');
    const variables = fn.Environment.Variables as Record<string, unknown>;
    expect(variables[ENV.kmsKeyAllowlist]).toBe(KEY);
    expect(variables[ENV.connectionsTable]).toEqual({ Ref: s.logicalId(s.stack.tables.connections) });
    expect(variables[ENV.exportStateTable]).toEqual({ Ref: s.logicalId(s.stack.tables.exportState) });
    expect(variables.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAMES.connectionSweep);
  });

  it('its role scans the Connections table (not an index) and records on ExportState; nothing else', () => {
    const statements = statementsOfRole(s.template, s.logicalId(s.stack.export.connectionSweep.role));
    const bySid = Object.fromEntries(statements.filter((st) => st.Sid).map((st) => [st.Sid, st]));
    expect(bySid.ScanConnections).toMatchObject({
      Effect: 'Allow',
      Action: 'dynamodb:Scan',
      Resource: s.arnOf(s.stack.tables.connections),
    });
    expect(bySid.RecordDiagnosesAndClaimPrefixes).toMatchObject({
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      Resource: s.arnOf(s.stack.tables.exportState),
    });
    const actions = statements.flatMap((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]));
    expect(
      actions.filter((a) => a.startsWith('dynamodb:') || a.startsWith('s3:') || a.startsWith('sts:')),
    ).toEqual(['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:UpdateItem']);
  });

  it('an alarm fires when the sweep reports an invalid row', () => {
    const alarm =
      s.template.toJSON().Resources[s.logicalId(s.stack.monitoring.alarms['InvalidConnections-Sweep']!)]
        .Properties;
    expect(alarm.MetricName).toBe(METRICS.invalidConnections);
    expect(alarm.Dimensions).toEqual([{ Name: 'service', Value: SERVICE_NAMES.connectionSweep }]);
    expect(alarm.Period).toBe(3600);
    expect(alarm.Threshold).toBe(0);
    expect(alarm.ComparisonOperator).toBe('GreaterThanThreshold');
    // The sweep function's own failures are alarmed like every function's.
    expect(s.stack.monitoring.alarms.ConnectionSweepErrors).toBeDefined();
  });
});
