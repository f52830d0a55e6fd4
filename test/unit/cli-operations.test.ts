/**
 * The operations commands' own logic through runCli, with in-memory adapters handed in as
 * context overrides: argument checking, what is dispatched where, how status / history / usage
 * are computed and printed, and the refusals of rerun that come before any write. The same
 * commands on the real local engines: test/integration/operations-cli.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../../cli/main.ts';
import type {
  MonthlyUsage,
  StoredExportState,
  WindowHistoryEntry,
} from '../../lambdas/adapters/dynamo-export-state-store.ts';
import type {
  ConnectionDiagnosis,
  ExportJob,
  ExportSink,
  ExportState,
  ExportStateStore,
  StagingStore,
} from '../../lambdas/ports/index.ts';
import { InMemoryConnectionRepository } from '../support/in-memory-connection-repository.ts';

const NOW = new Date('2026-11-29T08:20:00.000Z');
const ID = 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0OPS';

const row = (patch: Record<string, unknown> = {}) => ({
  connectionId: ID,
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop DB',
  connectionName: 'fifteen',
  bucketName: 'acme-events',
  bucketRegion: 'us-east-1',
  events: { mode: 'ALL' },
  frequency: 'FIFTEEN_MINUTES',
  createdAt: '2026-11-01T00:00:00.000Z',
  ...patch,
});

/** The ExportState table as the dispatcher and the status/history/usage commands read it. */
class InMemoryExportState {
  readonly states = new Map<string, StoredExportState>();
  readonly history = new Map<string, WindowHistoryEntry[]>();
  readonly usage = new Map<string, MonthlyUsage>();
  readonly errors: { connectionId: string; diagnosis: ConnectionDiagnosis }[] = [];

  async get(connectionId: string): Promise<ExportState | undefined> {
    const state = this.states.get(connectionId);
    return state?.watermark ? (state as ExportState) : undefined;
  }
  async recordError(connectionId: string, diagnosis: ConnectionDiagnosis): Promise<void> {
    this.errors.push({ connectionId, diagnosis });
  }
  async listStates(): Promise<StoredExportState[]> {
    return [...this.states.values()];
  }
  async listHistory(connectionId: string, options: { limit?: number; newestFirst?: boolean } = {}) {
    const rows = [...(this.history.get(connectionId) ?? [])];
    if (options.newestFirst) rows.reverse();
    return rows.slice(0, options.limit ?? rows.length);
  }
  async earliestWindowCommittedSince(connectionId: string, since: Date) {
    const rows = this.history.get(connectionId) ?? [];
    return rows.find((w) => w.committedAt.getTime() >= since.getTime());
  }
  async getUsage(connectionId: string, month: string): Promise<MonthlyUsage> {
    return (
      this.usage.get(`${connectionId}|${month}`) ?? { connectionId, month, events: 0, files: 0, bytes: 0 }
    );
  }
  async listUsage(): Promise<MonthlyUsage[]> {
    return [...this.usage.values()];
  }
}

/** Adapters that must not be touched by the command under test. */
const untouchable = <T>(what: string): T =>
  new Proxy(
    {},
    {
      // Not a thenable (it is awaited when built); every method throws.
      get: (_target, name) =>
        name === 'then'
          ? undefined
          : () => {
              throw new Error(`${what} must not be used`);
            },
    },
  ) as T;

async function cli(
  argv: string[],
  options: {
    rows?: Record<string, unknown>[];
    state?: InMemoryExportState;
    queue?: ExportJob[];
    env?: NodeJS.ProcessEnv;
  } = {},
) {
  let stdout = '';
  let stderr = '';
  const state = options.state ?? new InMemoryExportState();
  const queue = options.queue ?? [];
  const code = await runCli(argv, {
    env: { AWS_REGION: 'us-east-1', SETTLE_DELAY_MINUTES: '5', STAGING_RETENTION_DAYS: '14', ...options.env },
    clock: { now: () => NOW },
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    overrides: {
      connectionRepository: async () => new InMemoryConnectionRepository(options.rows ?? [row()]),
      exportStateStore: async () => state as unknown as ExportStateStore,
      exportStateQueries: async () => state,
      jobQueue: async () => ({ enqueue: async (jobs: ExportJob[]) => void queue.push(...jobs) }),
      stagingStore: async () => untouchable<StagingStore>('the staging bucket'),
      exportSink: async () => untouchable<ExportSink>('the customer bucket'),
    },
  });
  return { code, stdout, stderr, state, queue };
}

