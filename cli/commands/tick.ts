import {
  assertWindowEndSettled,
  latestSettledWindowEnd,
  WindowEndNotSettledError,
  windowEndForTick,
} from '../../lambdas/domain/windows.ts';
import type { ExportJob, JobQueue } from '../../lambdas/ports/index.ts';
import type { TickResult } from '../../lambdas/usecases/dispatch-tick.ts';
import { type CliCommand, CliError, noPositionals, stringOption } from '../command.ts';
import {
  exportDepsOf,
  humanDuration,
  type JobReport,
  jobFailed,
  jobReportLines,
  operationSettings,
  parseFrequency,
  parseInstant,
  requiredOption,
  runQueuedJob,
} from '../operations.ts';
import { EXPORTER_ROLE_OPTION, exporterRoleArnOf } from './connections-policy.ts';

/** `3 job(s)`, or `3 job(s) in 1 message(s)` when connections of one app were grouped. */
function jobCount(result: TickResult): string {
  const messages = result.jobs.length < result.connections ? ` in ${result.jobs.length} message(s)` : '';
  return `${result.connections} job(s)${messages}`;
}

function tickSummary(result: TickResult): string {
  return (
    `window end ${result.windowEnd.toISOString()}: ${jobCount(result)}, ` +
    `${result.inactiveConnections} inactive, ${result.invalidConnections.length} invalid, ` +
    `max lag ${humanDuration(result.maxLagSeconds * 1000)}`
  );
}

export const tick: CliCommand = {
  name: 'tick',
  summary: "Do what a frequency's schedule does at an instant: dispatch export jobs (and, locally, run them)",
  usage: '--frequency F [--at ISO] [--queue-url URL]',
  description:
    'Dispatches the export jobs of the ACTIVE connections of the frequency for the window end the\n' +
    'tick stands for (--at floored to the frequency boundary; default now minus the settle delay), as\n' +
    'the dispatcher does (a window end later than now minus the settle delay is refused):\n' +
    'one group job per app for its connections that are on time (they read the staged data once).\n' +
    'With --queue-url (or JOB_QUEUE_URL) the jobs are sent to the SQS queue for the exporter.\n' +
    'Without it (local engines) each job runs here and now through the exporter, and its outcome is\n' +
    'printed: connection, window, files, records. Exit 1 when a job fails or is refused.',
  options: {
    frequency: { type: 'string', valueName: 'F', description: 'FIFTEEN_MINUTES, DAILY or WEEKLY' },
    at: {
      type: 'string',
      valueName: 'ISO',
      description:
        "the schedule's scheduled time (default now minus the settle delay); refused when its window end is later than that",
    },
    'exporter-role-arn': EXPORTER_ROLE_OPTION,
  },
  async run(args, ctx) {
    noPositionals(args);
    const frequency = parseFrequency(requiredOption(args, 'frequency', 'F'));
    const atOption = stringOption(args, 'at');
    const settings = operationSettings(ctx);
    const settleDelayMs = settings.settleDelayMinutes * 60_000;
    // Default: the latest tick whose window is settled now (the schedule fires a settle delay late).
    const scheduledTime =
      atOption === undefined
        ? latestSettledWindowEnd(ctx.clock.now(), settleDelayMs)
        : parseInstant(atOption, '--at');
    try {
      assertWindowEndSettled(
        windowEndForTick(frequency, scheduledTime),
        ctx.clock.now(),
        settleDelayMs,
        '--at',
      );
    } catch (error) {
      if (error instanceof WindowEndNotSettledError) throw new CliError(`tick refused: ${error.message}`);
      throw error;
    }
    const queued = ctx.settings.queueUrl !== undefined;
    const exporterRoleArn = queued ? undefined : exporterRoleArnOf(args, ctx);

    const [connections, state, { dispatchTick }, { InProcessJobQueue }] = await Promise.all([
      ctx.connectionRepository(),
      ctx.exportStateStore(),
      import('../../lambdas/usecases/dispatch-tick.ts'),
      import('../../lambdas/adapters/in-process-job-queue.ts'),
    ]);
    const local = new InProcessJobQueue();
    const jobs: JobQueue = queued ? await ctx.jobQueue() : local;
    const result = await dispatchTick(
      { frequency, scheduledTime },
      { connections, state, jobs, clock: ctx.clock },
      settleDelayMs,
    );

    const reports: JobReport[] = [];
    if (!queued && local.size > 0) {
      const [deps, { executeExportJob }] = await Promise.all([
        exportDepsOf(ctx, { exporterRoleArn }),
        import('../../lambdas/usecases/export-job.ts'),
      ]);
      // Continuations and the retries of a group's failed members are queued here too, and run.
      await local.drain(async (job: ExportJob) => {
        reports.push(...(await runQueuedJob({ ...deps, jobs: local }, job, executeExportJob)));
      });
    }

    if (ctx.settings.json) {
      ctx.print(
        JSON.stringify(
          {
            frequency,
            scheduledTime: scheduledTime.toISOString(),
            windowEnd: result.windowEnd.toISOString(),
            jobs: result.jobs,
            invalidConnections: result.invalidConnections,
            inactiveConnections: result.inactiveConnections,
            maxLagSeconds: result.maxLagSeconds,
            lagging: result.lagging,
            ...(queued ? { queueUrl: ctx.settings.queueUrl } : { exports: reports }),
          },
          null,
          2,
        ),
      );
    } else {
      ctx.print(`tick ${frequency} at ${scheduledTime.toISOString()}: ${tickSummary(result)}`);
      for (const id of result.invalidConnections)
        ctx.warn(`invalid connection row ${id}: not exported; its error is recorded ("status" shows it)`);
      for (const lag of result.lagging)
        ctx.warn(`connection ${lag.connectionId} is ${humanDuration(lag.lagSeconds * 1000)} behind schedule`);
      if (queued) ctx.print(`${jobCount(result)} sent to ${ctx.settings.queueUrl}`);
      for (const report of reports) for (const line of jobReportLines(report)) ctx.print(line);
    }
    return reports.some(jobFailed) ? 1 : 0;
  },
};
