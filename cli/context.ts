/**
 * What a command gets besides its arguments: the resolved global settings, a
 * clock, output, and adapters built lazily on first use. Adapters are imported
 * dynamically so that commands which need none (validate, new, help) start fast
 * and never load the AWS SDK.
 *
 * To give commands a new adapter: add a method here that builds it from
 * `awsClients()` and `requireSetting(...)`, and an entry in {@link ContextOverrides}
 * so tests can hand in an in-memory one.
 */
import { ENV } from '../lambdas/definitions.ts';
import type {
  Clock,
  ConnectionRepository,
  ExportSink,
  ExportStateQueries,
  ExportStateStore,
  JobQueue,
  StagingLedger,
  StagingStore,
} from '../lambdas/ports/index.ts';
import { systemClock } from '../lambdas/ports/index.ts';
import { CliError } from './errors.ts';

// Type-only: erased at run time, so the SDK is loaded only when a command asks for clients.
type AwsClients = import('../lambdas/adapters/aws-clients.ts').AwsClients;

export type { ExportStateQueries };

export interface CliSettings {
  /** From --region, AWS_REGION or AWS_DEFAULT_REGION. */
  region?: string | undefined;
  /** From --endpoint-url; applies to DynamoDB, S3 and SQS. Absent: the SDK's own AWS_ENDPOINT_URL[_<SERVICE>]. */
  endpointUrl?: string | undefined;
  connectionsTable?: string | undefined;
  stateTable?: string | undefined;
  ledgerTable?: string | undefined;
  stagingBucket?: string | undefined;
  queueUrl?: string | undefined;
  json: boolean;
  debug: boolean;
}

/** Settings a command may require; each names its flag and environment variable for the error message. */
export const REQUIRED_SETTINGS = {
  connectionsTable: { flag: '--connections-table', env: ENV.connectionsTable },
  stateTable: { flag: '--state-table', env: ENV.exportStateTable },
  ledgerTable: { flag: '--ledger-table', env: ENV.stagingLedgerTable },
  stagingBucket: { flag: '--staging-bucket', env: ENV.stagingBucket },
  queueUrl: { flag: '--queue-url', env: ENV.jobQueueUrl },
} as const;

export type RequirableSetting = keyof typeof REQUIRED_SETTINGS;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Replacements for lazily built adapters (tests, the in-process demo). */
export interface ContextOverrides {
  awsClients?: () => Promise<AwsClients>;
  connectionRepository?: () => Promise<ConnectionRepository>;
  exportStateStore?: () => Promise<ExportStateStore>;
  exportStateQueries?: () => Promise<ExportStateQueries>;
  stagingStore?: () => Promise<StagingStore>;
  stagingLedger?: () => Promise<StagingLedger>;
  exportSink?: (options: ExportSinkOptions) => Promise<ExportSink>;
  jobQueue?: () => Promise<JobQueue>;
}

export interface ExportSinkOptions {
  /**
   * Write as the stack's exporter role (a session tagged with the connection id, exactly as the
   * exporter writes); absent: with the operator's own credentials (and always locally).
   */
  exporterRoleArn?: string | undefined;
}

export interface CliContext {
  readonly settings: CliSettings;
  readonly clock: Clock;
  readonly env: NodeJS.ProcessEnv;
  /** Write a line to stdout. */
  print(text: string): void;
  /** Write a line to stderr. */
  warn(text: string): void;
  /** A setting the command cannot do without, or a {@link CliError} naming its flag and variable. */
  requireSetting(name: RequirableSetting): string;
  /** The region, or a {@link CliError}. With an endpoint override (local engines) it defaults to us-east-1. */
  requireRegion(): string;
  /** SDK clients (DynamoDB document client, S3, SQS, EventBridge), built on first use. */
  awsClients(): Promise<AwsClients>;
  /** The Connections table. */
  connectionRepository(): Promise<ConnectionRepository>;
  /** The ExportState table (watermarks, last errors, history). */
  exportStateStore(): Promise<ExportStateStore>;
  /** The ExportState table's operator reads: every state row, window history, monthly usage. */
  exportStateQueries(): Promise<ExportStateQueries>;
  /** The staging bucket (staged events, quarantine). */
  stagingStore(): Promise<StagingStore>;
  /** The StagingLedger table (the stager's per-shard checkpoints). */
  stagingLedger(): Promise<StagingLedger>;
  /** Writes into customers' buckets (S3 endpoint override applies; the first call's options win). */
  exportSink(options?: ExportSinkOptions): Promise<ExportSink>;
  /** The SQS export job queue (--queue-url). */
  jobQueue(): Promise<JobQueue>;
  /** Release what was built (SDK sockets), so the process can exit. */
  dispose(): void;
}

export interface CreateContextOptions {
  settings: CliSettings;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  io?: CliIo;
  overrides?: ContextOverrides;
}

