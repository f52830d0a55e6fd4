import { Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { synthesize } from './synth.ts';

interface Acknowledgment {
  path: string;
  id: string;
  reason: string;
  onStack: boolean;
}

function acknowledgments(root: IConstruct): Acknowledgment[] {
  const out: Acknowledgment[] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        out.push({ path: c.node.path, id, reason, onStack: Stack.isStack(c) || c.node.scope === undefined });
      }
    }
  }
  return out;
}

describe.each([
  ['default context', {}],
  [
    'allowlisted keys, e-mail, narrowed role pattern',
    {
      kmsKeyAllowlist: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      alarmEmail: 'oncall@example.com',
      assumeRoleArnPattern: 'arn:aws:iam::*:role/s3-export-*',
    },
  ],
])('cdk-nag AWS Solutions, %s', (_, context) => {
  const { app } = synthesize(context);

  it('reports no unacknowledged error and no unacknowledged warning', () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    const findings = report.violations.map(
      (v) => `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('every acknowledgment is scoped to a resource (never the app or the stack) and says why', () => {
    const acks = acknowledgments(app);
    expect(acks.length).toBeGreaterThan(5);
    for (const ack of acks) {
      expect(ack.onStack, `${ack.id} on ${ack.path}`).toBe(false);
      expect(ack.reason.length, `${ack.id} on ${ack.path}`).toBeGreaterThan(60);
    }
    // Wildcard findings are acknowledged one by one, each naming the resource pattern it accepts.
    for (const ack of acks.filter((a) => a.id.includes('IAM5'))) {
      expect(ack.id).toMatch(/AwsSolutions-IAM5\[Resource::.+\]$/);
    }
  });
});
