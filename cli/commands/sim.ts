import { startLocalEngines } from '../../local/engines.ts';
import { formatSummary, runSimulation } from '../../local/simulation.ts';
import { type CliCommand, noPositionals, UsageError } from '../command.ts';
import { createProgress } from '../progress.ts';
import { runCommandLine } from '../router.ts';
import { stage } from './stage.ts';

function wholeNumber(value: unknown, flag: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number >= ${min}`);
  return n;
}

export const sim: CliCommand = {
  name: 'sim',
  summary: 'Prove exactly-once: a seeded multi-day simulation with injected failures on local engines',
  usage: '[--days N] [--seed S] [--verbose]',
  description:
    'Starts DynamoDB Local and the S3 emulator, then simulates N days of a small platform (four\n' +
    'connections on two apps: every frequency, selected events, attribute projection) with random\n' +
    'arrivals, frequency changes, pauses, delayed and duplicate ticks, re-delivered Kinesis batches,\n' +
    'racing exporters and failures injected at every step (S3 503, DynamoDB throttling and\n' +
    'conditional failures, crashes before and after the commit, stalled exporters). Every connection\n' +
    'is then caught up and its files are read back. Prints one line; exit 1 on any duplicate,\n' +
    'missing event or failed check (manifest sequence, checksums, usage). See docs/simulation.md.',
  options: {
    days: { type: 'string', valueName: 'N', description: 'simulated days (default 7)' },
    seed: { type: 'string', valueName: 'S', description: 'random seed (default 1)' },
    verbose: {
      type: 'boolean',
      description: 'progress per simulated day and the injected failures, on stderr',
    },
  },
  async run(args, ctx) {
    noPositionals(args);
    const days = wholeNumber(args.values.days, '--days', 7, 1);
    const seed = wholeNumber(args.values.seed, '--seed', 1, 0);
    const verbose = args.values.verbose === true;
    const progress = createProgress({
      label: 'sim',
      stream: process.stderr,
      json: ctx.settings.json,
      now: () => performance.now(),
    });
    const engines = await startLocalEngines();
    try {
      const result = await runSimulation({
        engines,
        seed,
        days,
        onProgress: (update) => progress.update(update),
        // The operator's `stage` runs, through the router: the CLI's entry point would import this command.
        cli: (argv, options) => runCommandLine(argv, [stage], options),
        ...(verbose
          ? {
              log: (line: string) => {
                progress.clear();
                ctx.warn(line);
              },
            }
          : {}),
      });
      progress.finish();
      ctx.print(formatSummary(result));
      for (const problem of result.problems) ctx.warn(`sim: ${problem}`);
      return result.duplicates > 0 || result.missing > 0 || result.problems.length > 0 ? 1 : 0;
    } finally {
      await engines.stop();
    }
  },
};
