/**
 * Every command of the CLI. To add one: write `cli/commands/<name>.ts` exporting a
 * {@link CliCommand} and append it here; help, routing and option parsing follow.
 */
import type { CliCommand } from './command.ts';
import { backfill } from './commands/backfill.ts';
import { connectionsAthena } from './commands/connections-athena.ts';
import { connectionsDelete } from './commands/connections-delete.ts';
import { connectionsGet } from './commands/connections-get.ts';
import { connectionsList } from './commands/connections-list.ts';
import { connectionsNew } from './commands/connections-new.ts';
import { connectionsPolicy } from './commands/connections-policy.ts';
import { connectionsPut } from './commands/connections-put.ts';
import { connectionsPause, connectionsResume } from './commands/connections-status.ts';
import { connectionsTest } from './commands/connections-test.ts';
import { connectionsValidate } from './commands/connections-validate.ts';
import { demo } from './commands/demo.ts';
import { envCommand } from './commands/env.ts';
import { exportCommand } from './commands/export.ts';
import { history } from './commands/history.ts';
import { local } from './commands/local.ts';
import { rerun } from './commands/rerun.ts';
import { sim } from './commands/sim.ts';
import { stage } from './commands/stage.ts';
import { stagingClassify } from './commands/staging-classify.ts';
import { status } from './commands/status.ts';
import { tick } from './commands/tick.ts';
import { usage } from './commands/usage.ts';

export const COMMANDS: readonly CliCommand[] = [
  connectionsValidate,
  connectionsNew,
  connectionsPut,
  connectionsGet,
  connectionsList,
  connectionsPause,
  connectionsResume,
  connectionsDelete,
  connectionsTest,
  connectionsPolicy,
  connectionsAthena,
  stage,
  stagingClassify,
  tick,
  exportCommand,
  status,
  history,
  rerun,
  usage,
  local,
  demo,
  sim,
  backfill,
  envCommand,
];

export { commandsUnder, findCommand } from './router.ts';