describe('cli operations: arguments', () => {
  it.each([
    [['tick'], 'error: --frequency F is required'],
    [
      ['tick', '--frequency', 'HOURLY'],
      'error: --frequency must be one of FIFTEEN_MINUTES, DAILY, WEEKLY, got "HOURLY"',
    ],
    [['tick', '--frequency', 'DAILY', '--at', 'yesterday'], 'error: --at must be an ISO-8601 instant'],
    [['export'], 'error: --connection ID is required'],
    [['history', '--connection', ID, '--limit', '0'], 'error: --limit must be a positive whole number'],
    [['rerun', '--connection', ID], 'error: --window-end ISO is required'],
    [['usage', '--month', '2026-13'], 'error: --month must be YYYY-MM, got "2026-13"'],
    [['stage', 'events.ndjson', '--shard', 'a/b'], 'error: --shard must be 1-128 letters'],
    [['status', 'extra'], 'error: unexpected argument(s): extra'],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const run = await cli(argv);
    expect(run.code).toBe(2);
    expect(run.stderr.startsWith(message)).toBe(true);
  });

  it('stage names a missing file and exits 1 before touching any table or bucket', async () => {
    const run = await cli(['stage', '/nonexistent/events.ndjson']);
    expect(run).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'error: /nonexistent/events.ndjson: no such file\n',
    });
  });

  it('export of a connection that does not exist, or whose row is invalid, fails with the reason', async () => {
    expect((await cli(['export', '--connection', 'conn_missing'])).stderr).toBe(
      'error: connection conn_missing not found\n',
    );
    const invalid = await cli(['export', '--connection', ID], { rows: [row({ bucketName: 'Bad_Bucket' })] });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(
      /^error: connection \S+ is invalid and is not exported until fixed: bucketName: /,
    );
  });
});

