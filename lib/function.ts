/**
 * One Lambda function of the product, with the project's defaults: esbuild
 * bundling from node_modules (no Docker), Node.js 22 on arm64, ESM with source
 * maps, its own log group with a retention, its own role holding only what the
 * function's construct grants (no AWS managed policy), and the Powertools
 * service name that its metrics carry as the `service` dimension.
 */
import { fileURLToPath } from 'node:url';
import { type Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE } from '../lambdas/definitions.ts';
import type { ServiceName } from '../lambdas/domain/metrics.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ExportFunctionProps {
  /** Handler module under lambdas/, e.g. `stager/handler.ts` (exports `handler`). */
  readonly entry: string;
  /** The Powertools service name of its logs and metrics (domain/metrics.ts SERVICE_NAMES). */
  readonly serviceName: ServiceName;
  /** The function's description in the Lambda console. */
  readonly description: string;
  /** Memory, MB. */
  readonly memorySize: number;
  /** The function's timeout. */
  readonly timeout: Duration;
  /** Environment variables (table and bucket names, settings). */
  readonly environment: Record<string, string>;
  /** Days its log group keeps logs. */
  readonly logRetentionDays: number;
  /**
   * Worker-thread entries under lambdas/ bundled beside index.mjs as `<name>.mjs` (the handler
   * finds them next to its own module), e.g. `usecases/record-worker-thread.ts`.
   * @default [] (no worker bundles)
   */
  readonly workerEntries?: string[];
  /**
   * Node.js options beyond `--enable-source-maps` (NODE_OPTIONS), e.g. `--expose-gc`.
   * @default [] (only `--enable-source-maps`)
   */
  readonly nodeOptions?: string[];
}

/** esbuild target of every function bundle and of its worker bundles (the Lambda runtime's Node.js). */
export const BUNDLE_TARGET = 'node24';

/** The shell command (local bundling, no Docker) that bundles one worker entry into `outputDir`. */
export function workerBundleCommand(entry: string, outputDir: string): string {
  const name = entry.replace(/^.*\//, '').replace(/\.ts$/, '.mjs');
  const args = [
    `${PROJECT_ROOT}node_modules/.bin/esbuild`,
    `${PROJECT_ROOT}lambdas/${entry}`,
    '--bundle',
    '--platform=node',
    '--format=esm',
    `--target=${BUNDLE_TARGET}`,
    '--minify',
    '--sourcemap',
    '--sources-content=false',
    '--main-fields=module,main',
    '--log-level=warning',
    `--outfile=${outputDir}/${name}`,
  ];
  return args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
}

export class ExportFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ExportFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // A role per function instead of AWSLambdaBasicExecutionRole: logs only to its own group.
    this.role = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `s3-event-export ${props.serviceName} function`,
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: `${PROJECT_ROOT}lambdas/${props.entry}`,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      description: props.description,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        NODE_OPTIONS: ['--enable-source-maps', ...(props.nodeOptions ?? [])].join(' '),
      },
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: BUNDLE_TARGET,
        platform: 'node',
        minify: true,
        sourceMap: true, // used at run time through NODE_OPTIONS=--enable-source-maps
        sourcesContent: false,
        // Bundle the AWS SDK too: the pinned version is the one tested (S3 conditional
        // writes need a recent SDK), not whatever the runtime ships.
        externalModules: [],
        mainFields: ['module', 'main'],
        // ESM bundles of CommonJS dependencies still call require().
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        forceDockerBundling: false,
        ...(props.workerEntries?.length
          ? {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling: (_inputDir: string, outputDir: string) =>
                  (props.workerEntries ?? []).map((entry) => workerBundleCommand(entry, outputDir)),
              },
            }
          : {}),
      },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 24 is the runtime the code is built (esbuild target node24) and tested for (npm test runs the bundling, handler and integration tests under Node 24); moving to a newer runtime is a deliberate, tested upgrade, not drift.',
    });
  }
}
