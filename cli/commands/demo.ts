import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { runDemo } from '../../local/demo.ts';
import { type CliCommand, UsageError } from '../command.ts';

function positiveInteger(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive whole number`);
  return n;
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
    'verified with `gpg --decrypt` when the secret key is in your keyring. Exit 1 unless\n' +
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
    const result = await runDemo({
      outDir: resolve((args.values.out as string | undefined) ?? 'demo-out'),
      events: positiveInteger(args.values.events, '--events', 5000),
      seed: positiveInteger(args.values.seed, '--seed', 1),
      day,
      pgpPublicKey: keyFile ? await readFile(keyFile, 'utf8') : undefined,
      print: (line) => ctx.print(line),
    });
    return result.duplicates === 0 && result.missing === 0 ? 0 : 1;
  },
};
