import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { decodeTime } from 'ulid';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { COMMANDS } from '../../cli/registry.ts';
import { validateConnection } from '../../lambdas/domain/connection.ts';
import { EXAMPLE_CONNECTION } from '../../scripts/gen-docs.ts';
import { InMemoryConnectionRepository } from '../support/in-memory-connection-repository.ts';

const NOW = new Date('2026-11-29T08:15:00.000Z');
const clock = { now: () => NOW };
const dir = mkdtempSync(join(tmpdir(), 'cli-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(
  argv: string[],
  repository?: InMemoryConnectionRepository,
  env: NodeJS.ProcessEnv = {},
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env,
    clock,
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    ...(repository ? { overrides: { connectionRepository: async () => repository } } : {}),
  });
  return { code, stdout, stderr };
}

const row = (patch: Record<string, unknown> = {}) => ({
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA',
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop DB',
  connectionName: 'fifteen',
  bucketName: 'acme-events',
  bucketRegion: 'ap-south-1',
  events: { mode: 'ALL' },
  frequency: 'FIFTEEN_MINUTES',
  // Within the staging retention (14 days) of NOW: a new connection may not start earlier.
  createdAt: '2026-11-20T00:00:00.000Z',
  ...patch,
});

const PUBLIC_KEY_BODY = 'xjMEZWx1c3RyYXRpb24tb25seS1wdWJsaWMta2V5LW1hdGVyaWFs';
const PUBLIC_KEY = `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${PUBLIC_KEY_BODY}\n=wxyz\n-----END PGP PUBLIC KEY BLOCK-----\n`;
const PRIVATE_KEY_BODY = 'lQOYBGV4YW1wbGUtcHJpdmF0ZS1rZXktbWF0ZXJpYWwtc2VjcmV0';
const PRIVATE_KEY = `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${PRIVATE_KEY_BODY}\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\n`;

