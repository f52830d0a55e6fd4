/**
 * `connections put` and a connection's start: `startFrom` edits after the first export, and a
 * start older than the staging retention, are refused with the command to use instead; the
 * stored row is left as it was.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/main.ts';
import type { ExportState, ExportStateStore } from '../../lambdas/ports/index.ts';
import { InMemoryConnectionRepository } from '../support/in-memory-connection-repository.ts';

const NOW = new Date('2026-11-29T08:15:00.000Z');
const ID = 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0AAA';
const dir = mkdtempSync(join(tmpdir(), 'cli-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (patch: Record<string, unknown> = {}) => ({
  connectionId: ID,
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop DB',
  connectionName: 'fifteen',
  bucketName: 'acme-events',
  bucketRegion: 'ap-south-1',
  events: { mode: 'ALL' },
  frequency: 'FIFTEEN_MINUTES',
  createdAt: '2026-11-20T00:00:00.000Z',
  ...patch,
});

/** The ExportState rows `connections put` may read: only `get`. */
class States {
  readonly reads: string[] = [];
  constructor(private readonly states: Record<string, Partial<ExportState>> = {}) {}
  async get(connectionId: string): Promise<ExportState | undefined> {
    this.reads.push(connectionId);
    const state = this.states[connectionId];
    return state && ({ connectionId, sequence: 0, ...state } as ExportState);
  }
}

let files = 0;
async function put(
  rows: Record<string, unknown>[],
  repo: InMemoryConnectionRepository,
  states = new States(),
  env: NodeJS.ProcessEnv = {},
) {
  files += 1;
  const path = join(dir, `put-${files}.json`);
  writeFileSync(path, JSON.stringify(rows));
  let stdout = '';
  let stderr = '';
  const code = await runCli(['connections', 'put', path], {
    env,
    clock: { now: () => NOW },
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    overrides: {
      connectionRepository: async () => repo,
      exportStateStore: async () => states as unknown as ExportStateStore,
    },
  });
  return { code, stdout, stderr, states };
}

const exported = () => new States({ [ID]: { watermark: new Date('2026-11-29T08:00:00.000Z') } });

describe('connections put: startFrom after the first export', () => {
  it('adding startFrom to a connection that has exported is refused with the backfill command; the row is unchanged', async () => {
    const repo = new InMemoryConnectionRepository([row()]);
    const run = await put([row({ startFrom: '2026-11-25T00:00:00Z', frequency: 'DAILY' })], repo, exported());
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `connection ${ID}: startFrom: cannot be changed: the connection has exported up to 2026-11-29T08:00:00.000Z`,
    );
    expect(run.stderr).toContain('leave startFrom out in the row');
    expect(run.stderr).toContain(
      `s3-event-export connections pause ${ID}; s3-event-export backfill --connection ${ID} --from 2026-11-25T00:00:00Z; s3-event-export connections resume ${ID}`,
    );
    expect(run.stderr).toContain('nothing written');
    expect(repo.rows.get(ID)).toEqual(row());
  });

  it('changing or removing a stored startFrom is refused too; the same instant written differently is not a change', async () => {
    const stored = row({ startFrom: '2026-11-22T00:00:00.000Z' });
    const repo = new InMemoryConnectionRepository([stored]);
    const changed = await put([row({ startFrom: '2026-11-23T00:00:00Z' })], repo, exported());
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain('keep startFrom 2026-11-22T00:00:00.000Z in the row');
    const removed = await put([row()], repo, exported());
    expect(removed.code).toBe(1);
    expect(repo.rows.get(ID)).toEqual(stored);

    const same = await put(
      [row({ startFrom: '2026-11-22T00:00:00Z', frequency: 'DAILY' })],
      repo,
      exported(),
    );
    expect(same.stderr).toBe('');
    expect(same.code).toBe(0);
    expect(repo.rows.get(ID)?.frequency).toBe('DAILY');
  });

  it('before the first export startFrom may be set (within the retention)', async () => {
    const repo = new InMemoryConnectionRepository([row()]);
    const run = await put([row({ startFrom: '2026-11-25T00:00:00Z' })], repo);
    expect(run.code).toBe(0);
    expect(run.states.reads).toEqual([ID]);
    expect(repo.rows.get(ID)?.startFrom).toBe('2026-11-25T00:00:00Z');
  });

  it('a put that leaves the start alone reads no export state', async () => {
    const repo = new InMemoryConnectionRepository([row()]);
    const run = await put([row({ frequency: 'WEEKLY' })], repo);
    expect(run.code).toBe(0);
    expect(run.states.reads).toEqual([]);
  });
});

describe('connections put: a start older than the staging retention', () => {
  it('a new connection with createdAt beyond the retention is refused, naming the earliest instant and the backfill command', async () => {
    const repo = new InMemoryConnectionRepository();
    const run = await put([row({ createdAt: '2026-11-01T00:00:00.000Z' })], repo);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `connection ${ID}: createdAt: 2026-11-01T00:00:00.000Z is too early for a connection that has not exported yet`,
    );
    expect(run.stderr).toContain(
      'the staging retention (14 days) keeps events from 2026-11-15T08:15:00.000Z only',
    );
    expect(run.stderr).toContain(
      `s3-event-export backfill --connection ${ID} --from 2026-11-15T08:15:00.000Z`,
    );
    expect(repo.rows.size).toBe(0);
  });

  it('the retention comes from STAGING_RETENTION_DAYS; a connection that has exported keeps its old createdAt', async () => {
    const repo = new InMemoryConnectionRepository();
    const old = row({ createdAt: '2026-11-01T00:00:00.000Z' });
    expect((await put([old], repo, new States(), { STAGING_RETENTION_DAYS: '30' })).code).toBe(0);
    expect((await put([{ ...old, frequency: 'DAILY' }], repo, exported())).code).toBe(0);
    expect(repo.rows.get(ID)?.frequency).toBe('DAILY');
  });

  it('a startFrom beyond the retention is refused before the first export', async () => {
    const repo = new InMemoryConnectionRepository();
    const run = await put([row({ startFrom: '2026-11-10T00:00:00Z' })], repo);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `connection ${ID}: startFrom: 2026-11-10T00:00:00Z is too early: the staging retention (14 days) keeps events from 2026-11-15T08:15:00.000Z only; set startFrom at or after 2026-11-15T08:15:00.000Z`,
    );
    expect(repo.rows.size).toBe(0);
  });
});
