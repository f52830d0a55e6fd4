/**
 * `connections put`: refuse rows whose start the exporter would ignore or could not honour
 * (lambdas/domain/connection-start.ts). The export state is read only for rows that need it,
 * so a put of unchanged rows needs no state table.
 */

import { DEFAULT_STAGING_RETENTION_DAYS, ENV } from '../lambdas/definitions.ts';
import type { Connection } from '../lambdas/domain/connection.ts';
import { startCheckNeedsState, startProblems } from '../lambdas/domain/connection-start.ts';
import { CliError } from './command.ts';
import type { RowError } from './connection-rows.ts';
import type { CliContext } from './context.ts';

function stagingRetentionDays(ctx: CliContext): number {
  const text = ctx.env[ENV.stagingRetentionDays];
  const days = text ? Number(text) : DEFAULT_STAGING_RETENTION_DAYS;
  if (!Number.isFinite(days) || days <= 0) {
    throw new CliError(`${ENV.stagingRetentionDays} must be a positive number of days`);
  }
  return days;
}

export async function startEditErrors(
  incoming: Connection[],
  storedRows: Record<string, unknown>[],
  ctx: CliContext,
): Promise<RowError[]> {
  const now = ctx.clock.now();
  const retention = stagingRetentionDays(ctx);
  const stored = new Map(storedRows.map((row) => [row['connectionId'], row]));
  const errors: RowError[] = [];
  for (const connection of incoming) {
    const check = {
      incoming: connection,
      stored: stored.get(connection.connectionId),
      now,
      stagingRetentionDays: retention,
    };
    if (!startCheckNeedsState(check)) continue;
    const state = await (await ctx.exportStateStore()).get(connection.connectionId);
    for (const e of startProblems({ ...check, watermark: state?.watermark }))
      errors.push({ label: `connection ${connection.connectionId}`, ...e });
  }
  return errors;
}
