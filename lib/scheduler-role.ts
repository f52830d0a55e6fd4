/**
 * The role EventBridge Scheduler takes to invoke one of our functions: our own (instead of CDK's
 * generated one at stack level), trusted only for schedules of this account's default group
 * (confused deputy).
 */
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';

export function schedulerRole(scope: Construct, description: string): iam.Role {
  const stack = Stack.of(scope);
  return new iam.Role(scope, 'ScheduleRole', {
    description,
    assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
      conditions: {
        StringEquals: {
          'aws:SourceAccount': stack.account,
          'aws:SourceArn': stack.formatArn({
            service: 'scheduler',
            resource: 'schedule-group',
            resourceName: 'default',
          }),
        },
      },
    }),
  });
}
