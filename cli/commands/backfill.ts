import { ENV } from '../../lambdas/definitions.ts';
import { BackfillRefusedError, backfill as runBackfill } from '../../lambdas/usecases/backfill.ts';
import { type CliCommand, CliError, noPositionals, stringOption, UsageError } from '../command.ts';
import { deployedNumber, parseInstant } from '../operations.ts';

export const backfill: CliCommand = {
  name: 'backfill',
  summary: 'Re-export a paused connection from an earlier instant (moves its watermark back)',
  usage: '--connection ID (--from ISO | --committed-since ISO)',
  description:
    'Moves the watermark of a PAUSED connection back to --from (or to the start of the committed window\n' +
    '--from falls in), so that after `connections resume` the exporter writes every committed window\n' +
    'after it again to its own keys, with its own sequence (their manifests say what they supersede),\n' +
    'then exports as usual: the bucket holds each event once. A pending window with no part recorded\n' +
    '(e.g. one failing on a wrong row) is dropped; the next export supersedes what it may have left.\n' +
    'Refused while the connection is not paused, while an exporter holds its lease or a pending\n' +
    'window has parts written, when --from is later than the watermark, and when --from (or the\n' +
    'start of its committed window) is earlier than the\n' +
    `staging retention (${ENV.stagingRetentionDays}, the stack output StagingRetentionDays; required) allows.\n` +
    'After fixing a field the exporter accepts whatever its value (folderPath, connectionName, appId,\n' +
    'appName, dbName, events, userAttributes, deviceAttributes), --committed-since (the instant of the\n' +
    'wrong edit) starts at the earliest window committed since then, so every window written under\n' +
    'the wrong row is written again under the fixed one (docs/operations.md, "Fixing a row").',
  options: {
    connection: { type: 'string', valueName: 'ID', description: 'the connectionId (conn_...)' },
    from: {
      type: 'string',
      valueName: 'ISO',
      description: 'instant to export from, e.g. 2026-11-20T00:00:00Z',
    },
    'committed-since': {
      type: 'string',
      valueName: 'ISO',
      description: 'instead of --from: export again every window committed at or after this instant',
    },
  },
  async run(args, ctx) {
    noPositionals(args);
    const connectionId = stringOption(args, 'connection');
    const fromText = stringOption(args, 'from');
    const sinceText = stringOption(args, 'committed-since');
    if (!connectionId) throw new UsageError('--connection ID is required');
    if ((fromText === undefined) === (sinceText === undefined))
      throw new UsageError('one of --from ISO or --committed-since ISO is required');
    const from = fromText === undefined ? undefined : parseInstant(fromText, '--from');
    const since = sinceText === undefined ? undefined : parseInstant(sinceText, '--committed-since');
    const stagingRetentionDays = deployedNumber(ctx.env, ENV.stagingRetentionDays, 'StagingRetentionDays');
    const stateTable = ctx.requireSetting('stateTable');
    const connections = await ctx.connectionRepository();
    const { dynamo } = await ctx.awsClients();
    const { DynamoExportStateStore } = await import('../../lambdas/adapters/dynamo-export-state-store.ts');
    try {
      const result = await runBackfill(
        since ? { connectionId, committedSince: since } : { connectionId, from: from! },
        {
          connections,
          state: new DynamoExportStateStore(dynamo, stateTable),
          clock: ctx.clock,
          stagingRetentionDays,
        },
      );
      if (since && !result.firstCommittedSince) {
        ctx.print(
          `connection ${connectionId}: no window committed since ${since.toISOString()}, nothing to write again; ` +
            `watermark ${result.watermark.toISOString()}; resume it`,
        );
        return 0;
      }
      let moved = '';
      if (since) moved = ` (the start of the earliest window committed since ${since.toISOString()})`;
      else if (from && result.watermark.getTime() < from.getTime())
        moved = ` (the start of the committed window ${from.toISOString()} falls in)`;
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
