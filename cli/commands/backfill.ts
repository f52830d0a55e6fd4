import { ENV } from '../../lambdas/definitions.ts';
import { BackfillRefused, backfill as runBackfill } from '../../lambdas/usecases/backfill.ts';
import { type CliCommand, CliError, noPositionals, stringOption, UsageError } from '../command.ts';
import { deployedNumber } from '../operations.ts';

export const backfill: CliCommand = {
  name: 'backfill',
  summary: 'Re-export a paused connection from an earlier instant (moves its watermark back)',
  usage: '--connection ID --from ISO',
  description:
    'Moves the watermark of a PAUSED connection back to --from, so that after `connections resume`\n' +
    'the next tick exports everything received since --from as one window (split into parts by size).\n' +
    'Refused while the connection is not paused, while an exporter holds its lease or a started window\n' +
    'is not committed, when --from is later than the watermark, and when --from is earlier than the\n' +
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
      ctx.print(
        `connection ${connectionId}: watermark ${result.previousWatermark.toISOString()} -> ${result.watermark.toISOString()}; ` +
          'resume it to export from there',
      );
      return 0;
    } catch (error) {
      if (error instanceof BackfillRefused) throw new CliError(`backfill refused: ${error.message}`);
      throw error;
    }
  },
};
