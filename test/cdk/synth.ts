/**
 * Synthesizes the production stack for assertions, with cdk.json's context (the
 * feature flags a real `cdk synth` uses) plus the given context. Bundling is
 * skipped (`aws:cdk:bundling-stacks: []`) unless asked for: test/cdk/bundling.test.ts
 * is the one place that really runs esbuild.
 */
import { readFileSync } from 'node:fs';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { configFromContext, refuseUnknownContext } from '../../lib/config.ts';
import { PROJECT_ROOT } from '../../lib/function.ts';
import { S3EventExportStack } from '../../lib/stack.ts';

const cdkJson = JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as {
  context: Record<string, unknown>;
};

export interface Synthesized {
  app: App;
  stack: S3EventExportStack;
  template: Template;
  /** The CloudFormation logical id of a construct (or its default child). */
  logicalId(construct: IConstruct): string;
  /** `{ 'Fn::GetAtt': [<logical id>, 'Arn'] }` of a construct. */
  arnOf(construct: IConstruct): { 'Fn::GetAtt': [string, string] };
}

export function synthesize(
  context: Record<string, unknown> = {},
  options: { bundle?: boolean; outdir?: string } = {},
): Synthesized {
  const app = new App({
    context: {
      ...cdkJson.context,
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...context,
    },
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
  refuseUnknownContext(Object.keys(app.node.getAllContext()));
  const stack = new S3EventExportStack(
    app,
    'S3EventExport',
    configFromContext((key) => app.node.tryGetContext(key)),
  );
  const template = Template.fromStack(stack);
  const logicalId = (construct: IConstruct) =>
    stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
  return {
    app,
    stack,
    template,
    logicalId,
    arnOf: (construct) => ({ 'Fn::GetAtt': [logicalId(construct), 'Arn'] }),
  };
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: Record<string, unknown>;
}

/** The statements of every AWS::IAM::Policy attached to the role with `roleLogicalId`, in order. */
export function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleLogicalId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

/** Every statement of every identity policy in the template, with the policy's logical id. */
export function allIdentityStatements(template: Template): { policy: string; statement: Statement }[] {
  const out: { policy: string; statement: Statement }[] = [];
  for (const [id, p] of Object.entries(template.findResources('AWS::IAM::Policy'))) {
    for (const statement of p.Properties.PolicyDocument.Statement as Statement[])
      out.push({ policy: id, statement });
  }
  for (const [id, r] of Object.entries(template.findResources('AWS::IAM::Role'))) {
    for (const inline of (r.Properties.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]) {
      for (const statement of inline.PolicyDocument.Statement) out.push({ policy: id, statement });
    }
  }
  return out;
}

export const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** `{ 'Fn::Join': ['', [<arn of construct>, suffix]] }` as CDK renders `arnForObjects` and `${arn}/index/x`. */
export function joinArn(arn: unknown, suffix: string) {
  return { 'Fn::Join': ['', [arn, suffix]] };
}
