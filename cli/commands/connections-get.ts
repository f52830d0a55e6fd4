import { validateConnection } from '../../lambdas/domain/connection.ts';
import { type CliCommand, CliError, EXIT_FAILURE, onePositional } from '../command.ts';
import { formatRowError, redactConnection, toJsonText } from '../connection-rows.ts';

export const connectionsGet: CliCommand = {
  name: 'connections get',
  summary: 'Print one connection row; exit 1 if it is missing or invalid',
  usage: 'ID',
  description:
    'Prints the normalized row (PGP key shown as its length). A stored row that fails validation\n' +
    '(it would not be exported) is printed as stored, followed by its errors, with exit code 1.',
  async run(args, ctx) {
    const connectionId = onePositional(args, 'ID (a connectionId, conn_...)');
    const raw = await (await ctx.connectionRepository()).getRaw(connectionId);
    if (!raw) throw new CliError(`connection ${connectionId} not found`);
    const result = validateConnection(raw);
    if (result.ok) {
      ctx.print(toJsonText(redactConnection(result.connection)));
      return 0;
    }
    if (ctx.settings.json) {
      ctx.print(toJsonText({ connection: redactConnection(raw), valid: false, errors: result.errors }));
    } else {
      ctx.print(toJsonText(redactConnection(raw)));
      for (const e of result.errors) ctx.warn(formatRowError({ label: `connection ${connectionId}`, ...e }));
    }
    return EXIT_FAILURE;
  },
};
