import type { MonthlyUsage } from '../../lambdas/ports/index.ts';
import { type CliCommand, noPositionals, stringOption, UsageError } from '../command.ts';
import { humanBytes, requiredOption, table } from '../operations.ts';

export const usage: CliCommand = {
  name: 'usage',
  summary: 'Events, files and bytes exported per connection in a month (what the product meters)',
  usage: '--month YYYY-MM [--connection ID]',
  description:
    'Summed from the history rows, each written when its window commits, in the same transaction\n' +
    'as its watermark, so retried and re-delivered exports are never counted twice (a backfill\n' +
    're-export counts again); a month is that of the window end (UTC).\n' +
    'Without --connection: every connection with a row or a state.',
  options: {
    month: { type: 'string', valueName: 'YYYY-MM', description: 'the UTC month, e.g. 2026-11' },
    connection: { type: 'string', valueName: 'ID', description: 'only this connection' },
  },
  async run(args, ctx) {
    noPositionals(args);
    const month = requiredOption(args, 'month', 'YYYY-MM');
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month))
      throw new UsageError(`--month must be YYYY-MM, got "${month}"`);
    const only = stringOption(args, 'connection');
    const queries = await ctx.exportStateQueries();

    const names = new Map<string, string>();
    let ids: string[];
    if (only) {
      ids = [only];
    } else {
      const [rows, states] = await Promise.all([
        (await ctx.connectionRepository()).listRaw(),
        queries.listStates(),
      ]);
      for (const row of rows) {
        if (typeof row.connectionId === 'string')
          names.set(row.connectionId, `${String(row.appId ?? '-')}/${String(row.connectionName ?? '-')}`);
      }
      ids = [...new Set([...names.keys(), ...states.map((s) => s.connectionId)])].sort();
    }
    const usages: MonthlyUsage[] = [];
    for (const id of ids) usages.push(await queries.getUsage(id, month));
    const total = usages.reduce(
      (sum, u) => ({ events: sum.events + u.events, files: sum.files + u.files, bytes: sum.bytes + u.bytes }),
      { events: 0, files: 0, bytes: 0 },
    );

    if (ctx.settings.json) {
      ctx.print(JSON.stringify({ month, connections: usages, total }, null, 2));
      return 0;
    }
    const header = ['CONNECTION ID', 'APP/NAME', 'EVENTS', 'FILES', 'BYTES'];
    const rows = usages.map((u) => [
      u.connectionId,
      names.get(u.connectionId) ?? '-',
      String(u.events),
      String(u.files),
      `${u.bytes} (${humanBytes(u.bytes)})`,
    ]);
    if (usages.length > 1)
      rows.push([
        'TOTAL',
        '',
        String(total.events),
        String(total.files),
        `${total.bytes} (${humanBytes(total.bytes)})`,
      ]);
    ctx.print(`usage in ${month}`);
    ctx.print(table([header, ...rows]));
    return 0;
  },
};
