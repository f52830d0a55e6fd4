/**
 * The CLI's settings come from the deployed stack: `env` turns the stack's outputs (the file of
 * `cdk deploy --outputs-file`, or `aws cloudformation describe-stacks`) into the environment the
 * other commands read, and the commands that stage, export or move watermarks refuse to run
 * without the deployed settle delay and retention instead of assuming 5 and 14.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_SETTINGS_FROM_OUTPUTS } from '../../cli/commands/env.ts';
import { runCli } from '../../cli/main.ts';
import { synthesize } from '../cdk/synth.ts';

const dir = mkdtempSync(join(tmpdir(), 'cli-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env,
    clock: { now: () => new Date('2026-11-29T08:20:00Z') },
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

const KEY = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
/** The outputs a deployment of the synthesized template reports, with names standing in for tokens. */
const deployed: Record<string, string> = (() => {
  // One synthesis for the file (they are slow on a shared machine).
  const { template } = synthesize({ settleDelayMinutes: 7, stagingRetentionDays: 21, kmsKeyAllowlist: KEY });
  const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
  return Object.fromEntries(
    Object.entries(outputs).map(([name, { Value }]) => [
      name,
      typeof Value === 'string' ? Value : name === 'Region' ? 'eu-west-1' : `deployed-${name}`,
    ]),
  );
})();

const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(content));
  return path;
};

describe('env: the CLI settings from the stack outputs', () => {
  it('the stack outputs every setting the CLI needs, and env prints each from a cdk outputs file', async () => {
    // An empty allowlist is deployed as "-" (CloudFormation refuses an empty output value).
    const outputs = { ...deployed, KmsKeyAllowlist: '-' };
    for (const { output } of CLI_SETTINGS_FROM_OUTPUTS) expect(Object.keys(outputs)).toContain(output);
    const run = await cli(['env', '--outputs', file('cdk-outputs.json', { S3EventExport: outputs })]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        "export SETTLE_DELAY_MINUTES='7'",
        "export STAGING_RETENTION_DAYS='21'",
        "export AWS_REGION='eu-west-1'",
        "export CONNECTIONS_TABLE='deployed-ConnectionsTableName'",
        "export EXPORTER_ROLE_ARN='deployed-ExporterRoleArn'",
        "export KMS_KEY_ALLOWLIST=''",
      ]),
    );
    expect(lines).toHaveLength(CLI_SETTINGS_FROM_OUTPUTS.length);
  });

  it('reads describe-stacks output too, with the allowlist as deployed; --json prints one object', async () => {
    const outputs = deployed;
    const described = {
      Stacks: [
        {
          StackName: 'S3EventExport',
          Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
        },
      ],
    };
    const run = await cli(['env', '--outputs', file('described.json', described), '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      KMS_KEY_ALLOWLIST: KEY,
      SETTLE_DELAY_MINUTES: '7',
      STAGING_RETENTION_DAYS: '21',
      JOB_QUEUE_URL: 'deployed-JobQueueUrl',
    });
  });

  it('refuses an outputs file of an older stack, naming the missing outputs, and a file with several stacks without --stack', async () => {
    const { SettleDelayMinutes: _a, StagingRetentionDays: _b, ...old } = deployed;
    const stale = await cli(['env', '--outputs', file('old.json', { S3EventExport: old })]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toBe(
      'error: the stack has no output SettleDelayMinutes, StagingRetentionDays: redeploy it with this version (cdk deploy), then run env again\n',
    );
    const two = await cli(['env', '--outputs', file('two.json', { A: {}, B: {} })]);
    expect(two.stderr).toContain('the outputs file has 2 stacks (A, B): name one with --stack');
    expect((await cli(['env'])).code).toBe(2);
  });
});

describe('export-affecting commands refuse to run with unknown settings', () => {
  const base = {
    AWS_REGION: 'us-east-1',
    CONNECTIONS_TABLE: 't',
    EXPORT_STATE_TABLE: 's',
    STAGING_BUCKET: 'b',
  };
  it.each([
    [['tick', '--frequency', 'DAILY'], 'SETTLE_DELAY_MINUTES'],
    [['export', '--connection', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC'], 'SETTLE_DELAY_MINUTES'],
    [
      ['rerun', '--connection', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC', '--window-end', '2026-11-29T08:00:00Z'],
      'SETTLE_DELAY_MINUTES',
    ],
    [['stage', '-'], 'SETTLE_DELAY_MINUTES'],
    [
      ['backfill', '--connection', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC', '--from', '2026-11-20T00:00:00Z'],
      'STAGING_RETENTION_DAYS',
    ],
  ])('%j without the deployed settings', async (argv, variable) => {
    const run = await cli(argv, base);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `error: ${variable} is not set: it must be the deployed value (stack output`,
    );
    expect(run.stderr).toContain('s3-event-export env --outputs');
    // With only the settle delay known, the retention is still required.
    if (variable === 'SETTLE_DELAY_MINUTES') {
      const half = await cli(argv, { ...base, SETTLE_DELAY_MINUTES: '5' });
      expect(half.stderr).toContain('STAGING_RETENTION_DAYS is not set');
    }
  });
});
