import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { runDemo } from '../../local/demo.ts';
import { type CliCommand, CliError, stringOption, UsageError } from '../command.ts';
import type { CliContext } from '../context.ts';
import { positiveInteger } from '../operations.ts';
import { createProgress } from '../progress.ts';

const DAY_MS = 86_400_000;
/** The default simulated day: a Sunday, so the weekly export at Monday 00:00 runs too. */
const DEFAULT_DAY = new Date('2026-11-22T00:00:00Z');

/**
 * The first Sunday that starts after `at` (UTC): every instant of that simulated day is later
 * than `at`, so a key made at `at` is valid all day (a Sunday starting earlier today is not).
 */
export function sundayAfter(at: Date): Date {
  const day = new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS + DAY_MS);
  day.setUTCDate(day.getUTCDate() + ((7 - day.getUTCDay()) % 7));
  return day;
}

const isoDay = (day: Date) => day.toISOString().slice(0, 10);

/**
 * The simulated day for a PGP demo. The exporter validates the key as of the simulated clock,
 * so a key made after the demo day would be refused at every tick. Without --day: the default
 * day when the key is valid then, else the first Sunday after now (a key made just now is valid
 * from then on). With --day: refused up front, with a day that works, when the key is not valid
 * from its start to its last tick.
 */
async function demoDayForKey(
  armored: string,
  file: string,
  day: Date | undefined,
  ctx: CliContext,
): Promise<Date> {
  const { InvalidPgpKeyError, loadEncryptionKey } = await import('../../lambdas/adapters/pgp.ts');
  const now = ctx.clock.now();
  const refusal = async (at: Date) => {
    try {
      await loadEncryptionKey(armored, at);
      return undefined;
    } catch (error) {
      if (!(error instanceof InvalidPgpKeyError)) throw error;
      return error;
    }
  };
  const invalidNow = await refusal(now);
  if (invalidNow) throw new CliError(`--pgp-public-key ${file}: ${invalidNow.message}`);
  const candidate = day ?? DEFAULT_DAY;
  // The last tick of the day (weekly, Monday 00:00 + settle delay) is within the next day.
  const problem = (await refusal(candidate)) ?? (await refusal(new Date(candidate.getTime() + 2 * DAY_MS)));
  if (!problem) return candidate;
  if (!day && problem.reason === 'NOT_YET_VALID') return sundayAfter(now);
  const hint =
    problem.reason === 'NOT_YET_VALID' || problem.reason === 'EXPIRED'
      ? `; the demo simulates ${isoDay(candidate)}, when the key is not valid: pass e.g. --day ${isoDay(sundayAfter(now))} (or omit --day)`
      : '';
  throw new CliError(`--pgp-public-key ${file}: ${problem.message}${hint}`);
}

export const demo: CliCommand = {
  name: 'demo',
  summary: 'Run one simulated day end to end on local engines and verify the exported files',
  usage: '[--out DIR] [--events N] [--seed S] [--day YYYY-MM-DD] [--pgp-public-key FILE]',
  description:
    'Starts DynamoDB Local and the S3 emulator on free loopback ports, creates three connections\n' +
    '(all events every 15 minutes then DAILY from noon; selected campaign events with attribute\n' +
    'projection, DAILY; a WEEKLY archive), stages a realistic day of user and campaign events\n' +
    '(offline events days old, malformed records, a re-delivered Kinesis batch), runs every\n' +
    'schedule tick, copies the customer buckets into DIR and verifies the files against what was\n' +
    'staged. With --pgp-public-key the all-events connection is PGP-encrypted; its files are\n' +
    'verified with `gpg --decrypt` using your keyring (GNUPGHOME or ~/.gnupg); a file it cannot\n' +
    'decrypt is reported and counted as missing. The key must be valid on the simulated day\n' +
    '(without --day, a key made after the default day moves the demo to the next Sunday).\n' +
    'Exit 1 unless 0 duplicates, 0 missing and no problem (manifests that do not match their\n' +
    'files, a staged count that differs from what was sent).',
  options: {
    out: {
      type: 'string',
      valueName: 'DIR',
      description: 'where to copy the customer buckets (default ./demo-out)',
    },
    events: { type: 'string', valueName: 'N', description: 'events to generate (default 5000)' },
    seed: { type: 'string', valueName: 'S', description: 'random seed (default 1)' },
    day: {
      type: 'string',
      valueName: 'YYYY-MM-DD',
      description:
        'the simulated UTC day (default 2026-11-22, a Sunday; with a PGP key made later, the next Sunday)',
    },
    'pgp-public-key': {
      type: 'string',
      valueName: 'FILE',
      description: 'armored public key for the all-events connection',
    },
  },
  async run(args, ctx) {
    const dayOption = args.values.day as string | undefined;
    const given = dayOption === undefined ? undefined : new Date(`${dayOption}T00:00:00Z`);
    if (given && (!/^\d{4}-\d{2}-\d{2}$/.test(dayOption ?? '') || Number.isNaN(given.getTime())))
      throw new UsageError('--day must be a date YYYY-MM-DD');
    const keyFile = args.values['pgp-public-key'] as string | undefined;
    const pgpPublicKey = keyFile ? await readFile(keyFile, 'utf8') : undefined;
    const day =
      keyFile && pgpPublicKey !== undefined
        ? await demoDayForKey(pgpPublicKey, keyFile, given, ctx)
        : (given ?? DEFAULT_DAY);
    const progress = createProgress({
      label: 'demo',
      stream: process.stderr,
      json: ctx.settings.json,
      now: () => performance.now(),
    });
    const result = await runDemo({
      outDir: resolve((args.values.out as string | undefined) ?? 'demo-out'),
      events: positiveInteger(stringOption(args, 'events'), '--events', 5000),
      seed: positiveInteger(stringOption(args, 'seed'), '--seed', 1),
      day,
      pgpPublicKey,
      print: (line) => {
        progress.clear();
        ctx.print(line);
      },
      onProgress: (update) => progress.update(update),
    });
    progress.finish();
    return result.ok ? 0 : 1;
  },
};
