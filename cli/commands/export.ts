import { validateConnection } from '../../lambdas/domain/connection.ts';
import {
  assertWindowEndSettled,
  latestSettledWindowEnd,
  WindowEndNotSettledError,
  windowEndForTick,
} from '../../lambdas/domain/windows.ts';
import { type CliCommand, CliError, noPositionals, stringOption } from '../command.ts';
import {
  exportDepsOf,
  jobFailed,
  jobReportLines,
  operationSettings,
  parseInstant,
  requiredOption,
  runExportJob,
} from '../operations.ts';
import { EXPORTER_ROLE_OPTION, exporterRoleArnOf } from './connections-policy.ts';

export const exportCommand: CliCommand = {
  name: 'export',
  summary: 'Export one connection now, up to the window end of its frequency at an instant',
  usage: '--connection ID [--at ISO] [--exporter-role-arn ARN]',
  description:
    'Runs the exporter for one connection, as an export job of its own schedule would: the window\n' +
    "end is --at (default now minus the settle delay) floored to the connection's frequency boundary,\n" +
    'and everything from its watermark up to that end is exported exactly once (a pending window of an\n' +
    'earlier attempt is finished first). A window end later than now minus the settle delay is refused:\n' +
    'events staged just before it may not be visible yet. Exit 1 when the export fails or is refused.',
  options: {
    connection: { type: 'string', valueName: 'ID', description: 'the connection id (conn_...)' },
    at: {
      type: 'string',
      valueName: 'ISO',
      description:
        'instant whose window end is exported (default now minus the settle delay); refused when that end is later',
    },
    'exporter-role-arn': EXPORTER_ROLE_OPTION,
  },
  async run(args, ctx) {
    noPositionals(args);
    const connectionId = requiredOption(args, 'connection', 'ID');
    const atOption = stringOption(args, 'at');
    const settleDelayMs = operationSettings(ctx).settleDelayMinutes * 60_000;
    // Default: the latest instant whose window is settled now; a later --at is refused below.
    const at =
      atOption === undefined
        ? latestSettledWindowEnd(ctx.clock.now(), settleDelayMs)
        : parseInstant(atOption, '--at');
    const exporterRoleArn = exporterRoleArnOf(args, ctx);
    operationSettings(ctx); // refuse unknown deployed settings before reading anything

    const raw = await (await ctx.connectionRepository()).getRaw(connectionId);
    if (!raw) throw new CliError(`connection ${connectionId} not found`);
    const validation = validateConnection(raw);
    if (!validation.ok) {
      throw new CliError(
        `connection ${connectionId} is invalid and is not exported until fixed: ${validation.errors
          .map((e) => `${e.field}: ${e.message}`)
          .join('; ')}`,
      );
    }
    const windowEnd = windowEndForTick(validation.connection.frequency, at);
    try {
      assertWindowEndSettled(
        windowEnd,
        ctx.clock.now(),
        settleDelayMs,
        `--at ${at.toISOString()}: window end`,
      );
    } catch (error) {
      if (error instanceof WindowEndNotSettledError) throw new CliError(`export refused: ${error.message}`);
      throw error;
    }
    const [deps, { exportWindow }] = await Promise.all([
      exportDepsOf(ctx, { exporterRoleArn }),
      import('../../lambdas/usecases/export-window.ts'),
    ]);
    const report = await runExportJob(deps, connectionId, windowEnd, exportWindow);
    if (ctx.settings.json) ctx.print(JSON.stringify(report, null, 2));
    else for (const line of jobReportLines(report)) ctx.print(line);
    return jobFailed(report) ? 1 : 0;
  },
};
