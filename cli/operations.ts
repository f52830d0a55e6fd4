/**
 * Shared by the operations commands (stage, tick, export, status, history, rerun, usage):
 * the runtime settings they read from the environment the stack outputs, the export
 * dependencies built from the context's adapters, option parsing, and plain-text tables.
 */
import { ENV, FREQUENCIES, type Frequency } from '../lambdas/definitions.ts';
import { InvalidKmsKeyAllowlistError, parseKmsKeyAllowlist } from '../lambdas/domain/kms-allowlist.ts';
import type { ExportJob } from '../lambdas/ports/index.ts';
import type { ExportJobRun } from '../lambdas/usecases/export-job.ts';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_PART_SIZE_BYTES,
  type ExportDeps,
  type ExportOutcome,
} from '../lambdas/usecases/export-window.ts';
import { CliError, type CommandArgs, stringOption, UsageError } from './command.ts';
import type { CliContext } from './context.ts';

/** What the functions read from their environment (lambdas/config.ts), with the same defaults. */
export interface OperationSettings {
  settleDelayMinutes: number;
  stagingRetentionDays: number;
  partSizeBytes: number;
  kmsKeyAllowlist: string[];
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new CliError(`environment variable ${name} must be a positive number, got "${raw}"`);
  return value;
}

/**
 * A setting that must be the deployed value (the stack outputs it): assuming a default here would
 * export, stage or refuse by different windows and retention than the deployment.
 */
export function deployedNumber(env: NodeJS.ProcessEnv, name: string, output: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    throw new CliError(
      `${name} is not set: it must be the deployed value (stack output ${output}). ` +
        'Run: eval "$(s3-event-export env --outputs <cdk outputs file or describe-stacks JSON>)"',
    );
  }
  return positiveNumber(env, name, 0);
}

/** The deployment's KMS key allowlist (empty when unset), as the exporter reads it. */
export function kmsKeyAllowlistOf(ctx: CliContext): string[] {
  try {
    return parseKmsKeyAllowlist(ctx.env[ENV.kmsKeyAllowlist]);
  } catch (error) {
    if (error instanceof InvalidKmsKeyAllowlistError) throw new CliError(error.message);
    throw error;
  }
}

export function operationSettings(ctx: CliContext): OperationSettings {
  const kmsKeyAllowlist = kmsKeyAllowlistOf(ctx);
  return {
    settleDelayMinutes: deployedNumber(ctx.env, ENV.settleDelayMinutes, 'SettleDelayMinutes'),
    stagingRetentionDays: deployedNumber(ctx.env, ENV.stagingRetentionDays, 'StagingRetentionDays'),
    partSizeBytes: positiveNumber(ctx.env, ENV.partSizeBytes, DEFAULT_PART_SIZE_BYTES),
    kmsKeyAllowlist,
  };
}

/** Everything exportWindow needs, from the context's adapters: what one exporter invocation gets. */
export async function exportDepsOf(
  ctx: CliContext,
  options: { exporterRoleArn?: string | undefined } = {},
): Promise<ExportDeps> {
  const settings = operationSettings(ctx);
  const [
    connections,
    state,
    staging,
    sink,
    { diagnose },
    { createDeploymentPreflight, DEFAULT_GZIP_LEVEL },
    { translateAwsError },
  ] = await Promise.all([
    ctx.connectionRepository(),
    ctx.exportStateStore(),
    ctx.stagingStore(),
    ctx.exportSink(options),
    import('../lambdas/domain/diagnosis.ts'),
    import('../lambdas/runtime.ts'),
    import('../lambdas/adapters/aws-errors.ts'),
  ]);
  return {
    connections,
    state,
    staging,
    sink,
    clock: ctx.clock,
    preflight: createDeploymentPreflight(settings.kmsKeyAllowlist),
    diagnose: (error, connection) =>
      diagnose(translateAwsError(error), {
        connection,
        exporterRoleArn: options.exporterRoleArn,
        at: ctx.clock.now(),
      }),
    settings: {
      leaseMs: DEFAULT_LEASE_MS,
      partSizeBytes: settings.partSizeBytes,
      gzipLevel: DEFAULT_GZIP_LEVEL,
      stagingRetentionDays: settings.stagingRetentionDays,
      settleDelayMs: settings.settleDelayMinutes * 60_000,
    },
  };
}

// ---------------------------------------------------------------- options

