/**
 * The CLI's failures and exit codes. Apart from cli/command.ts (which re-exports them) so that
 * cli/context.ts can throw them without importing the command contract, which imports it.
 */

/** Bad command line: exit code 2, printed with a pointer to the help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An expected failure with a message the operator can act on: exit code 1, no stack trace. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
