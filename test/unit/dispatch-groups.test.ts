/** How the dispatcher groups one tick's due connections into export jobs (lambdas/usecases/dispatch-tick.ts). */
import { describe, expect, it } from 'vitest';
import { jobConnectionIds } from '../../lambdas/ports/index.ts';
import {
  type DueConnection,
  groupExportJobs,
  MAX_BATCH_CONNECTIONS,
  MAX_GROUP_CONNECTIONS,
} from '../../lambdas/usecases/dispatch-tick.ts';

const END = '2026-11-02T10:15:00.000Z';

function due(connectionId: string, appId: string, overrides: Partial<DueConnection> = {}): DueConnection {
  return { connectionId, appId, windowEnd: END, grouped: true, ...overrides };
}

describe('dispatcher: group jobs', () => {
  it('one job per app and window end carries all its connections, in order; a lone connection keeps the single shape', () => {
    const jobs = groupExportJobs(
      [
        due('conn_a1', 'app-a'),
        due('conn_b1', 'app-b'),
        due('conn_a2', 'app-a'),
        due('conn_c1', 'app-c'),
        due('conn_a3', 'app-a'),
        due('conn_b2', 'app-b'),
      ],
      MAX_GROUP_CONNECTIONS,
      1,
    );
    expect(jobs).toEqual([
      { connectionIds: ['conn_a1', 'conn_a2', 'conn_a3'], windowEnd: END, reason: 'schedule' },
      { connectionIds: ['conn_b1', 'conn_b2'], windowEnd: END, reason: 'schedule' },
      { connectionId: 'conn_c1', windowEnd: END, reason: 'schedule' },
    ]);
  });

  it('connections of one app with different window ends are different groups', () => {
    const later = '2026-11-03T00:00:00.000Z';
    expect(
      groupExportJobs([
        due('conn_1', 'app'),
        due('conn_2', 'app', { windowEnd: later }),
        due('conn_3', 'app'),
      ]),
      // (batches never mix window ends either)
    ).toEqual([
      { connectionIds: ['conn_1', 'conn_3'], windowEnd: END, reason: 'schedule' },
      { connectionId: 'conn_2', windowEnd: later, reason: 'schedule' },
    ]);
  });

  it('a connection catching up runs alone, so it never holds its app group back', () => {
    expect(
      groupExportJobs([
        due('conn_1', 'app'),
        due('conn_behind', 'app', { grouped: false }),
        due('conn_2', 'app'),
      ]),
    ).toEqual([
      { connectionId: 'conn_behind', windowEnd: END, reason: 'schedule' },
      { connectionIds: ['conn_1', 'conn_2'], windowEnd: END, reason: 'schedule' },
    ]);
  });

  it(`a group larger than ${MAX_GROUP_CONNECTIONS} is split evenly; every connection is in exactly one job`, () => {
    const ids = Array.from(
      { length: 2 * MAX_GROUP_CONNECTIONS + 3 },
      (_, i) => `conn_${String(i).padStart(3, '0')}`,
    );
    const jobs = groupExportJobs(
      ids.map((id) => due(id, 'app-big')),
      MAX_GROUP_CONNECTIONS,
      1,
    );
    const sizes = jobs.map((j) => j.connectionIds?.length ?? 1);
    expect(sizes).toHaveLength(3);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_GROUP_CONNECTIONS);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(jobs.flatMap((j) => j.connectionIds ?? [j.connectionId])).toEqual(ids);
    expect(
      groupExportJobs(
        ids.slice(0, 4).map((id) => due(id, 'app')),
        3,
        1,
      ).map((j) => j.connectionIds),
    ).toEqual([ids.slice(0, 2), ids.slice(2, 4)]);
  });

  it('a full group is a small SQS message (limit 256 KiB)', () => {
    const ids = Array.from({ length: MAX_GROUP_CONNECTIONS }, () => `conn_${'X'.repeat(26)}`);
    const [job] = groupExportJobs(ids.map((id) => due(id, 'app')));
    expect(Buffer.byteLength(JSON.stringify(job))).toBeLessThan(1024);
  });
});

describe('dispatcher: batch jobs', () => {
  it(`the on-time groups of many apps share batch messages of at most ${MAX_BATCH_CONNECTIONS} connections; catching-up ones stay alone`, () => {
    const apps = 250;
    const dues = Array.from({ length: apps }, (_, i) =>
      due(`conn_${String(i).padStart(26, '0')}`, `app-${i % 200}`),
    );
    dues.push(due('conn_behind', 'app-1', { grouped: false }));
    const jobs = groupExportJobs(dues);
    const batches = jobs.filter((j) => j.groups);
    expect(jobs).toContainEqual({ connectionId: 'conn_behind', windowEnd: END, reason: 'schedule' });
    // 250 on-time connections: 3 messages instead of 200 (one per app).
    expect(batches).toHaveLength(3);
    for (const b of batches) {
      expect(jobConnectionIds(b).length).toBeLessThanOrEqual(MAX_BATCH_CONNECTIONS);
      expect(Buffer.byteLength(JSON.stringify(b))).toBeLessThan(8 * 1024);
    }
    // Every connection exactly once; an app's connections stay in one group.
    const all = jobs.flatMap(jobConnectionIds);
    expect(all.sort()).toEqual(dues.map((d) => d.connectionId).sort());
    const groups = batches.flatMap((b) => b.groups ?? []);
    for (const group of groups) expect(new Set(group.map((id) => Number(id.slice(5)) % 200)).size).toBe(1);
  });

  it('a batch of one group keeps the group shape, of one connection the single shape', () => {
    expect(groupExportJobs([due('conn_a', 'app-a'), due('conn_b', 'app-a')])).toEqual([
      { connectionIds: ['conn_a', 'conn_b'], windowEnd: END, reason: 'schedule' },
    ]);
    expect(groupExportJobs([due('conn_a', 'app-a')])).toEqual([
      { connectionId: 'conn_a', windowEnd: END, reason: 'schedule' },
    ]);
  });
});
