/**
 * The contract of a CLI command. A command is one module in cli/commands/ that
 * exports a {@link CliCommand}; cli/registry.ts lists them. The router parses
 * the global options and the command's own `options` together (so options may
 * appear anywhere on the line) and hands the result to `run`.
 */
import type { CliContext } from './context.ts';
import { UsageError } from './errors.ts';

export { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.ts';

/** One option of a command, in `node:util` parseArgs terms plus help text. */
export interface CliOption {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help for string options, e.g. `FILE`. */
  valueName?: string;
  description: string;
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface CommandArgs {
  /** Positional arguments after the command words. */
  positionals: string[];
  /** Parsed values of the command's own options (and the global ones). */
  values: OptionValues;
}

export interface CliCommand {
  /** Space-separated command words, e.g. `connections validate`. */
  name: string;
  /** One line for the command listing. */
  summary: string;
  /** Arguments after the name, e.g. `FILE` or `ID [--yes]`; shown as `s3-event-export <name> <usage>`. */
  usage: string;
  /** Longer help, shown by `s3-event-export help <name>`. */
  description?: string;
  options?: Record<string, CliOption>;
  /** Resolve to the exit code (0 when omitted). Throw {@link UsageError} or {@link CliError} to fail. */
  run(args: CommandArgs, ctx: CliContext): Promise<number | undefined>;
}

/** The single positional a command expects, or a usage error naming it. */
export function onePositional(args: CommandArgs, what: string): string {
  const [value, ...rest] = args.positionals;
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
  if (rest.length > 0) throw new UsageError(`unexpected argument(s): ${rest.join(' ')}`);
  return value;
}

export function noPositionals(args: CommandArgs): void {
  if (args.positionals.length > 0)
    throw new UsageError(`unexpected argument(s): ${args.positionals.join(' ')}`);
}

export function stringOption(args: CommandArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function flag(args: CommandArgs, name: string): boolean {
  return args.values[name] === true;
}
