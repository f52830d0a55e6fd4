import { type CliCommand, CliError, flag, noPositionals } from '../command.ts';
import { operationSettings, parseInstant, requiredOption } from '../operations.ts';
import { createProgress } from '../progress.ts';
import { EXPORTER_ROLE_OPTION, exporterRoleArnOf } from './connections-policy.ts';

export const rerun: CliCommand = {
  name: 'rerun',
  summary: 'Re-export a past committed window from staging into the same keys, with the same manifest',
  usage: '--connection ID --window-end ISO [--force] [--exporter-role-arn ARN]',
  description:
    'For a customer who lost or damaged a window\'s files: the window (as "history" lists it) is\n' +
    'written again from the staged events into the same data keys, and its manifest again with the\n' +
    'same sequence number and window start. The watermark, sequence, history and usage are not\n' +
    'touched. Refused when the window is not in the history, is no longer committed, starts before\n' +
    "the staging retention, or when the connection's keys changed since (name, folder, PGP).\n" +
    'Verified before written: the window is recomputed from staging without writing and compared\n' +
    'with the history (part keys, records per part, SHA-256 of each gzip part; for a PGP connection\n' +
    'keys and records only). When they differ nothing is written and the command exits 1; --force\n' +
    'writes it anyway and reports every difference. Exit 1 when refused.',
  options: {
    connection: { type: 'string', valueName: 'ID', description: 'the connection id (conn_...)' },
    'window-end': { type: 'string', valueName: 'ISO', description: 'end of the committed window to rewrite' },
    'exporter-role-arn': EXPORTER_ROLE_OPTION,
    force: {
      type: 'boolean',
      description: 'write the window even when it differs from the committed history (reported)',
    },
  },
  async run(args, ctx) {
    noPositionals(args);
    const connectionId = requiredOption(args, 'connection', 'ID');
    const windowEnd = parseInstant(requiredOption(args, 'window-end', 'ISO'), '--window-end');
    const exporterRoleArn = exporterRoleArnOf(args, ctx);
    const settings = operationSettings(ctx);
    const [
      connections,
      state,
      history,
      staging,
      sink,
      { createDeploymentPreflight, DEFAULT_GZIP_LEVEL },
      rerunModule,
    ] = await Promise.all([
      ctx.connectionRepository(),
      ctx.exportStateStore(),
      ctx.exportStateQueries(),
      ctx.stagingStore(),
      ctx.exportSink({ exporterRoleArn }),
      import('../../lambdas/runtime.ts'),
      import('../../lambdas/usecases/rerun-window.ts'),
    ]);
    let result: Awaited<ReturnType<typeof rerunModule.rerunWindow>>;
    const progress = createProgress({
      label: 'rerun',
      stream: process.stderr,
      json: ctx.settings.json,
      now: () => performance.now(),
    });
    // One window: the line shows it is still working (elapsed), then its records.
    progress.update({ done: 0, total: 1 });
    const ticker = setInterval(() => progress.update({ done: 0, total: 1 }), 1000);
    try {
      result = await rerunModule.rerunWindow(
        { connectionId, windowEnd, force: flag(args, 'force') },
        {
          connections,
          state,
          history,
          staging,
          sink,
          clock: ctx.clock,
          preflight: createDeploymentPreflight(settings.kmsKeyAllowlist),
          settings: {
            partSizeBytes: settings.partSizeBytes,
            gzipLevel: DEFAULT_GZIP_LEVEL,
            stagingRetentionDays: settings.stagingRetentionDays,
          },
        },
      );
    } catch (error) {
      progress.clear();
      if (error instanceof rerunModule.RerunRefusedError)
        throw new CliError(`rerun refused (${error.code}): ${error.message}`);
      throw error;
    } finally {
      clearInterval(ticker);
    }
    progress.update({ done: 1, total: 1, events: result.records });
    progress.finish();
    if (ctx.settings.json) {
      ctx.print(
        JSON.stringify(
          {
            connectionId,
            windowStart: result.windowStart.toISOString(),
            windowEnd: result.windowEnd.toISOString(),
            sequence: result.sequence,
            records: result.records,
            parts: result.parts,
            manifestKey: result.manifestKey,
            differences: result.differences,
            hashesCompared: result.hashesCompared,
            forced: result.forced,
          },
          null,
          2,
        ),
      );
    } else {
      ctx.print(
        `rewrote window [${result.windowStart.toISOString()}, ${result.windowEnd.toISOString()}) of ${connectionId}: ` +
          `sequence ${result.sequence}, ${result.parts.length} file(s), ${result.records} record(s)`,
      );
      for (const part of result.parts)
        ctx.print(`  ${part.key}  ${part.records} record(s)  ${part.bytes} bytes`);
      ctx.print(`  ${result.manifestKey}`);
      if (result.forced) ctx.print('  --force: written although it differs from the committed window');
      else if (result.hashesCompared)
        ctx.print('  verified: part keys, records and SHA-256 match the committed window');
      else ctx.print('  verified: part keys and records (PGP output is randomized: no SHA-256 to compare)');
      for (const difference of result.differences)
        ctx.warn(`differs from the committed window: ${difference}`);
    }
    return 0;
  },
};
