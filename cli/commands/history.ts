import type { ManifestSupersedes } from '../../lambdas/ports/index.ts';
import { type CliCommand, noPositionals, stringOption } from '../command.ts';
import { humanBytes, positiveInteger, requiredOption, table } from '../operations.ts';

/** `-`, or the earlier commit this one replaced and the objects it superseded (delete them). */
function supersedesText(supersedes: ManifestSupersedes | undefined): string {
  if (!supersedes) return '-';
  const earlier = supersedes.sequence !== undefined ? [`re-export of seq ${supersedes.sequence}`] : [];
  const objects = supersedes.objects.map((o) => `s3://${o.bucketName}/${o.key}`);
  return [...earlier, ...objects].join(', ') || '-';
}

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
            ...(w.bucketName ? { bucketName: w.bucketName } : {}),
            ...(w.supersedes ? { supersedes: w.supersedes } : {}),
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
    const header = [
      'SEQ',
      'WINDOW START',
      'WINDOW END',
      'FILES',
      'RECORDS',
      'BYTES',
      'MANIFEST',
      'SUPERSEDES',
    ];
    const rows = windows.map((w) => [
      String(w.sequence),
      w.windowStart.toISOString(),
      w.windowEnd.toISOString(),
      String(w.parts.length),
      String(w.records),
      humanBytes(w.bytes),
      w.manifestKey,
      supersedesText(w.supersedes),
    ]);
    ctx.print(table([header, ...rows]));
    return 0;
  },
};
