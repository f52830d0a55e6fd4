/**
 * The router: global options, help, command lookup, exit codes.
 *   0 ok · 1 failure or validation errors · 2 usage error
 * Errors print one line; `--debug` adds the stack.
 */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ENV } from '../lambdas/definitions.ts';
import type { Clock } from '../lambdas/ports/index.ts';
import {
  type CliCommand,
  CliError,
  type CliOption,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  type OptionValues,
  UsageError,
} from './command.ts';
import {
  type CliIo,
  type CliSettings,
  type ContextOverrides,
  createCliContext,
  processIo,
} from './context.ts';

export const PROGRAM = 's3-event-export';

export const GLOBAL_OPTIONS: Record<string, CliOption> = {
  region: {
    type: 'string',
    valueName: 'REGION',
    description: 'AWS region (env AWS_REGION, AWS_DEFAULT_REGION)',
  },
  'endpoint-url': {
    type: 'string',
    valueName: 'URL',
    description: 'endpoint for DynamoDB, S3 and SQS, e.g. local engines (env AWS_ENDPOINT_URL[_<SERVICE>])',
  },
  'connections-table': {
    type: 'string',
    valueName: 'NAME',
    description: `Connections table (env ${ENV.connectionsTable})`,
  },
  'state-table': {
    type: 'string',
    valueName: 'NAME',
    description: `ExportState table (env ${ENV.exportStateTable})`,
  },
  'ledger-table': {
    type: 'string',
    valueName: 'NAME',
    description: `StagingLedger table (env ${ENV.stagingLedgerTable})`,
  },
  'staging-bucket': {
    type: 'string',
    valueName: 'NAME',
    description: `staging bucket (env ${ENV.stagingBucket})`,
  },
  'queue-url': { type: 'string', valueName: 'URL', description: `export job queue (env ${ENV.jobQueueUrl})` },
  json: { type: 'boolean', description: 'machine-readable JSON output' },
  debug: { type: 'boolean', description: 'print stack traces of errors' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
  version: { type: 'boolean', description: 'print the version' },
};

/** Names the instant the CLI takes as now, against local engines only (the walkthrough, the demo). */
export const SIMULATED_NOW_ENV = 'S3_EVENT_EXPORT_NOW';

/**
 * A fixed clock from S3_EVENT_EXPORT_NOW, so a by-hand session on `s3-event-export local` can move
 * time past a window's settle delay instead of waiting for it. Refused without a local endpoint:
 * against AWS the clock is always the real one.
 */
function simulatedClock(env: NodeJS.ProcessEnv): Clock | undefined {
  const raw = env[SIMULATED_NOW_ENV];
  if (!raw) return undefined;
  if (!env.AWS_ENDPOINT_URL)
    throw new UsageError(
      `${SIMULATED_NOW_ENV} is for local engines only (set AWS_ENDPOINT_URL, see \`s3-event-export local\`)`,
    );
  const at = new Date(raw);
  if (Number.isNaN(at.getTime()))
    throw new UsageError(`${SIMULATED_NOW_ENV} must be an ISO-8601 instant, got ${raw}`);
  return { now: () => at };
}

export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  io?: CliIo;
  clock?: Clock;
  overrides?: ContextOverrides;
  /** The commands to route to (cli/main.ts: all of them). */
  commands?: readonly CliCommand[];
}

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

