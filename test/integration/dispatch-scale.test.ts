/**
 * The dispatcher at scale, on DynamoDB Local: connection rows are read page by page, states in
 * parallel (bounded), jobs enqueued as pages come; a tick that runs low on time saves where it
 * stopped and its retry continues there, every due connection enqueued exactly once. And the
 * data-at-risk measure covers every connection of the frequency: paused, invalid and never
 * exported ones too, with a lead time that suits each frequency.
 */
import { BatchWriteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { DynamoTickProgressStore } from '../../lambdas/adapters/dynamo-tick-progress.ts';
import type { Frequency } from '../../lambdas/definitions.ts';
import type { Connection } from '../../lambdas/domain/connection.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import type { ExportJob } from '../../lambdas/ports/index.ts';
import { jobConnectionIds } from '../../lambdas/ports/index.ts';
import { dispatchTick } from '../../lambdas/usecases/dispatch-tick.ts';
import { ManualClock } from '../../local/clock.ts';
import { useLocalEngines } from '../support/engines.ts';
import { connectionFactory } from '../support/fixtures.ts';

const engines = useLocalEngines();
const DAY = 86_400_000;
const SETTLE = 5 * 60_000;

function stores() {
  const e = engines();
  const documentClient = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  return {
    documentClient,
    tables: e.tables,
    state: new DynamoExportStateStore(documentClient, e.tables.exportState),
    progress: new DynamoTickProgressStore(documentClient, e.tables.exportState),
  };
}

async function putRows(rows: Record<string, unknown>[]) {
  const { documentClient, tables } = stores();
  for (let i = 0; i < rows.length; i += 25) {
    await documentClient.send(
      new BatchWriteCommand({
        RequestItems: {
          [tables.connections]: rows.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
        },
      }),
    );
  }
}

/** A job queue that records what was enqueued, and when (in `events`). */
function recordingQueue(events: string[]) {
  const jobs: ExportJob[] = [];
  return {
    jobs,
    async enqueue(batch: ExportJob[]) {
      events.push(`enqueue:${batch.length}`);
      jobs.push(...batch);
    },
  };
}

/** A state store that counts the batched reads, and how many are in flight at once. */
function countingState(inner: DynamoExportStateStore) {
  let inFlight = 0;
  const counts = { max: 0, requests: 0, ids: 0 };
  const state = Object.create(inner) as DynamoExportStateStore;
  state.getMany = async (ids) => {
    inFlight += 1;
    counts.requests += 1;
    counts.ids += ids.length;
    counts.max = Math.max(counts.max, inFlight);
    try {
      return await inner.getMany(ids);
    } finally {
      inFlight -= 1;
    }
  };
  return { state, counts };
}

describe('dispatching many connections', () => {
  it('reads pages with parallel state reads, enqueues as it goes, and a tick cut short continues where it stopped', async () => {
    const s = stores();
    const newConnection = connectionFactory({
      idPrefix: 'scaletick',
      namePrefix: 'sc',
      appName: 'Scale',
      bucketName: 'customer-scale',
    });
    const frequency: Frequency = 'DAILY';
    // 350 daily connections of 35 apps (10 each), created yesterday: all due at today's tick.
    const scheduledTime = new Date(boundaryAtOrBefore('DAILY', new Date()).getTime() + SETTLE);
    const createdAt = new Date(scheduledTime.getTime() - DAY - SETTLE).toISOString();
    const connections: Connection[] = Array.from({ length: 350 }, (_, i) => ({
      ...newConnection({ frequency, createdAt }),
      appId: `app-sc-${String(Math.floor(i / 10)).padStart(2, '0')}`,
    }));
    await putRows(connections.map((c) => ({ ...c })));

    const events: string[] = [];
    const repository = new DynamoConnectionRepository(
      s.documentClient,
      s.tables.connections,
      s.tables.exportState,
      120,
    );
    const pagedRepository = Object.create(repository) as DynamoConnectionRepository;
    pagedRepository.listRawByFrequencyPage = async (f, after) => {
      events.push('page');
      return repository.listRawByFrequencyPage(f, after);
    };
    const { state, counts } = countingState(s.state);
    const queue = recordingQueue(events);
    const deps = {
      connections: pagedRepository,
      state,
      jobs: queue,
      clock: new ManualClock(scheduledTime),
      progress: s.progress,
    };

    // The budget runs out after two pages.
    let pagesRead = 0;
    const first = await dispatchTick({ frequency, scheduledTime }, deps, SETTLE, {
      readConcurrency: 8,
      maxHeldConnections: 30,
      remainingTimeMs: () => (pagesRead++ < 2 ? 60_000 : 1_000),
    });
    expect(first.status).toBe('continued');
    expect(first.pages).toBe(2);
    expect(first.connections).toBe(240);
    const saved = await s.progress.get(frequency, first.windowEnd);
    expect(saved).toBeDefined();
    // Enqueued as it went: messages went out before the second page was read.
    const firstEnqueue = events.findIndex((e) => e.startsWith('enqueue'));
    expect(firstEnqueue).toBeGreaterThan(-1);
    expect(firstEnqueue).toBeLessThan(events.lastIndexOf('page'));
    // Each page's 120 states in two BatchGetItem calls (100 + 20), both in flight at once.
    expect(counts).toMatchObject({ requests: 4, ids: 240, max: 2 });

    // The retry (same tick) continues after the saved page, and clears the progress at the end.
    const second = await dispatchTick({ frequency, scheduledTime }, deps, SETTLE, {
      readConcurrency: 8,
      maxHeldConnections: 30,
    });
    expect(second.status).toBe('complete');
    expect(second.connections).toBe(110);
    expect(second.pages).toBe(1);
    expect(await s.progress.get(frequency, first.windowEnd)).toBeUndefined();

    const dispatched = queue.jobs.flatMap(jobConnectionIds).sort();
    expect(dispatched).toEqual(connections.map((c) => c.connectionId).sort());
    // Batch jobs of at most 100 connections, each group of at most 10 connections of one app.
    const appOf = (id: string) => connections.find((c) => c.connectionId === id)?.appId;
    for (const job of queue.jobs) {
      expect(jobConnectionIds(job).length).toBeLessThanOrEqual(100);
      for (const group of job.groups ?? [jobConnectionIds(job)]) {
        expect(group.length).toBeLessThanOrEqual(10);
        expect(new Set(group.map(appOf)).size).toBe(1);
      }
    }
    expect(counts.ids).toBe(350);
  });

  it('data at risk: paused, invalid and never-exported connections count, with a lead time per frequency', async () => {
    const s = stores();
    const newConnection = connectionFactory({
      idPrefix: 'atrisk',
      namePrefix: 'ar',
      appName: 'Risk',
      bucketName: 'customer-risk',
    });
    const now = new Date(boundaryAtOrBefore('WEEKLY', new Date()).getTime() + SETTLE);
    const daysAgo = (days: number) => new Date(now.getTime() - days * DAY);
    const put = async (c: Connection, watermark?: Date) => {
      await new DynamoConnectionRepository(s.documentClient, s.tables.connections, s.tables.exportState).put(
        c,
      );
      if (watermark) await s.state.initialize(c.connectionId, watermark);
      return c.connectionId;
    };
    const onTime = await put(newConnection({ createdAt: daysAgo(30).toISOString() }), daysAgo(0));
    const paused = await put(
      newConnection({ status: 'PAUSED', createdAt: daysAgo(30).toISOString() }),
      daysAgo(13),
    );
    const neverExported = await put(newConnection({ createdAt: daysAgo(13).toISOString() }));
    const disabled = await put(
      newConnection({ status: 'DISABLED', createdAt: daysAgo(30).toISOString() }),
      daysAgo(20),
    );
    const invalidId = 'conn_atriskinvalid01';
    await s.documentClient.send(
      new PutCommand({
        TableName: s.tables.connections,
        Item: { connectionId: invalidId, frequency: 'FIFTEEN_MINUTES', createdAt: daysAgo(20).toISOString() },
      }),
    );
    const weeklyOnTime = await put(
      newConnection({ frequency: 'WEEKLY', createdAt: daysAgo(60).toISOString() }),
      daysAgo(7),
    );
    const weeklyBehind = await put(
      newConnection({ frequency: 'WEEKLY', createdAt: daysAgo(60).toISOString() }),
      daysAgo(14),
    );

    const deps = {
      connections: new DynamoConnectionRepository(
        s.documentClient,
        s.tables.connections,
        s.tables.exportState,
      ),
      state: s.state,
      jobs: recordingQueue([]),
      clock: new ManualClock(now),
    };
    const quarter = await dispatchTick({ frequency: 'FIFTEEN_MINUTES', scheduledTime: now }, deps, SETTLE, {
      stagingRetentionDays: 14,
    });
    const atRisk = Object.fromEntries(quarter.atRisk.map((r) => [r.connectionId, r.status]));
    expect(atRisk).toEqual({
      [paused]: 'PAUSED',
      [neverExported]: 'ACTIVE/NEW',
      [invalidId]: 'INVALID',
    });
    expect(onTime in atRisk || disabled in atRisk).toBe(false);
    // The largest age is the invalid row's 20 days (its data partly expired already).
    expect(quarter.maxUnexportedAgeSeconds).toBe(20 * 86_400);

    const weekly = await dispatchTick({ frequency: 'WEEKLY', scheduledTime: now }, deps, SETTLE, {
      stagingRetentionDays: 14,
    });
    // On time at its tick a weekly connection is 7 days (+ settle delay) behind: not at risk.
    expect(weekly.atRisk.map((r) => r.connectionId)).toEqual([weeklyBehind]);
    expect(weekly.atRisk.map((r) => r.connectionId)).not.toContain(weeklyOnTime);
  });
});