export function requiredOption(args: CommandArgs, name: string, what: string): string {
  const value = stringOption(args, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} ${what} is required`);
  return value;
}

/** An ISO-8601 instant (a date alone means its 00:00 UTC). */
export function parseInstant(value: string, flag: string): Date {
  const at = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime()))
    throw new UsageError(`${flag} must be an ISO-8601 instant such as 2026-11-29T08:20:00Z, got "${value}"`);
  return at;
}

export function parseFrequency(value: string): Frequency {
  if (!(FREQUENCIES as readonly string[]).includes(value))
    throw new UsageError(`--frequency must be one of ${FREQUENCIES.join(', ')}, got "${value}"`);
  return value as Frequency;
}

export function positiveInteger(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive whole number`);
  return n;
}

// ---------------------------------------------------------------- output

/** Columns padded to their widest cell, two spaces apart. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `1.5 MiB`-style sizes for tables (JSON output keeps exact byte counts). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `2d 3h 15m`-style durations. */
export function humanDuration(ms: number): string {
  if (ms <= 0) return '0m';
  const minutes = Math.round(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  return [days ? `${days}d` : '', hours ? `${hours}h` : '', rest || (!days && !hours) ? `${rest}m` : '']
    .filter(Boolean)
    .join(' ');
}

/** One export job's outcome as plain data, for printing as text or JSON. */
export interface JobReport {
  connectionId: string;
  windowEnd: string;
  status: string;
  windows: { windowStart: string; windowEnd: string; sequence: number; files: number; records: number }[];
  error?: { code?: string; message: string };
}

export function jobReport(connectionId: string, windowEnd: Date, result: ExportOutcome | Error): JobReport {
  const base = { connectionId, windowEnd: windowEnd.toISOString() };
  if (result instanceof Error) {
    return {
      ...base,
      status: 'failed',
      windows: [],
      error: { message: `${result.name}: ${result.message}` },
    };
  }
  const windows =
    'windows' in result
      ? result.windows.map((w) => ({
          windowStart: w.windowStart.toISOString(),
          windowEnd: w.windowEnd.toISOString(),
          sequence: w.sequence,
          files: w.parts.length,
          records: w.records,
        }))
      : [];
  const report: JobReport = { ...base, status: result.status, windows };
  if (result.status === 'refused')
    report.error = { code: result.diagnosis.code, message: result.diagnosis.message };
  if (result.status === 'inactive') report.error = { message: `connection is ${result.connectionStatus}` };
  return report;
}

/** A failed export's report, with the diagnosis the exporter recorded on the state. */
async function failureReport(
  deps: ExportDeps,
  connectionId: string,
  windowEnd: Date,
  error: unknown,
): Promise<JobReport> {
  const report = jobReport(
    connectionId,
    windowEnd,
    error instanceof Error ? error : new Error(String(error)),
  );
  const recorded = (await deps.state.get(connectionId).catch(() => undefined))?.lastError;
  if (recorded) report.error = { code: recorded.code, message: recorded.message };
  return report;
}

/** Run one export job; a failure is reported with the diagnosis the exporter recorded on the state. */
export async function runExportJob(
  deps: ExportDeps,
  connectionId: string,
  windowEnd: Date,
  exportWindow: (job: { connectionId: string; windowEnd: Date }, deps: ExportDeps) => Promise<ExportOutcome>,
): Promise<JobReport> {
  try {
    return jobReport(connectionId, windowEnd, await exportWindow({ connectionId, windowEnd }, deps));
  } catch (error) {
    return failureReport(deps, connectionId, windowEnd, error);
  }
}

/**
 * Run a queued job as the exporter does (one connection, or a group of one app's connections
 * with shared staged reads): one report per connection, in the job's order.
 */
export async function runQueuedJob(
  deps: ExportDeps,
  job: ExportJob,
  execute: (job: ExportJob, deps: ExportDeps) => Promise<ExportJobRun>,
): Promise<JobReport[]> {
  const run = await execute(job, deps);
  const windowEnd = new Date(job.windowEnd);
  return Promise.all(
    run.members.map((m) =>
      m.outcome
        ? jobReport(m.connectionId, windowEnd, m.outcome)
        : failureReport(deps, m.connectionId, windowEnd, m.error),
    ),
  );
}

/** Text lines of a job report: one per committed window, or one saying why nothing was committed. */
export function jobReportLines(report: JobReport): string[] {
  const head = `${report.connectionId}  ${report.status}`;
  if (report.windows.length > 0) {
    return report.windows.map(
      (w) =>
        `${head}  [${w.windowStart}, ${w.windowEnd})  seq ${w.sequence}  ${w.files} file(s)  ${w.records} record(s)`,
    );
  }
  const why = report.error
    ? `  ${report.error.code ? `${report.error.code}: ` : ''}${report.error.message}`
    : '';
  return [`${head}  window end ${report.windowEnd}${why}`];
}

/** A job that did not do its work: the command exits 1. */
export function jobFailed(report: JobReport): boolean {
  return report.status === 'failed' || report.status === 'refused' || report.status === 'missing';
}
