import { type CliCommand, CliError, flag, onePositional, UsageError } from '../command.ts';

export const connectionsDelete: CliCommand = {
  name: 'connections delete',
  summary: 'Delete a connection row (needs --yes)',
  usage: 'ID --yes',
  description:
    'Removes the row from the Connections table: no further exports. Files already written to the\n' +
    "customer's bucket and the connection's export state are not touched.",
  options: { yes: { type: 'boolean', description: 'really delete' } },
  async run(args, ctx) {
    const connectionId = onePositional(args, 'ID (a connectionId, conn_...)');
    if (!flag(args, 'yes')) throw new UsageError(`deleting connection ${connectionId} needs --yes`);
    const repository = await ctx.connectionRepository();
    if (!(await repository.getRaw(connectionId))) throw new CliError(`connection ${connectionId} not found`);
    await repository.delete(connectionId);
    ctx.print(`deleted connection ${connectionId}`);
    return 0;
  },
};