describe('cli operations: tick with a queue', () => {
  it('sends one job per due ACTIVE connection to the queue, for the window end the instant stands for, and exports nothing here', async () => {
    const state = new InMemoryExportState();
    state.states.set(ID, { connectionId: ID, sequence: 4, watermark: new Date('2026-11-29T08:00:00Z') });
    const upToDate = 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0UTD';
    state.states.set(upToDate, {
      connectionId: upToDate,
      sequence: 9,
      watermark: new Date('2026-11-29T08:15:00Z'),
    });
    const rows = [
      row(),
      row({ connectionId: upToDate, connectionName: 'current' }),
      row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0PAU', connectionName: 'paused', status: 'PAUSED' }),
      row({ connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0DAY', connectionName: 'daily', frequency: 'DAILY' }),
    ];
    const run = await cli(
      [
        'tick',
        '--frequency',
        'FIFTEEN_MINUTES',
        '--at',
        '2026-11-29T08:20:00Z',
        '--queue-url',
        'https://sqs.example/jobs',
      ],
      { rows, state },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.queue).toEqual([
      { connectionId: ID, windowEnd: '2026-11-29T08:15:00.000Z', reason: 'schedule' },
    ]);
    expect(run.stdout).toBe(
      'tick FIFTEEN_MINUTES at 2026-11-29T08:20:00.000Z: window end 2026-11-29T08:15:00.000Z: 1 job(s), 1 inactive, 0 invalid, max lag 15m\n' +
        '1 job(s) sent to https://sqs.example/jobs\n',
    );
  });

  it('records the error of an invalid row on its state and warns about it', async () => {
    const run = await cli(
      ['tick', '--frequency', 'FIFTEEN_MINUTES', '--queue-url', 'https://sqs.example/jobs'],
      {
        rows: [row({ bucketRegion: 'Mumbai' })],
      },
    );
    expect(run.code).toBe(0);
    expect(run.state.errors).toMatchObject([{ connectionId: ID, diagnosis: { code: 'INVALID_CONNECTION' } }]);
    expect(run.stderr).toContain(`invalid connection row ${ID}: not exported`);
  });
});

describe('cli operations: status, history, usage', () => {
  const DELETED = 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0DEL';
  const BROKEN = 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0BRK';

  function populated(): InMemoryExportState {
    const state = new InMemoryExportState();
    state.states.set(ID, {
      connectionId: ID,
      sequence: 12,
      watermark: new Date('2026-11-27T08:15:00Z'),
      pendingWindowEnd: new Date('2026-11-29T08:15:00Z'),
      lease: { owner: 'exporter-1', expiresAt: new Date('2026-11-29T08:22:00Z') },
      cursor: { nextObjectIndex: 3, nextPartNumber: 3, parts: [] },
      lastCommittedAt: new Date('2026-11-27T08:21:00Z'),
      lastFileKey: 'fifteen/export_day=27-11-2026/event_exports_1795767300.json.gz',
      lastError: {
        code: 'BUCKET_POLICY_MISSING',
        message: 'the bucket policy does not allow our exporter role',
        at: '2026-11-29T08:05:00.000Z',
      },
    });
    state.states.set(BROKEN, {
      connectionId: BROKEN,
      sequence: 0,
      lastError: {
        code: 'INVALID_CONNECTION',
        message: 'bucketRegion: must be a region',
        at: NOW.toISOString(),
      },
    });
    state.states.set(DELETED, {
      connectionId: DELETED,
      sequence: 3,
      watermark: new Date('2026-11-20T00:00:00Z'),
    });
    return state;
  }

  it('status --json: lag from the watermark to the latest boundary, pending window, lease, last file and error; error-only and orphaned state rows too', async () => {
    const rows = [row(), row({ connectionId: BROKEN, connectionName: 'broken', bucketRegion: 'Mumbai' })];
    const run = await cli(['status', '--json'], { rows, state: populated() });
    expect(run.code).toBe(0);
    const entries = JSON.parse(run.stdout) as Record<string, unknown>[];
    expect(entries.find((e) => e.connectionId === ID)).toEqual({
      connectionId: ID,
      appId: 'acme-shop',
      connectionName: 'fifteen',
      frequency: 'FIFTEEN_MINUTES',
      status: 'ACTIVE',
      sequence: 12,
      watermark: '2026-11-27T08:15:00.000Z',
      lagSeconds: 2 * 86_400,
      pendingWindowEnd: '2026-11-29T08:15:00.000Z',
      lease: { owner: 'exporter-1', expiresAt: '2026-11-29T08:22:00.000Z', expired: false },
      cursorParts: 0,
      lastCommittedAt: '2026-11-27T08:21:00.000Z',
      lastFileKey: 'fifteen/export_day=27-11-2026/event_exports_1795767300.json.gz',
      lastError: {
        code: 'BUCKET_POLICY_MISSING',
        message: 'the bucket policy does not allow our exporter role',
        at: '2026-11-29T08:05:00.000Z',
      },
    });
    const broken = entries.find((e) => e.connectionId === BROKEN);
    expect(broken).toMatchObject({ connectionName: 'broken', lastError: { code: 'INVALID_CONNECTION' } });
    expect(broken).not.toHaveProperty('watermark');
    expect(entries.find((e) => e.connectionId === DELETED)).toMatchObject({ status: 'MISSING', sequence: 3 });
  });

  it('status as text: one line per connection with the lag in words and the error code first', async () => {
    const run = await cli(['status'], { state: populated() });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^CONNECTION ID +NAME +FREQUENCY +STATUS +WATERMARK +LAG +SEQ +PENDING +LAST FILE +LAST ERROR +LAST GAP$/,
    );
    const mine = lines.find((l) => l.startsWith(ID));
    expect(mine).toMatch(
      / fifteen +FIFTEEN_MINUTES +ACTIVE +2026-11-27T08:15:00.000Z +2d +12 +window end 2026-11-29T08:15:00.000Z, lease exporter-1 until 2026-11-29T08:22:00.000Z /,
    );
    expect(mine).toMatch(/BUCKET_POLICY_MISSING: the bucket policy does not allow our exporter role +-$/);
  });

  it('history prints the newest windows first, up to --limit', async () => {
    const state = new InMemoryExportState();
    const window = (sequence: number, start: string, end: string): WindowHistoryEntry => ({
      connectionId: ID,
      windowStart: new Date(start),
      windowEnd: new Date(end),
      sequence,
      parts: [{ key: `k${sequence}`, records: sequence * 10, bytes: 2048, sha256: 'x' }],
      manifestKey: `m${sequence}`,
      records: sequence * 10,
      bytes: 2048,
      committedAt: new Date(end),
    });
    state.history.set(ID, [
      window(1, '2026-11-29T07:30:00Z', '2026-11-29T07:45:00Z'),
      window(2, '2026-11-29T07:45:00Z', '2026-11-29T08:00:00Z'),
      window(3, '2026-11-29T08:00:00Z', '2026-11-29T08:15:00Z'),
    ]);
    const run = await cli(['history', '--connection', ID, '--limit', '2'], { state });
    expect(run.stdout.trimEnd().split('\n')).toEqual([
      'SEQ  WINDOW START              WINDOW END                FILES  RECORDS  BYTES    MANIFEST  SUPERSEDES',
      '3    2026-11-29T08:00:00.000Z  2026-11-29T08:15:00.000Z  1      30       2.0 KiB  m3        -',
      '2    2026-11-29T07:45:00.000Z  2026-11-29T08:00:00.000Z  1      20       2.0 KiB  m2        -',
    ]);
    expect((await cli(['history', '--connection', 'conn_none'], { state })).stderr).toBe(
      'connection conn_none has no committed window\n',
    );
  });

  it('usage of a month lists every connection with a row or a state, zeros included, and a total', async () => {
    const state = populated();
    state.usage.set(`${ID}|2026-11`, {
      connectionId: ID,
      month: '2026-11',
      events: 1500,
      files: 40,
      bytes: 3 * 1024 * 1024,
    });
    state.usage.set(`${DELETED}|2026-11`, {
      connectionId: DELETED,
      month: '2026-11',
      events: 10,
      files: 2,
      bytes: 1000,
    });
    state.usage.set(`${ID}|2026-10`, { connectionId: ID, month: '2026-10', events: 99, files: 9, bytes: 9 });
    const run = await cli(['usage', '--month', '2026-11', '--json'], { state });
    expect(JSON.parse(run.stdout)).toEqual({
      month: '2026-11',
      connections: [
        { connectionId: BROKEN, month: '2026-11', events: 0, files: 0, bytes: 0 },
        { connectionId: DELETED, month: '2026-11', events: 10, files: 2, bytes: 1000 },
        { connectionId: ID, month: '2026-11', events: 1500, files: 40, bytes: 3 * 1024 * 1024 },
      ],
      total: { events: 1510, files: 42, bytes: 3 * 1024 * 1024 + 1000 },
    });
    const one = await cli(['usage', '--month', '2026-10', '--connection', ID], { state });
    expect(one.stdout).toContain(`${ID}  -         99      9      9 (9 B)`);
    expect(one.stdout).not.toContain('TOTAL');
  });
});

describe('cli operations: rerun refusals (nothing is written)', () => {
  const committed = (patch: Partial<WindowHistoryEntry> = {}): WindowHistoryEntry => ({
    connectionId: ID,
    windowStart: new Date('2026-11-29T07:45:00Z'),
    windowEnd: new Date('2026-11-29T08:00:00Z'),
    sequence: 7,
    parts: [
      {
        key: 'fifteen/export_day=29-11-2026/event_exports_1795939200.json.gz',
        records: 5,
        bytes: 100,
        sha256: 'x',
      },
    ],
    manifestKey: 'fifteen/export_day=29-11-2026/event_exports_1795939200.manifest.json',
    records: 5,
    bytes: 100,
    committedAt: new Date('2026-11-29T08:06:00Z'),
    ...patch,
  });

  it('refuses a window after the watermark (a backfill moved it back: the schedule exports it again)', async () => {
    const state = new InMemoryExportState();
    state.history.set(ID, [committed()]);
    state.states.set(ID, { connectionId: ID, sequence: 7, watermark: new Date('2026-11-29T07:45:00Z') });
    const run = await cli(['rerun', '--connection', ID, '--window-end', '2026-11-29T08:00:00Z'], { state });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^error: rerun refused \(WINDOW_NOT_COMMITTED\): the window ending at 2026-11-29T08:00:00.000Z is after the watermark/,
    );
  });

  it("refuses when the connection's keys changed since (renamed): a rerun must replace the files, not copy them elsewhere", async () => {
    const state = new InMemoryExportState();
    state.history.set(ID, [committed()]);
    state.states.set(ID, { connectionId: ID, sequence: 7, watermark: new Date('2026-11-29T08:00:00Z') });
    const run = await cli(['rerun', '--connection', ID, '--window-end', '2026-11-29T08:00:00Z'], {
      state,
      rows: [row({ connectionName: 'renamed' })],
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('rerun refused (KEYS_CHANGED)');
    expect(run.stderr).toContain('now renamed/export_day=29-11-2026/event_exports_1795939200.manifest.json');
  });

  it('refuses a window the history does not have, naming the latest one', async () => {
    const state = new InMemoryExportState();
    state.history.set(ID, [committed()]);
    const run = await cli(['rerun', '--connection', ID, '--window-end', '2026-11-29T08:15:00Z'], { state });
    expect(run.stderr).toContain('(WINDOW_NOT_IN_HISTORY)');
    expect(run.stderr).toContain('latest: 2026-11-29T08:00:00.000Z');
  });
});