export function createCliContext(options: CreateContextOptions): CliContext {
  const { settings, overrides = {} } = options;
  const env = options.env ?? process.env;
  const io = options.io ?? processIo;
  const clock = options.clock ?? systemClock;
  const used = new Set<{ destroy(): void }>();
  let exportSink: Promise<ExportSink> | undefined;

  const ctx: CliContext = {
    settings,
    clock,
    env,
    print: (text) => io.stdout(`${text}\n`),
    warn: (text) => io.stderr(`${text}\n`),
    requireSetting(name) {
      const value = settings[name];
      if (value) return value;
      const { flag, env: variable } = REQUIRED_SETTINGS[name];
      throw new CliError(`${flag} is required (or set ${variable})`);
    },
    requireRegion() {
      if (settings.region) return settings.region;
      if (settings.endpointUrl) return 'us-east-1';
      throw new CliError('no AWS region: pass --region (or set AWS_REGION)');
    },
    awsClients: once(overrides.awsClients ?? (() => buildAwsClients(ctx, used))),
    connectionRepository: once(
      overrides.connectionRepository ??
        (async () => {
          const tableName = ctx.requireSetting('connectionsTable');
          const { dynamo } = await ctx.awsClients();
          const { DynamoConnectionRepository } = await import(
            '../lambdas/adapters/dynamo-connection-repository.ts'
          );
          // The prefix claims live in the ExportState table: needed only when a row is written.
          return new DynamoConnectionRepository(dynamo, tableName, () => ctx.requireSetting('stateTable'));
        }),
    ),
    exportStateStore: once(overrides.exportStateStore ?? (() => buildExportStateStore(ctx))),
    exportStateQueries: once(overrides.exportStateQueries ?? (() => buildExportStateStore(ctx))),
    stagingStore: once(
      overrides.stagingStore ??
        (async () => {
          const bucket = ctx.requireSetting('stagingBucket');
          const { s3 } = await ctx.awsClients();
          const { S3StagingStore } = await import('../lambdas/adapters/s3-staging-store.ts');
          return new S3StagingStore(s3, bucket);
        }),
    ),
    stagingLedger: once(
      overrides.stagingLedger ??
        (async () => {
          const tableName = ctx.requireSetting('ledgerTable');
          const { dynamo } = await ctx.awsClients();
          const { DynamoStagingLedger } = await import('../lambdas/adapters/dynamo-staging-ledger.ts');
          return new DynamoStagingLedger(dynamo, tableName, { clock });
        }),
    ),
    exportSink(sinkOptions = {}) {
      exportSink ??= (overrides.exportSink ?? ((o) => buildExportSink(ctx, o, used)))(sinkOptions);
      return exportSink;
    },
    jobQueue: once(
      overrides.jobQueue ??
        (async () => {
          const queueUrl = ctx.requireSetting('queueUrl');
          const { sqs } = await ctx.awsClients();
          const { SqsJobQueue } = await import('../lambdas/adapters/sqs-job-queue.ts');
          return new SqsJobQueue(sqs, queueUrl);
        }),
    ),
    dispose() {
      for (const client of used) client.destroy();
      used.clear();
    },
  };
  return ctx;
}

/** `build`, called on the first call only: later calls get the same promise. */
function once<T>(build: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= build();
    return value;
  };
}

async function buildAwsClients(ctx: CliContext, used: Set<{ destroy(): void }>): Promise<AwsClients> {
  const { createAwsClients } = await import('../lambdas/adapters/aws-clients.ts');
  const endpoint = ctx.settings.endpointUrl;
  const lazy = createAwsClients(
    {
      region: ctx.requireRegion(),
      ...(endpoint ? { endpoints: { dynamodb: endpoint, s3: endpoint, sqs: endpoint } } : {}),
    },
    ctx.env,
  );
  return trackUse(lazy, used);
}

async function buildExportStateStore(ctx: CliContext): Promise<ExportStateStore & ExportStateQueries> {
  const tableName = ctx.requireSetting('stateTable');
  const { dynamo } = await ctx.awsClients();
  const { DynamoExportStateStore } = await import('../lambdas/adapters/dynamo-export-state-store.ts');
  return new DynamoExportStateStore(dynamo, tableName);
}

async function buildExportSink(
  ctx: CliContext,
  options: ExportSinkOptions,
  used: Set<{ destroy(): void }>,
): Promise<ExportSink> {
  const [{ endpointFromEnv }, { createS3ClientProvider }, { S3ExportSink }] = await Promise.all([
    import('../lambdas/adapters/aws-clients.ts'),
    import('../lambdas/adapters/s3-client-provider.ts'),
    import('../lambdas/adapters/s3-export-sink.ts'),
  ]);
  const provider = createS3ClientProvider({
    region: ctx.requireRegion(),
    exporterRoleArn: options.exporterRoleArn,
    endpoint: ctx.settings.endpointUrl ?? endpointFromEnv('S3', ctx.env),
    clock: ctx.clock,
  });
  return new S3ExportSink(async (target) => {
    const client = await provider.clientFor(target);
    used.add(client);
    return client;
  });
}

/** The same lazy clients, remembering which were built so {@link CliContext.dispose} closes only those. */
function trackUse(lazy: AwsClients, used: Set<{ destroy(): void }>): AwsClients {
  return {
    get dynamo() {
      used.add(lazy.dynamo);
      return lazy.dynamo;
    },
    get s3() {
      used.add(lazy.s3);
      return lazy.s3;
    },
    get sqs() {
      used.add(lazy.sqs);
      return lazy.sqs;
    },
    get eventBridge() {
      used.add(lazy.eventBridge);
      return lazy.eventBridge;
    },
  };
}
