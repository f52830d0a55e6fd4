/**
 * The CDK app: `npx cdk synth|deploy` (cdk.json runs it with tsx). Synthesizes
 * offline, with no AWS credentials: the stack is environment-agnostic unless the
 * `account` and `region` context values are given. Configuration comes from
 * context (lib/config.ts, docs/operations.md); an unknown context key fails the synth.
 * cdk-nag's AWS Solutions checks run as a synthesis validation: an unacknowledged
 * finding fails the synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext, refuseUnknownContext } from '../lib/config.ts';
import { S3EventExportStack } from '../lib/stack.ts';

const app = new App();
const context = (key: string): unknown => app.node.tryGetContext(key);
refuseUnknownContext(Object.keys(app.node.getAllContext()));

const stackName = (context('stackName') as string | undefined) ?? 'S3EventExport';
const account = context('account') as string | undefined;
const region = context('region') as string | undefined;

new S3EventExportStack(app, stackName, {
  ...configFromContext(context),
  description: 's3-event-export: exports platform events to customers’ S3 buckets, exactly once',
  ...(account && region ? { env: { account, region } } : {}),
});

if (context('nag') !== 'false' && context('nag') !== false) {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

app.synth();
