import { ENV } from '../../lambdas/definitions.ts';
import { BackfillRefusedError, backfill as runBackfill } from '../../lambdas/usecases/backfill.ts';
import { type CliCommand, CliError, noPositionals, stringOption, UsageError } from '../command.ts';
import { deployedNumber } from '../operations.ts';

export const backfill: CliCommand = {
  name: 'backfill',
  summary: 'Re-export a paused connection from an earlier instant (moves its watermark back)',
  usage: '--connection ID --from ISO',
  description:
    'Moves the watermark of a PAUSED connection back to --from (or to the start of the committed window\n' +
    '--from falls in), so that after `connections resume` the exporter writes every committed window\n' +
    'after it again to its own keys, with its own sequence (their manifests say what they supersede),\n' +
    'then exports as usual: the bucket holds each event once. A pending window with no part written\n' +
    '(e.g. one failing on a wrong row) is dropped. Refused while the connection is not paused, while an\n' +
    'exporter holds its lease or a pending window has parts written, when --from is later than the\n' +
    'watermark, and when --from (or the start of its committed window) is earlier than the\n' +
    `staging retention (${ENV.stagingRetentionDays}, the stack output StagingRetentionDays; required) allows.`,
  options: {
    connection: { type: 'string', valueName: 'ID', description: 'the connectionId (conn_...)' },
    from: {
      type: 'string',
      valueName: 'ISO',
      description: 'instant to export from, e.g. 2026-11-20T00:00:00Z',
    },
  },
  async run(args, ctx) {
    noPositionals(args);
    const connectionId = stringOption(args, 'connection');
    const fromText = stringOption(args, 'from');
    if (!connectionId) throw new UsageError('--connection ID is required');
    if (!fromText) throw new UsageError('--from ISO is required');
    const from = new Date(fromText);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(fromText) || Number.isNaN(from.getTime())) {
      throw new UsageError('--from must be an ISO-8601 instant, e.g. 2026-11-20T00:00:00Z');
    }
    const stagingRetentionDays = deployedNumber(ctx.env, ENV.stagingRetentionDays, 'StagingRetentionDays');
    const stateTable = ctx.requireSetting('stateTable');
    const connections = await ctx.connectionRepository();
    const { dynamo } = await ctx.awsClients();
    const { DynamoExportStateStore } = await import('../../lambdas/adapters/dynamo-export-state-store.ts');
    try {
      const result = await runBackfill(
        { connectionId, from },
        {
          connections,
          state: new DynamoExportStateStore(dynamo, stateTable),
          clock: ctx.clock,
          stagingRetentionDays,
        },
      );
      const moved =
        result.watermark.getTime() < from.getTime()
          ? ` (the start of the committed window ${from.toISOString()} falls in)`
          : '';
      ctx.print(
        `connection ${connectionId}: watermark ${result.previousWatermark.toISOString()} -> ${result.watermark.toISOString()}${moved}; ` +
          'resume it to export from there (committed windows after it are written again to their own keys)',
      );
      return 0;
    } catch (error) {
      if (error instanceof BackfillRefusedError) throw new CliError(`backfill refused: ${error.message}`);
      throw error;
    }
  },
};
