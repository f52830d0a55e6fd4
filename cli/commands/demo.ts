import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { runDemo } from '../../local/demo.ts';
import { type CliCommand, CliError, stringOption, UsageError } from '../command.ts';
import type { CliContext } from '../context.ts';
import { positiveInteger } from '../operations.ts';
import { createProgress } from '../progress.ts';

/** `YYYY-MM-DD` of the first Sunday on or after `at` (UTC): a demo day whose weekly export runs. */
function sundayOnOrAfter(at: Date): string {
  const day = new Date(Math.floor(at.getTime() / 86_400_000) * 86_400_000);
  day.setUTCDate(day.getUTCDate() + ((7 - day.getUTCDay()) % 7));
  return day.toISOString().slice(0, 10);
}

/**
 * The exporter validates the key as of the simulated clock, so a key made after the demo day
 * would be refused at every tick: say so before starting, with a day that works.
 */
async function checkDemoKey(armored: string, file: string, day: Date, ctx: CliContext): Promise<void> {
  const { InvalidPgpKeyError, loadEncryptionKey } = await import('../../lambdas/adapters/pgp.ts');
  try {
    await loadEncryptionKey(armored, day);
  } catch (error) {
    if (!(error instanceof InvalidPgpKeyError)) throw error;
    const hint =
      error.reason === 'NOT_YET_VALID'
        ? `; the demo simulates ${day.toISOString().slice(0, 10)}, before the key was made: pass e.g. --day ${sundayOnOrAfter(ctx.clock.now())}`
        : '';
    throw new CliError(`--pgp-public-key ${file}: ${error.message}${hint}`);
  }
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
    '(made before it: use --day for a key made after the default day). Exit 1 unless\n' +
    '0 duplicates and 0 missing.',
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
      description: 'the simulated UTC day (default 2026-11-22, a Sunday)',
    },
    'pgp-public-key': {
      type: 'string',
      valueName: 'FILE',
      description: 'armored public key for the all-events connection',
    },
  },
  async run(args, ctx) {
    const day = new Date(`${(args.values.day as string | undefined) ?? '2026-11-22'}T00:00:00Z`);
    if (Number.isNaN(day.getTime())) throw new UsageError('--day must be a date YYYY-MM-DD');
    const keyFile = args.values['pgp-public-key'] as string | undefined;
    const pgpPublicKey = keyFile ? await readFile(keyFile, 'utf8') : undefined;
    if (keyFile && pgpPublicKey !== undefined) await checkDemoKey(pgpPublicKey, keyFile, day, ctx);
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
    return result.duplicates === 0 && result.missing === 0 ? 0 : 1;
  },
};
