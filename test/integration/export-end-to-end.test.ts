import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import type { ConnectionInput } from '../../lambdas/domain/connection.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { ManualClock } from '../../local/clock.ts';
import { createEventGenerator } from '../../local/events.ts';
import { createHarness, gzipRecords, isDataKey, isManifestKey, readBucket } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();

const T0 = new Date('2026-11-02T10:00:00Z'); // a Monday

function connectionRow(
  overrides: Partial<ConnectionInput> & Pick<ConnectionInput, 'connectionId'>,
): ConnectionInput {
  return {
    appId: 'app-e2e',
    appName: 'App Name',
    dbName: 'MoEngage App Name',
    connectionName: `export ${overrides.connectionId}`,
    bucketName: 'customer-e2e',
    bucketRegion: 'us-east-1',
    events: { mode: 'ALL' },
    frequency: 'FIFTEEN_MINUTES',
    createdAt: T0.toISOString(),
    ...overrides,
  };
}

describe('the export path end to end on the local engines', () => {
  it('exports staged events of the window to the documented key with records in the documented format, once per tick', async () => {
    const e = engines();
    await e.createBucket('customer-e2e');
    const clock = new ManualClock(T0);
    const { driver, s3 } = await createHarness(e, { clock });
    const connection = parseConnection(
      connectionRow({
        connectionId: 'conn_e2e0000000001',
        folderPath: 'exports/raw',
        connectionName: 'All events',
      }),
    );
    await driver.runtime.connections.put(connection);

    const generate = createEventGenerator({ appId: 'app-e2e', seed: 7, offlineShare: 0.3 });
    clock.set(new Date('2026-11-02T10:03:00Z'));
    const first = Array.from({ length: 40 }, () => generate(clock.now()));
    await driver.stage(first);
    clock.set(new Date('2026-11-02T10:14:59Z'));
    const second = Array.from({ length: 10 }, () => generate(clock.now()));
    await driver.stage(second);
    clock.set(new Date('2026-11-02T10:16:00Z'));
    const late = Array.from({ length: 5 }, () => generate(clock.now())); // belongs to the next window
    await driver.stage(late);

    clock.set(new Date('2026-11-02T10:20:00Z'));
    const run = await driver.tick('FIFTEEN_MINUTES', new Date('2026-11-02T10:20:00Z'));
    expect(run.tick.windowEnd.toISOString()).toBe('2026-11-02T10:15:00.000Z');
    expect(run.exports.map((x) => x.outcome?.status)).toEqual(['committed']);

    const files = await readBucket(s3, 'customer-e2e', 'exports/raw_All events/');
    const stamp = Date.parse('2026-11-02T10:15:00Z') / 1000;
    expect(files.map((f) => f.key)).toEqual([
      `exports/raw_All events/export_day=02-11-2026/event_exports_${stamp}.json.gz`,
      `exports/raw_All events/export_day=02-11-2026/event_exports_${stamp}.manifest.json`,
    ]);
    const records = gzipRecords(files[0]!.body);
    expect(records.map((r) => (r.event as { event_uuid: string }).event_uuid)).toEqual(
      [...first, ...second].map((x) => x.event.event_uuid),
    );
    for (const record of records) {
      expect(Object.keys(record)).toEqual(['app_name', 'export_hour', 'db_name', 'event', 'export_day']);
      expect(record.export_hour).toBe('10');
      expect(record.export_day).toBe('2026-11-02');
    }
    // Offline events (event_time days old) are in the window they were received in.
    const oldest = Math.min(...records.map((r) => (r.event as { event_time: number }).event_time));
    expect(oldest).toBeLessThan(stamp - 86_400);
    // The event as received, key order kept.
    expect(JSON.stringify(records[0]!.event)).toBe(JSON.stringify(first[0]!.event));

    const manifest = JSON.parse(files[1]!.body.toString('utf8'));
    expect(manifest).toMatchObject({ connectionId: 'conn_e2e0000000001', sequence: 1, totalRecords: 50 });

    // A repeated tick for the same instant writes no second file and does not move the watermark again.
    const stateBefore = await driver.runtime.state.get('conn_e2e0000000001');
    const again = await driver.tick('FIFTEEN_MINUTES', new Date('2026-11-02T10:20:00Z'));
    expect(again.tick.jobs).toHaveLength(0);
    await driver.exportJob({ connectionId: 'conn_e2e0000000001', windowEnd: '2026-11-02T10:15:00.000Z' });
    const stateAfter = await driver.runtime.state.get('conn_e2e0000000001');
    expect(stateAfter?.watermark).toEqual(stateBefore?.watermark);
    expect(stateAfter?.sequence).toBe(1);
    expect(await readBucket(s3, 'customer-e2e', 'exports/raw_All events/')).toHaveLength(2);

    // The next window holds the event received at 10:16.
    clock.set(new Date('2026-11-02T10:35:00Z'));
    await driver.tick('FIFTEEN_MINUTES', new Date('2026-11-02T10:35:00Z'));
    const next = (await readBucket(s3, 'customer-e2e', 'exports/raw_All events/')).filter(
      (f) => isDataKey(f.key) && f.key.includes(`${stamp + 900}`),
    );
    expect(gzipRecords(next[0]!.body).map((r) => (r.event as { event_uuid: string }).event_uuid)).toEqual(
      late.map((x) => x.event.event_uuid),
    );
  });

  it('applies event selection and attribute projection, and ALL includes event names first seen later', async () => {
    const e = engines();
    await e.createBucket('customer-select');
    const clock = new ManualClock(T0);
    const { driver, s3 } = await createHarness(e, { clock });
    const selected = parseConnection(
      connectionRow({
        connectionId: 'conn_sel0000000001',
        appId: 'app-select',
        bucketName: 'customer-select',
        connectionName: 'selected',
        frequency: 'DAILY',
        events: { mode: 'SELECTED', names: ['PURCHASE', 'MOE_EMAIL_SENT'] },
        userAttributes: ['city'],
        deviceAttributes: [],
      }),
    );
    const all = parseConnection(
      connectionRow({
        connectionId: 'conn_all0000000001',
        appId: 'app-select',
        bucketName: 'customer-select',
        connectionName: 'everything',
        frequency: 'DAILY',
      }),
    );
    await driver.runtime.connections.put(selected);
    await driver.runtime.connections.put(all);

    const generate = createEventGenerator({
      appId: 'app-select',
      seed: 11,
      newNames: ['BRAND_NEW_EVENT'],
      newNamesFrom: new Date('2026-11-02T18:00:00Z'),
    });
    const staged: ReturnType<typeof generate>[] = [];
    for (let h = 11; h < 24; h++) {
      clock.set(new Date(`2026-11-02T${String(h).padStart(2, '0')}:30:00Z`));
      const batch = Array.from({ length: 30 }, () => generate(clock.now()));
      staged.push(...batch);
      await driver.stage(batch);
    }
    clock.set(new Date('2026-11-03T00:05:00Z'));
    const run = await driver.tick('DAILY', clock.now());
    expect(run.exports.map((x) => x.outcome?.status)).toEqual(['committed', 'committed']);

    const files = await readBucket(s3, 'customer-select');
    const stamp = Date.parse('2026-11-03T00:00:00Z') / 1000;
    const selectedFile = files.find(
      (f) => f.key === `selected/export_day=03-11-2026/event_exports_${stamp}.json.gz`,
    );
    const allFile = files.find(
      (f) => f.key === `everything/export_day=03-11-2026/event_exports_${stamp}.json.gz`,
    );
    const selectedRecords = gzipRecords(selectedFile!.body);
    const expected = staged.filter((x) =>
      ['PURCHASE', 'MOE_EMAIL_SENT'].includes(x.event.event_code as string),
    );
    expect(selectedRecords.map((r) => (r.event as { event_uuid: string }).event_uuid)).toEqual(
      expected.map((x) => x.event.event_uuid),
    );
    for (const record of selectedRecords) {
      const event = record.event as Record<string, Record<string, unknown>>;
      expect(Object.keys(event.user_attributes!)).toEqual(['moengage_user_id', 'city']);
      expect(Object.keys(event.device_attributes!)).toEqual(['moengage_device_id']);
      expect(record.export_hour).toBe('0');
      expect(record.export_day).toBe('2026-11-03');
    }
    const allRecords = gzipRecords(allFile!.body);
    expect(allRecords).toHaveLength(staged.length);
    expect(allRecords.some((r) => (r.event as { event_name: string }).event_name === 'BRAND_NEW_EVENT')).toBe(
      true,
    );
    expect(files.filter((f) => isManifestKey(f.key))).toHaveLength(2);
  });

  it('an invalid row does not stop the other connections; its error is recorded on its state', async () => {
    const e = engines();
    await e.createBucket('customer-isolation');
    const clock = new ManualClock(T0);
    const { driver, s3 } = await createHarness(e, { clock });
    const good = parseConnection(
      connectionRow({
        connectionId: 'conn_good000000001',
        appId: 'app-iso',
        bucketName: 'customer-isolation',
        connectionName: 'good',
        frequency: 'WEEKLY',
      }),
    );
    await driver.runtime.connections.put(good);
    const documentClient = createDynamoDocumentClient({
      region: e.region,
      endpoint: e.dynamoEndpoint,
      credentials: e.credentials,
    });
    // Written behind the CLI's back, as `aws dynamodb put-item` could.
    await documentClient.send(
      new PutCommand({
        TableName: e.tables.connections,
        Item: {
          ...connectionRow({ connectionId: 'conn_bad0000000001', appId: 'app-iso' }),
          frequency: 'WEEKLY',
          bucketName: 'Bad_Bucket',
        },
      }),
    );
    clock.set(new Date('2026-11-04T12:00:00Z'));
    await driver.stage(
      Array.from({ length: 3 }, (_, i) => ({
        app_id: 'app-iso',
        event: { event_uuid: `iso-${i}`, event_name: 'VIEW_RADAR', event_time: 1 },
      })),
    );
    clock.set(new Date('2026-11-09T00:05:00Z'));
    const run = await driver.tick('WEEKLY', clock.now());
    expect(run.tick.windowEnd.toISOString()).toBe('2026-11-09T00:00:00.000Z');
    expect(run.tick.invalidConnections).toEqual(['conn_bad0000000001']);
    expect(run.exports.map((x) => [x.job.connectionId, x.outcome?.status])).toEqual([
      ['conn_good000000001', 'committed'],
    ]);
    const bad = (await driver.runtime.state.listStates()).find(
      (x) => x.connectionId === 'conn_bad0000000001',
    );
    expect(bad?.lastError?.code).toBe('INVALID_CONNECTION');
    expect(bad?.lastError?.message).toContain('bucketName');
    const files = await readBucket(s3, 'customer-isolation');
    const stamp = Date.parse('2026-11-09T00:00:00Z') / 1000;
    expect(files.map((f) => f.key)).toContain(`good/export_day=09-11-2026/event_exports_${stamp}.json.gz`);
  });
});
