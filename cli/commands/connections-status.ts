import { type ConnectionStatus, validateConnection } from '../../lambdas/domain/connection.ts';
import { type CliCommand, CliError, EXIT_FAILURE, onePositional } from '../command.ts';
import { formatRowError } from '../connection-rows.ts';

function statusCommand(
  name: string,
  target: ConnectionStatus,
  summary: string,
  description: string,
): CliCommand {
  return {
    name,
    summary,
    usage: 'ID',
    description,
    async run(args, ctx) {
      const connectionId = onePositional(args, 'ID (a connectionId, conn_...)');
      const repository = await ctx.connectionRepository();
      const raw = await repository.getRaw(connectionId);
      if (!raw) throw new CliError(`connection ${connectionId} not found`);
      const label = `connection ${connectionId}`;
      const current = validateConnection(raw);
      if (!current.ok) {
        for (const e of current.errors) ctx.warn(formatRowError({ label, ...e }));
        ctx.warn(`${label}: not changed; fix the row first (connections put FILE)`);
        return EXIT_FAILURE;
      }
      const from = current.connection.status;
      if (from === target) {
        ctx.print(`${label} is already ${target}`);
        return 0;
      }
      const next = validateConnection({
        ...current.connection,
        status: target,
        updatedAt: ctx.clock.now().toISOString(),
      });
      if (!next.ok) {
        for (const e of next.errors) ctx.warn(formatRowError({ label, ...e }));
        return EXIT_FAILURE;
      }
      await repository.put(next.connection);
      ctx.print(`${label}: ${from} -> ${target}`);
      return 0;
    },
  };
}

export const connectionsPause = statusCommand(
  'connections pause',
  'PAUSED',
  'Stop exporting a connection; its watermark is kept',
  'Sets status PAUSED. No window is exported while paused; the watermark stays where it is, so\n' +
    '`connections resume` exports everything received since, without loss or duplicates.',
);

export const connectionsResume = statusCommand(
  'connections resume',
  'ACTIVE',
  'Export a paused (or disabled) connection again from its watermark',
  'Sets status ACTIVE. The next tick exports from the watermark: events received while the\n' +
    'connection was paused are included.',
);