describe('cli: help, routing and exit codes', () => {
  it('--help lists every registered command and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    for (const command of COMMANDS) expect(run.stdout).toContain(command.name);
    expect(run.stdout).toContain('--endpoint-url URL');
  });

  it('help <command> shows its usage line and options', async () => {
    const run = await cli(['help', 'connections', 'new']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: s3-event-export connections new [--app-id ID]');
    expect(run.stdout).toContain('--dynamodb');
    expect((await cli(['connections', 'validate', '--help'])).stdout).toContain(
      'Usage: s3-event-export connections validate FILE',
    );
  });

  it('a command group without a subcommand prints its commands and exits 2', async () => {
    const run = await cli(['connections']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('connections validate');
  });

  it('an unknown command is a usage error on one line (exit 2)', async () => {
    const run = await cli(['frobnicate']);
    expect(run).toEqual({
      code: 2,
      stdout: '',
      stderr: 'error: unknown command "frobnicate"; "s3-event-export --help" lists the commands\n',
    });
    expect((await cli(['connections', 'frob'])).stderr).toContain('"s3-event-export help connections"');
  });

  it('a missing argument or an unknown option is a usage error naming the command usage', async () => {
    const missing = await cli(['connections', 'validate']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'error: missing FILE (a JSON file with one connection row or an array) (usage: s3-event-export connections validate FILE)\n',
    );
    const unknown = await cli(['connections', 'validate', 'x.json', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown option --colour');
  });

  it('a command that needs the Connections table says which flag or variable to set', async () => {
    const run = await cli(['connections', 'list']);
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: --connections-table is required (or set CONNECTIONS_TABLE)\n',
    });
  });

  it('an unexpected failure prints one line, and the stack only with --debug', async () => {
    const broken = new InMemoryConnectionRepository();
    broken.listRaw = async () => {
      throw new TypeError('socket hang up');
    };
    const quiet = await cli(['connections', 'list'], broken);
    expect(quiet).toEqual({ code: 1, stdout: '', stderr: 'error: TypeError: socket hang up\n' });
    const loud = await cli(['connections', 'list', '--debug'], broken);
    expect(loud.stderr.split('\n').length).toBeGreaterThan(3);
    expect(loud.stderr).toContain('at ');
  });
});

describe('cli: connections validate', () => {
  it('prints a valid row normalized (defaults filled in) and exits 0', async () => {
    const run = await cli(['connections', 'validate', file('one.json', row())]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      ...row(),
      userAttributes: 'ALL',
      deviceAttributes: 'ALL',
      status: 'ACTIVE',
    });
  });

  it('reads DynamoDB JSON (as for put-item --item file://...) and prints the plain row', async () => {
    // The example names a KMS key: valid only where the deployment allows it.
    const env = { KMS_KEY_ALLOWLIST: EXAMPLE_CONNECTION.kmsKeyArn };
    const run = await cli(
      ['connections', 'validate', 'docs/connection.example.dynamodb.json'],
      undefined,
      env,
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(EXAMPLE_CONNECTION);
  });

  it('reads a scan answer ({"Items": [...]}) in DynamoDB JSON and prints an array', async () => {
    const items = {
      Items: [
        { connectionId: { S: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA' }, ...dynamoOf(row()) },
        dynamoOf(row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB', connectionName: 'other' })),
      ],
      Count: 2,
      ScannedCount: 2,
    };
    const run = await cli(['connections', 'validate', file('scan.json', items)]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).map((r: { connectionName: string }) => r.connectionName)).toEqual([
      'fifteen',
      'other',
    ]);
  });

  it('prints one line per field error, labelled by id or by position, and exits 1', async () => {
    const rows = [
      row({ bucketName: 'Acme_Events', frequency: 'HOURLY' }),
      { ...row({ folderPath: '/exports/' }), connectionId: undefined },
      row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0CCC' }),
    ];
    const run = await cli(['connections', 'validate', file('bad.json', rows)]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      'connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA: bucketName: must be a valid S3 bucket name: 3-63 characters of lowercase letters, digits, "." and "-", starting and ending with a letter or digit',
      'connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA: frequency: must be one of FIFTEEN_MINUTES, DAILY, WEEKLY',
      'connection #2: connectionId: is required: "conn_" followed by a ULID or UUID',
      'connection #2: folderPath: must not start or end with "/", e.g. my_folder/sub_folder',
    ]);
  });

  it('with --json, errors are a JSON document on stdout', async () => {
    const run = await cli([
      'connections',
      'validate',
      '--json',
      file('bad1.json', row({ bucketRegion: 'Mumbai' })),
    ]);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toEqual({
      valid: false,
      errors: [
        {
          label: 'connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA',
          field: 'bucketRegion',
          message: 'bucketRegion must be an AWS region code such as ap-south-1 or us-east-1',
        },
      ],
    });
  });

  it('a private key pasted as pgpPublicKey is refused and never printed', async () => {
    const run = await cli([
      'connections',
      'validate',
      file('private.json', row({ pgpPublicKey: PRIVATE_KEY })),
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('pgpPublicKey: this is a private key');
    expect(run.stdout + run.stderr).not.toContain(PRIVATE_KEY_BODY);
  });

  it('a valid public key is shown as its length, never its text', async () => {
    // validate checks the key as the exporter does: it must be a real, usable key as of now.
    const { publicKey } = await generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ name: 'CLI test' }],
      date: new Date(NOW.getTime() - 86_400_000),
      format: 'armored',
    });
    const run = await cli(['connections', 'validate', file('public.json', row({ pgpPublicKey: publicKey }))]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).pgpPublicKey).toBe(`<pgp public key: ${publicKey.length} chars>`);
    const body = publicKey.split('\n').find((line) => line.length > 40);
    expect(body).toBeDefined();
    expect(run.stdout).not.toContain(body);
  });

  it('a well-formed armor block that is not a usable key is refused, as the exporter would', async () => {
    const run = await cli(['connections', 'validate', file('fake.json', row({ pgpPublicKey: PUBLIC_KEY }))]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('pgpPublicKey: is not an OpenPGP public key');
    expect(run.stderr).not.toContain(PUBLIC_KEY_BODY);
  });

  it('a DynamoDB string set where a list is expected gets a hint', async () => {
    const item = { ...dynamoOf(row()), userAttributes: { SS: ['city', 'age'] } };
    const run = await cli(['connections', 'validate', file('ss.json', item)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'userAttributes: must be "ALL" or a list of attribute names (got a DynamoDB set',
    );
  });

  it('a file that is not JSON gives line and column, without echoing its text', async () => {
    const run = await cli([
      'connections',
      'validate',
      file('broken.json', `{\n  "pgpPublicKey": "${PRIVATE_KEY_BODY}",\n  oops\n}`),
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error: .*broken\.json: not valid JSON \(line 3, column \d+\)\n$/);
    expect(run.stderr).not.toContain(PRIVATE_KEY_BODY);
  });

  it('a missing file is one clear line', async () => {
    const run = await cli(['connections', 'validate', join(dir, 'nope.json')]);
    expect(run).toEqual({ code: 1, stdout: '', stderr: `error: ${join(dir, 'nope.json')}: no such file\n` });
  });
});

function dynamoOf(plain: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(plain)) {
    if (v === undefined) continue;
    out[k] =
      typeof v === 'string'
        ? { S: v }
        : {
            M: Object.fromEntries(
              Object.entries(v as Record<string, string>).map(([mk, mv]) => [mk, { S: mv }]),
            ),
          };
  }
  return out;
}

describe('cli: connections new', () => {
  it('prints a valid row with a fresh conn_<ULID> id and createdAt now', async () => {
    const run = await cli([
      'connections',
      'new',
      '--app-id',
      'app1',
      '--name',
      'daily',
      '--bucket',
      'acme-b',
      '--frequency',
      'DAILY',
      '--events',
      'PURCHASE, VIEW_RADAR',
    ]);
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout);
    expect(validateConnection(printed)).toEqual({ ok: true, connection: printed });
    expect(printed.connectionId).toMatch(/^conn_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(decodeTime(printed.connectionId.slice(5))).toBe(NOW.getTime());
    expect(printed.createdAt).toBe(NOW.toISOString());
    expect(printed).toMatchObject({
      appId: 'app1',
      connectionName: 'daily',
      bucketName: 'acme-b',
      frequency: 'DAILY',
      events: { mode: 'SELECTED', names: ['PURCHASE', 'VIEW_RADAR'] },
    });
  });

  it('two new rows get different ids', async () => {
    const a = JSON.parse((await cli(['connections', 'new'])).stdout).connectionId;
    const b = JSON.parse((await cli(['connections', 'new'])).stdout).connectionId;
    expect(a).not.toBe(b);
  });

  it('--dynamodb prints DynamoDB JSON that validate reads back', async () => {
    const run = await cli(['connections', 'new', '--dynamodb', '--region', 'eu-west-1']);
    const item = JSON.parse(run.stdout);
    expect(item.bucketRegion).toEqual({ S: 'eu-west-1' });
    const back = await cli(['connections', 'validate', file('new.dynamodb.json', item)]);
    expect(back.code).toBe(0);
    expect(JSON.parse(back.stdout).connectionId).toBe(item.connectionId.S);
  });

  it('an invalid option value is reported as a field error (exit 1)', async () => {
    const run = await cli(['connections', 'new', '--bucket', 'Bad_Bucket']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^connection conn_\w+: bucketName: must be a valid S3 bucket name/);
  });
});

describe('cli: connections put/get/list/pause/resume/delete', () => {
  it('put stores every valid row with updatedAt now', async () => {
    const repo = new InMemoryConnectionRepository();
    const rows = [
      row(),
      row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB', connectionName: 'daily', frequency: 'DAILY' }),
    ];
    const run = await cli(['connections', 'put', file('put.json', rows), '--activate'], repo);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'put connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA (app acme-shop, fifteen, FIFTEEN_MINUTES, ACTIVE)',
    );
    expect([...repo.rows.keys()].sort()).toEqual([
      'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA',
      'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB',
    ]);
    expect(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB')).toMatchObject({
      frequency: 'DAILY',
      updatedAt: NOW.toISOString(),
      status: 'ACTIVE',
    });
  });

  it('put stores a new row PAUSED unless --activate, says how to go on, and keeps the status of a row already stored', async () => {
    const repo = new InMemoryConnectionRepository();
    const run = await cli(['connections', 'put', file('new.json', row())], repo);
    expect(run.code).toBe(0);
    expect(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA')).toMatchObject({ status: 'PAUSED' });
    expect(run.stderr).toContain(
      'connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA is new: stored PAUSED until tested. Run "connections test conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA"',
    );
    expect(run.stdout).toContain('(app acme-shop, fifteen, FIFTEEN_MINUTES, PAUSED)');
    // Once stored, a put replaces the row as written: the operator's ACTIVE is kept.
    await cli(['connections', 'resume', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    const again = await cli(['connections', 'put', file('again.json', row({ frequency: 'DAILY' }))], repo);
    expect(again.stderr).toBe('');
    expect(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA')).toMatchObject({
      status: 'ACTIVE',
      frequency: 'DAILY',
    });
  });

  it('put writes nothing when any row is invalid, and names every error', async () => {
    const repo = new InMemoryConnectionRepository();
    const rows = [
      row(),
      row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB', folderPath: 'x/', bucketRegion: 'nowhere' }),
    ];
    const run = await cli(['connections', 'put', file('put-bad.json', rows)], repo);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB: bucketRegion:');
    expect(run.stderr).toContain('connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB: folderPath:');
    expect(run.stderr).toContain('nothing written');
    expect(repo.rows.size).toBe(0);
    expect(repo.calls.filter((c) => c.startsWith('put:'))).toEqual([]);
  });

  it('put refuses a connectionName already used by another connection of the same app', async () => {
    const repo = new InMemoryConnectionRepository([row()]);
    const clash = row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB' });
    const run = await cli(['connections', 'put', file('clash.json', clash)], repo);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB: connectionName: "fifteen" is already used by conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA of app acme-shop',
    );
    expect(repo.rows.has('conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB')).toBe(false);
    // The same name in another app is refused in the same bucket (one prefix, one connection)...
    const sameBucket = await cli(
      ['connections', 'put', file('other-app.json', { ...clash, appId: 'other-app' })],
      repo,
    );
    expect(sameBucket.code).toBe(1);
    expect(sameBucket.stderr).toContain(
      'connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB: connectionName: its prefix "fifteen/" in bucket acme-events collides with connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA',
    );
    // ...and fine in another bucket, and so is re-putting the row that holds it.
    expect(
      (
        await cli(
          [
            'connections',
            'put',
            file('other-bucket.json', { ...clash, appId: 'other-app', bucketName: 'other-events' }),
          ],
          repo,
        )
      ).code,
    ).toBe(0);
    expect(
      (await cli(['connections', 'put', file('same.json', row({ frequency: 'WEEKLY' }))], repo)).code,
    ).toBe(0);
    expect(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA')?.frequency).toBe('WEEKLY');
  });

  it('get prints the stored row without the PGP key; a missing id exits 1', async () => {
    const repo = new InMemoryConnectionRepository([row({ pgpPublicKey: PUBLIC_KEY })]);
    const run = await cli(['connections', 'get', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      connectionName: 'fifteen',
      pgpPublicKey: `<pgp public key: ${PUBLIC_KEY.length} chars>`,
    });
    expect(run.stdout).not.toContain(PUBLIC_KEY_BODY);
    const missing = await cli(['connections', 'get', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ZZZ'], repo);
    expect(missing).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0ZZZ not found\n',
    });
  });

  it('get of a stored row that is invalid prints it and its errors, exit 1', async () => {
    const repo = new InMemoryConnectionRepository([row({ bucketName: 'BAD' })]);
    const run = await cli(['connections', 'get', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout).bucketName).toBe('BAD');
    expect(run.stderr).toContain('connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA: bucketName:');
  });

  it('list shows one line per connection, flags invalid rows, and filters by app and frequency', async () => {
    const repo = new InMemoryConnectionRepository([
      row(),
      row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB', connectionName: 'daily', frequency: 'DAILY' }),
      row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0CCC', appId: 'zeta', bucketName: 'BAD' }),
    ]);
    const all = await cli(['connections', 'list'], repo);
    expect(all.code).toBe(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CONNECTION ID\s+APP\s+NAME\s+FREQUENCY\s+STATUS\s+BUCKET\s+VALID$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/))).toEqual([
      ['conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB', 'acme-shop', 'daily', 'DAILY', 'ACTIVE', 'acme-events', 'yes'],
      [
        'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA',
        'acme-shop',
        'fifteen',
        'FIFTEEN_MINUTES',
        'ACTIVE',
        'acme-events',
        'yes',
      ],
      ['conn_01JD7Z6T5Q9Y3M2K8V4W1X0CCC', 'zeta', 'fifteen', 'FIFTEEN_MINUTES', '-', 'BAD', 'no'],
    ]);
    const daily = await cli(['connections', 'list', '--frequency', 'DAILY', '--json'], repo);
    expect(
      JSON.parse(daily.stdout).map(
        (e: { connection: { connectionId: string } }) => e.connection.connectionId,
      ),
    ).toEqual(['conn_01JD7Z6T5Q9Y3M2K8V4W1X0BBB']);
    expect(repo.calls).toContain('listRawByFrequency:DAILY');
    const zeta = JSON.parse((await cli(['connections', 'list', '--app', 'zeta', '--json'], repo)).stdout);
    expect(zeta).toHaveLength(1);
    expect(zeta[0].valid).toBe(false);
    expect((await cli(['connections', 'list', '--frequency', 'HOURLY'], repo)).code).toBe(2);
  });

  it('pause and resume change only the status (and updatedAt), and say so', async () => {
    const repo = new InMemoryConnectionRepository([row({ folderPath: 'a/b' })]);
    const before = structuredClone(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'));
    const pause = await cli(['connections', 'pause', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    expect(pause).toEqual({
      code: 0,
      stdout: 'connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA: ACTIVE -> PAUSED\n',
      stderr: '',
    });
    expect(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA')).toEqual({
      ...before,
      userAttributes: 'ALL',
      deviceAttributes: 'ALL',
      status: 'PAUSED',
      updatedAt: NOW.toISOString(),
    });
    const again = await cli(['connections', 'pause', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    expect(again.stdout).toBe('connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA is already PAUSED\n');
    const resume = await cli(['connections', 'resume', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    expect(resume.stdout).toBe('connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA: PAUSED -> ACTIVE\n');
    expect(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA')?.status).toBe('ACTIVE');
  });

  it('pause refuses a stored row that does not validate, and leaves it unchanged', async () => {
    const repo = new InMemoryConnectionRepository([row({ frequency: 'HOURLY' })]);
    const run = await cli(['connections', 'pause', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('frequency: must be one of');
    expect(repo.rows.get('conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA')?.status).toBeUndefined();
    expect(repo.calls.some((c) => c.startsWith('put:'))).toBe(false);
  });

  it('delete needs --yes; with it the row is gone; a missing id exits 1', async () => {
    const repo = new InMemoryConnectionRepository([row()]);
    const refused = await cli(['connections', 'delete', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA'], repo);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('needs --yes');
    expect(repo.rows.size).toBe(1);
    const done = await cli(['connections', 'delete', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA', '--yes'], repo);
    expect(done).toEqual({
      code: 0,
      stdout: 'deleted connection conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA\n',
      stderr: '',
    });
    expect(repo.rows.size).toBe(0);
    expect(
      (await cli(['connections', 'delete', 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA', '--yes'], repo)).code,
    ).toBe(1);
  });

  it('global options work before the command and take precedence over the environment', async () => {
    const run = await cli(['--connections-table', 'T', 'connections', 'list'], undefined, {
      CONNECTIONS_TABLE: '',
    });
    // With a table but no region and no endpoint, the next missing setting is named.
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: no AWS region: pass --region (or set AWS_REGION)\n',
    });
  });
});
