import { type CliCommand, noPositionals, stringOption } from '../command.ts';
import { humanBytes, positiveInteger, requiredOption, table } from '../operations.ts';

export const history: CliCommand = {
  name: 'history',
  summary:
    "A connection's committed windows, newest first: sequence, window, files, records, bytes, manifest",
  usage: '--connection ID [--limit N]',
  options: {
    connection: { type: 'string', valueName: 'ID', description: 'the connection id (conn_...)' },
    limit: { type: 'string', valueName: 'N', description: 'at most N windows (default 50)' },
  },
  async run(args, ctx) {
    noPositionals(args);
    const connectionId = requiredOption(args, 'connection', 'ID');
    const limit = positiveInteger(stringOption(args, 'limit'), '--limit', 50);
    const windows = await (await ctx.exportStateQueries()).listHistory(connectionId, {
      limit,
      newestFirst: true,
    });
    if (ctx.settings.json) {
      ctx.print(
        JSON.stringify(
          windows.map((w) => ({
            sequence: w.sequence,
            windowStart: w.windowStart.toISOString(),
            windowEnd: w.windowEnd.toISOString(),
            files: w.parts.length,
            records: w.records,
            bytes: w.bytes,
            manifestKey: w.manifestKey,
            parts: w.parts,
            committedAt: w.committedAt.toISOString(),
          })),
          null,
          2,
        ),
      );
      return 0;
    }
    if (windows.length === 0) {
      ctx.warn(`connection ${connectionId} has no committed window`);
      return 0;
    }
    const header = ['SEQ', 'WINDOW START', 'WINDOW END', 'FILES', 'RECORDS', 'BYTES', 'MANIFEST'];
    const rows = windows.map((w) => [
      String(w.sequence),
      w.windowStart.toISOString(),
      w.windowEnd.toISOString(),
      String(w.parts.length),
      String(w.records),
      humanBytes(w.bytes),
      w.manifestKey,
    ]);
    ctx.print(table([header, ...rows]));
    return 0;
  },
};
