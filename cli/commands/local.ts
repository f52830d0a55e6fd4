import { resolve } from 'node:path';
import { ENV } from '../../lambdas/definitions.ts';
import { type CliCommand, noPositionals, stringOption, UsageError } from '../command.ts';
import type { CliContext } from '../context.ts';

/** The customer bucket `connections new` puts in a row by default: created so the template works as is. */
export const DEFAULT_LOCAL_BUCKET = 'my-export-bucket';

/** How export jobs run locally, printed in place of a queue URL. */
export const LOCAL_JOBS_NOTE =
  'jobs: no local SQS queue; leave JOB_QUEUE_URL unset and `tick` / `export` run each export job in-process, as the exporter would';

function portOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new UsageError(`--port must be a port number 1-65535, got "${value}"`);
  return port;
}

/** Bucket names as S3 accepts them (the common subset: 3-63 lower-case letters, digits, "-" and "."). */
function bucketNames(values: unknown): string[] {
  const names = Array.isArray(values) && values.length > 0 ? (values as string[]) : [DEFAULT_LOCAL_BUCKET];
  for (const name of names) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name))
      throw new UsageError(`--bucket "${name}" is not a valid bucket name (3-63 of a-z, 0-9, "-", ".")`);
  }
  return names;
}

/**
 * The first SIGINT (Ctrl-C) or SIGTERM. The listeners stay until `dispose()`, after the engines are
 * stopped: with none left, the engines' own signal hook would re-raise the signal and end the
 * process before the orderly stop.
 */
function stopSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let on: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    on = resolve;
  });
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    received,
    dispose() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

/** `export NAME=value` lines (values quoted for the shell when needed). */
export function exportLines(env: Record<string, string>): string[] {
  const quote = (value: string) =>
    /^[\w@%+=:,./-]*$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
  return Object.entries(env).map(([name, value]) => `export ${name}=${quote(value)}`);
}

export const local: CliCommand = {
  name: 'local',
  summary: "Run the stack's tables and buckets on local engines until Ctrl-C, to try every command by hand",
  usage: '[--data DIR] [--port N] [--bucket NAME ...]',
  description:
    'Starts DynamoDB Local (Java) and the S3 emulator on 127.0.0.1 with the Connections, ExportState\n' +
    'and StagingLedger tables, the staging bucket and the customer bucket(s), then prints the\n' +
    'environment lines to paste into another shell: every command of this CLI then works against\n' +
    'them (one AWS_ENDPOINT_URL serves DynamoDB and S3). There is no local SQS queue: `tick` and\n' +
    '`export` run the export jobs in-process. Stays in the foreground; Ctrl-C or SIGTERM stops both\n' +
    'engines (no process or port left behind). Without --data the state is in memory and gone on\n' +
    'exit; with --data DIR it is kept in DIR and found again by the next start. See README.md,\n' +
    '"Try it by hand".',
  options: {
    data: {
      type: 'string',
      valueName: 'DIR',
      description: 'keep tables and buckets in DIR across restarts (default: in memory)',
    },
    port: {
      type: 'string',
      valueName: 'N',
      description: 'port of the endpoint on 127.0.0.1 (default: a free one)',
    },
    bucket: {
      type: 'string',
      multiple: true,
      valueName: 'NAME',
      description: `customer bucket to create, repeatable (default ${DEFAULT_LOCAL_BUCKET})`,
    },
  },
  async run(args, ctx) {
    noPositionals(args);
    const dataOption = stringOption(args, 'data');
    const dataDir = dataOption === undefined ? undefined : resolve(dataOption);
    const port = portOption(stringOption(args, 'port'));
    const buckets = bucketNames(args.values.bucket);
    // Listening before the engines start: a signal during start-up still stops them.
    const signals = stopSignal();
    try {
      return await serve(ctx, { dataDir, port, buckets }, signals.received);
    } finally {
      signals.dispose();
    }
  },
};

async function serve(
  ctx: CliContext,
  options: { dataDir: string | undefined; port: number | undefined; buckets: string[] },
  stopRequested: Promise<NodeJS.Signals>,
): Promise<number> {
  const { dataDir, port, buckets } = options;
  const { startLocalEngines } = await import('../../local/engines.ts');
  const engines = await startLocalEngines({
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(port !== undefined ? { port } : {}),
  });
  try {
    for (const bucket of buckets) await engines.createBucket(bucket);
    const env: Record<string, string> = { AWS_ENDPOINT_URL: engines.endpoint };
    for (const [name, value] of Object.entries(engines.env)) {
      // One endpoint for both services instead of the per-service variables.
      if (!name.startsWith('AWS_ENDPOINT_URL_')) env[name] = value;
    }
    if (ctx.settings.json) {
      ctx.print(
        JSON.stringify({
          env,
          buckets,
          stagingBucket: engines.stagingBucket,
          dataDir: dataDir ?? null,
          dynamoPid: engines.dynamoPid,
          dynamoPort: engines.dynamoPort,
        }),
      );
    } else {
      ctx.print(
        `# DynamoDB Local and the S3 emulator on ${engines.endpoint}; state ${dataDir ? `kept in ${dataDir}` : 'in memory'}`,
      );
      ctx.print(
        `# DynamoDB Local: java pid ${engines.dynamoPid} on port ${engines.dynamoPort}, reached through the endpoint`,
      );
      ctx.print('# paste into another shell:');
      for (const line of exportLines(env)) ctx.print(line);
      ctx.print(`unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_S3 AWS_PROFILE ${ENV.jobQueueUrl}`);
      ctx.print(`# customer bucket(s): ${buckets.join(', ')}; staging bucket: ${engines.stagingBucket}`);
      ctx.print(`# ${LOCAL_JOBS_NOTE}`);
      ctx.print('# running; Ctrl-C stops both engines');
    }
    const signal = await stopRequested;
    ctx.warn(`${signal}: stopping the local engines`);
  } finally {
    await engines.stop();
  }
  ctx.warn('stopped');
  return 0;
}
