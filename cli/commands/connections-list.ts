import { FREQUENCIES, type Frequency } from '../../lambdas/definitions.ts';
import { validateConnection } from '../../lambdas/domain/connection.ts';
import { type CliCommand, noPositionals, stringOption, UsageError } from '../command.ts';
import { redactConnection, toJsonText } from '../connection-rows.ts';
import { table } from '../operations.ts';

function text(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined ? '-' : JSON.stringify(value);
}

export const connectionsList: CliCommand = {
  name: 'connections list',
  summary: 'List connection rows (id, app, name, frequency, status, bucket, valid)',
  usage: '[--app APP_ID] [--frequency FREQ]',
  description: 'Rows that fail validation are listed with VALID = no; `connections get ID` shows why.',
  options: {
    app: { type: 'string', valueName: 'APP_ID', description: 'only connections of this app' },
    frequency: {
      type: 'string',
      valueName: 'FREQ',
      description: `only this frequency (${FREQUENCIES.join(', ')}; uses the byFrequency index)`,
    },
  },
  async run(args, ctx) {
    noPositionals(args);
    const app = stringOption(args, 'app');
    const frequency = stringOption(args, 'frequency');
    if (frequency !== undefined && !(FREQUENCIES as readonly string[]).includes(frequency)) {
      throw new UsageError(`--frequency must be one of ${FREQUENCIES.join(', ')}`);
    }
    const repository = await ctx.connectionRepository();
    const raws = frequency
      ? await repository.listRawByFrequency(frequency as Frequency)
      : await repository.listRaw();
    const entries = raws
      .filter((raw) => app === undefined || raw.appId === app)
      .map((raw) => ({ raw, result: validateConnection(raw) }))
      .sort(
        (a, b) =>
          text(a.raw.appId).localeCompare(text(b.raw.appId)) ||
          text(a.raw.connectionName).localeCompare(text(b.raw.connectionName)) ||
          text(a.raw.connectionId).localeCompare(text(b.raw.connectionId)),
      );
    if (ctx.settings.json) {
      ctx.print(
        toJsonText(
          entries.map(({ raw, result }) =>
            result.ok
              ? { valid: true, connection: redactConnection(result.connection) }
              : { valid: false, connection: redactConnection(raw), errors: result.errors },
          ),
        ),
      );
      return 0;
    }
    if (entries.length === 0) {
      ctx.warn('no connections');
      return 0;
    }
    const header = ['CONNECTION ID', 'APP', 'NAME', 'FREQUENCY', 'STATUS', 'BUCKET', 'VALID'];
    const rows = entries.map(({ raw, result }) => {
      const row: Record<string, unknown> = result.ok ? result.connection : raw;
      return [
        text(row.connectionId),
        text(row.appId),
        text(row.connectionName),
        text(row.frequency),
        text(row.status),
        text(row.bucketName),
        result.ok ? 'yes' : 'no',
      ];
    });
    ctx.print(table([header, ...rows]));
    return 0;
  },
};
