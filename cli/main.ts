/**
 * The operator CLI's entry point: the router (cli/router.ts — global options, help, command
 * lookup, exit codes) over every command (cli/registry.ts).
 */
import type { CliCommand } from './command.ts';
import { COMMANDS } from './registry.ts';
import { topHelp as helpFor, type RunCliOptions, runCommandLine } from './router.ts';

export {
  commandHelp,
  commandUsage,
  GLOBAL_OPTIONS,
  PROGRAM,
  type RunCliOptions,
  SIMULATED_NOW_ENV,
} from './router.ts';

/** The top-level help of `commands` (every command by default). */
export function topHelp(commands: readonly CliCommand[] = COMMANDS): string {
  return helpFor(commands);
}

/** Run one command line; resolves to the exit code. Never throws. */
export function runCli(argv: readonly string[], options: RunCliOptions = {}): Promise<number> {
  return runCommandLine(argv, options.commands ?? COMMANDS, options);
}