function toParseOptions(options: Record<string, CliOption>): ParseOptions {
  const out: ParseOptions = {};
  for (const [name, o] of Object.entries(options)) {
    out[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  return out;
}

function optionLines(options: Record<string, CliOption>): string[] {
  const left = Object.entries(options).map(([name, o]) => {
    const short = o.short ? `-${o.short}, ` : '';
    const value = o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : '';
    return `${short}--${name}${value}`;
  });
  const width = Math.max(0, ...left.map((l) => l.length));
  return Object.values(options).map((o, i) => `  ${(left[i] ?? '').padEnd(width)}  ${o.description}`);
}

function commandLines(commands: readonly CliCommand[]): string[] {
  const width = Math.max(0, ...commands.map((c) => c.name.length));
  return commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
}

export function commandUsage(command: CliCommand): string {
  return `${PROGRAM} ${command.name}${command.usage ? ` ${command.usage}` : ''}`;
}

export function topHelp(commands: readonly CliCommand[]): string {
  return [
    `${PROGRAM}: operate the S3 event export (connections to customer buckets)`,
    '',
    `Usage: ${PROGRAM} <command> [arguments] [options]`,
    '',
    'Commands:',
    ...commandLines(commands),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    `"${PROGRAM} help <command>" shows a command's options.`,
    'Exit codes: 0 ok, 1 failure or invalid input, 2 usage error.',
  ].join('\n');
}

export function commandHelp(command: CliCommand): string {
  return [
    `Usage: ${commandUsage(command)}`,
    '',
    command.summary,
    ...(command.description ? ['', command.description] : []),
    ...(command.options ? ['', 'Options:', ...optionLines(command.options)] : []),
    '',
    `Global options: see "${PROGRAM} --help".`,
  ].join('\n');
}

function groupHelp(words: string[], commands: CliCommand[]): string {
  return [`Usage: ${PROGRAM} ${words.join(' ')} <command>`, '', 'Commands:', ...commandLines(commands)].join(
    '\n',
  );
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function settingsFrom(values: OptionValues, env: NodeJS.ProcessEnv): CliSettings {
  const pick = (flag: string, variable?: string) => {
    const value = values[flag];
    if (typeof value === 'string' && value !== '') return value;
    return (variable && env[variable]) || undefined;
  };
  return {
    region: pick('region', 'AWS_REGION') ?? (env.AWS_DEFAULT_REGION || undefined),
    endpointUrl: pick('endpoint-url'),
    connectionsTable: pick('connections-table', ENV.connectionsTable),
    stateTable: pick('state-table', ENV.exportStateTable),
    ledgerTable: pick('ledger-table', ENV.stagingLedgerTable),
    stagingBucket: pick('staging-bucket', ENV.stagingBucket),
    queueUrl: pick('queue-url', ENV.jobQueueUrl),
    json: values.json === true,
    debug: values.debug === true,
  };
}

/** Every option any command knows, for the first, lenient pass that only finds the command words. */
function allOptions(commands: readonly CliCommand[]): ParseOptions {
  const merged: Record<string, CliOption> = {};
  for (const c of commands) Object.assign(merged, c.options);
  return toParseOptions({ ...merged, ...GLOBAL_OPTIONS });
}

function describeError(error: unknown): string {
  if (error instanceof CliError || error instanceof UsageError) return error.message;
  if (error instanceof Error) {
    return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  }
  return String(error);
}

/** `help [words]`: the help of everything, of a command or of a group; a UsageError for unknown words. */
function helpTopic(topic: string[], commands: readonly CliCommand[]): string {
  if (topic.length === 0) return topHelp(commands);
  const found = findCommand(topic, commands);
  if (found && found.rest.length === 0) return commandHelp(found.command);
  const group = commandsUnder(topic, commands);
  if (group.length > 0) return groupHelp(topic, group);
  throw new UsageError(`unknown command "${topic.join(' ')}"; "${PROGRAM} --help" lists the commands`);
}

/**
 * Run one command line against `commands`; resolves to the exit code. Never throws. The CLI runs
 * it over every command (cli/main.ts); a caller that must not depend on every command (the
 * simulation's `sim` command, which is one of them) runs it over those it needs.
 */
export async function runCommandLine(
  argv: readonly string[],
  commands: readonly CliCommand[],
  options: RunCliOptions = {},
): Promise<number> {
  const io = options.io ?? processIo;
  const env = options.env ?? process.env;
  const out = (text: string) => io.stdout(`${text}\n`);
  const err = (text: string) => io.stderr(`${text}\n`);
  const debug = argv.includes('--debug');
  let command: CliCommand | undefined;

  try {
    const first = parseArgs({
      args: [...argv],
      options: allOptions(commands),
      strict: false,
      allowPositionals: true,
    });
    const words = first.positionals;
    const help = first.values.help === true;

    if (first.values.version === true && words.length === 0) {
      out(version());
      return EXIT_OK;
    }
    if (words.length === 0) {
      if (help) {
        out(topHelp(commands));
        return EXIT_OK;
      }
      err(topHelp(commands));
      return EXIT_USAGE;
    }
    if (words[0] === 'help') {
      out(helpTopic(words.slice(1), commands));
      return EXIT_OK;
    }

    const found = findCommand(words, commands);
    if (!found) {
      const group = commandsUnder(words, commands);
      if (group.length > 0) {
        if (help) {
          out(groupHelp(words, group));
          return EXIT_OK;
        }
        err(groupHelp(words, group));
        return EXIT_USAGE;
      }
      const known = commandsUnder(words.slice(0, 1), commands).length > 0;
      throw new UsageError(
        known
          ? `unknown command "${words.join(' ')}"; "${PROGRAM} help ${words[0]}" lists its commands`
          : `unknown command "${words[0]}"; "${PROGRAM} --help" lists the commands`,
      );
    }
    command = found.command;
    if (help) {
      out(commandHelp(command));
      return EXIT_OK;
    }

    let parsed: { values: OptionValues; positionals: string[] };
    try {
      parsed = parseArgs({
        args: [...argv],
        options: toParseOptions({ ...command.options, ...GLOBAL_OPTIONS }),
        strict: true,
        allowPositionals: true,
      }) as { values: OptionValues; positionals: string[] };
    } catch (error) {
      const message = (error as Error).message;
      const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
      throw new UsageError(
        unknown ? `unknown option ${unknown}` : (message.split('\n')[0] ?? 'invalid options'),
      );
    }
    const wordCount = command.name.split(' ').length;
    const settings = settingsFrom(parsed.values, env);
    const clock = options.clock ?? simulatedClock(env);
    const ctx = createCliContext({
      settings,
      env,
      io,
      ...(clock ? { clock } : {}),
      ...(options.overrides ? { overrides: options.overrides } : {}),
    });
    try {
      const code = await command.run(
        { positionals: parsed.positionals.slice(wordCount), values: parsed.values },
        ctx,
      );
      return code ?? EXIT_OK;
    } finally {
      ctx.dispose();
    }
  } catch (error) {
    if (error instanceof UsageError) {
      const usage = command ? ` (usage: ${commandUsage(command)})` : '';
      err(`error: ${error.message}${usage}`);
      if (debug && error.stack) err(error.stack);
      return EXIT_USAGE;
    }
    err(`error: ${describeError(error)}`);
    if (debug && error instanceof Error && error.stack) err(error.stack);
    return EXIT_FAILURE;
  }
}

/** The command whose name is the longest prefix of `words`, and the words left over. */
export function findCommand(
  words: readonly string[],
  commands: readonly CliCommand[],
): { command: CliCommand; rest: string[] } | undefined {
  let best: CliCommand | undefined;
  let bestLength = 0;
  for (const command of commands) {
    const name = command.name.split(' ');
    if (name.length > bestLength && name.every((word, i) => words[i] === word)) {
      best = command;
      bestLength = name.length;
    }
  }
  return best ? { command: best, rest: words.slice(bestLength) } : undefined;
}

/** Commands whose name starts with `words` (e.g. every `connections ...` for `connections`). */
export function commandsUnder(words: readonly string[], commands: readonly CliCommand[]): CliCommand[] {
  return commands.filter((c) => {
    const name = c.name.split(' ');
    return words.length > 0 && words.every((word, i) => name[i] === word);
  });
}
