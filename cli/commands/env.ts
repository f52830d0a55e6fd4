import { readFile } from 'node:fs/promises';
import { ENV } from '../../lambdas/definitions.ts';
import { type CliCommand, CliError, noPositionals, stringOption, UsageError } from '../command.ts';
import { toJsonText } from '../connection-rows.ts';

/** What the KmsKeyAllowlist output holds for an empty list (lib/stack.ts EMPTY_LIST_OUTPUT). */
const EMPTY_LIST_OUTPUT = '-';

/**
 * Every setting the CLI needs, and the stack output it comes from (lib/stack.ts; the CDK tests
 * check that the stack outputs each of them).
 */
export const CLI_SETTINGS_FROM_OUTPUTS = [
  { variable: 'AWS_REGION', output: 'Region' },
  { variable: ENV.connectionsTable, output: 'ConnectionsTableName' },
  { variable: ENV.exportStateTable, output: 'ExportStateTableName' },
  { variable: ENV.stagingLedgerTable, output: 'StagingLedgerTableName' },
  { variable: ENV.stagingBucket, output: 'StagingBucketName' },
  { variable: ENV.jobQueueUrl, output: 'JobQueueUrl' },
  { variable: ENV.exporterRoleArn, output: 'ExporterRoleArn' },
  { variable: ENV.kmsKeyAllowlist, output: 'KmsKeyAllowlist' },
  { variable: ENV.settleDelayMinutes, output: 'SettleDelayMinutes' },
  { variable: ENV.stagingRetentionDays, output: 'StagingRetentionDays' },
] as const;

type Outputs = Record<string, string>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `[{OutputKey, OutputValue}, ...]` of `aws cloudformation describe-stacks`. */
function fromDescribeOutputs(list: unknown[]): Outputs {
  const outputs: Outputs = {};
  for (const item of list) {
    if (isRecord(item) && typeof item.OutputKey === 'string' && typeof item.OutputValue === 'string')
      outputs[item.OutputKey] = item.OutputValue;
  }
  return outputs;
}

/**
 * The stack's outputs from either file an operator has: `cdk deploy --outputs-file` (stack name →
 * output name → value) or `aws cloudformation describe-stacks` (`{"Stacks":[...]}` or its
 * `Outputs` list alone).
 */
export function stackOutputs(document: unknown, stackName: string | undefined): Outputs {
  if (Array.isArray(document)) return fromDescribeOutputs(document);
  if (!isRecord(document)) throw new CliError('the outputs file must hold a JSON object or list');
  if (Array.isArray(document.Stacks)) {
    const stacks = document.Stacks.filter(isRecord);
    const stack = stackName ? stacks.find((s) => s.StackName === stackName) : stacks[0];
    if (!stack) throw new CliError(`no stack ${stackName} in the describe-stacks output`);
    return fromDescribeOutputs(Array.isArray(stack.Outputs) ? stack.Outputs : []);
  }
  const names = Object.keys(document).filter((k) => isRecord(document[k]));
  const chosen = stackName ?? (names.length === 1 ? names[0] : undefined);
  if (!chosen || !isRecord(document[chosen])) {
    throw new CliError(
      stackName
        ? `no stack ${stackName} in the outputs file (it has ${names.join(', ') || 'none'})`
        : `the outputs file has ${names.length} stacks (${names.join(', ')}): name one with --stack`,
    );
  }
  return Object.fromEntries(
    Object.entries(document[chosen]).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
}

/** The CLI's environment from the outputs; refuses when one is missing (a stack older than the CLI). */
export function cliEnvironment(outputs: Outputs): Record<string, string> {
  const missing = CLI_SETTINGS_FROM_OUTPUTS.filter((s) => outputs[s.output] === undefined);
  if (missing.length > 0) {
    throw new CliError(
      `the stack has no output ${missing.map((s) => s.output).join(', ')}: redeploy it with this version (cdk deploy), then run env again`,
    );
  }
  const env: Record<string, string> = {};
  for (const { variable, output } of CLI_SETTINGS_FROM_OUTPUTS) {
    const value = outputs[output] as string;
    env[variable] = output === 'KmsKeyAllowlist' && value === EMPTY_LIST_OUTPUT ? '' : value;
  }
  return env;
}

const shellQuote = (value: string) => `'${value.replaceAll("'", `'"'"'`)}'`;

export const envCommand: CliCommand = {
  name: 'env',
  summary:
    "Print the CLI's settings (tables, bucket, queue, role, settle delay, retention, allowlist) from the stack's outputs",
  usage: '--outputs FILE [--stack NAME]',
  description:
    'FILE is what `cdk deploy --outputs-file FILE` wrote, or what\n' +
    '`aws cloudformation describe-stacks --stack-name NAME` printed ("-" reads stdin). Prints\n' +
    'export lines for a POSIX shell, to evaluate before the other commands:\n' +
    '  aws cloudformation describe-stacks --stack-name S3EventExport > stack.json\n' +
    '  eval "$(s3-event-export env --outputs stack.json)"\n' +
    'The export commands (stage, tick, export, rerun, backfill) refuse to run without the deployed\n' +
    `${ENV.settleDelayMinutes} and ${ENV.stagingRetentionDays}, so they never assume defaults that\n` +
    'differ from the deployment. --json prints the settings as one object.',
  options: {
    outputs: {
      type: 'string',
      valueName: 'FILE',
      description: 'cdk --outputs-file JSON or describe-stacks JSON',
    },
    stack: { type: 'string', valueName: 'NAME', description: 'stack name, when the file holds several' },
  },
  async run(args, ctx) {
    noPositionals(args);
    const file = stringOption(args, 'outputs');
    if (!file)
      throw new UsageError('--outputs FILE is required (cdk deploy --outputs-file, or describe-stacks)');
    const text = await (file === '-' ? readStdin() : readFile(file, 'utf8')).catch((error: Error) => {
      throw new CliError(`${file}: ${error.message}`);
    });
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (error) {
      throw new CliError(`${file} is not JSON: ${(error as Error).message}`);
    }
    const env = cliEnvironment(stackOutputs(document, stringOption(args, 'stack')));
    if (ctx.settings.json) ctx.print(toJsonText(env));
    else for (const [name, value] of Object.entries(env)) ctx.print(`export ${name}=${shellQuote(value)}`);
    return 0;
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
