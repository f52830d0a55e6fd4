import { describe, expect, it } from 'vitest';
import type { Frequency } from '../../lambdas/definitions.ts';
import {
  connectionPrefix,
  dataObjectKey,
  exportDayFolder,
  exportTimestamp,
  manifestObjectKey,
  probeObjectKey,
} from '../../lambdas/domain/object-keys.ts';
import {
  boundariesBetween,
  boundaryAfter,
  boundaryAtOrBefore,
  exportLagMs,
  nextWindow,
  windowEndForTick,
} from '../../lambdas/domain/windows.ts';

const at = (iso: string) => new Date(iso);
const epoch = (iso: string) => Date.parse(iso) / 1000;
const PGP = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBN\n-----END PGP PUBLIC KEY BLOCK-----';

describe('object keys (docs/product.md#output-keys)', () => {
  const plain = { connectionName: 'daily_export' };
  const foldered = { connectionName: 'daily_export', folderPath: 'my_folder/sub_folder' };
  const end = at('2022-05-20T10:15:00Z');
  const ts = epoch('2022-05-20T10:15:00Z');

  it('without a folder path the key starts with the connection name', () => {
    expect(dataObjectKey(plain, end)).toBe(`daily_export/export_day=20-05-2022/event_exports_${ts}.json.gz`);
  });

  it('with a folder path the key starts with "<folderPath>_<connectionName>/"', () => {
    expect(dataObjectKey(foldered, end)).toBe(
      `my_folder/sub_folder_daily_export/export_day=20-05-2022/event_exports_${ts}.json.gz`,
    );
  });

  it('part 1 has no suffix and part n >= 2 is _<n>', () => {
    expect(dataObjectKey(plain, end, 1)).toBe(dataObjectKey(plain, end));
    expect(dataObjectKey(plain, end, 2)).toBe(
      `daily_export/export_day=20-05-2022/event_exports_${ts}_2.json.gz`,
    );
    expect(dataObjectKey(plain, end, 12)).toBe(
      `daily_export/export_day=20-05-2022/event_exports_${ts}_12.json.gz`,
    );
    expect(() => dataObjectKey(plain, end, 0)).toThrow(RangeError);
    expect(() => dataObjectKey(plain, end, 1.5)).toThrow(RangeError);
  });

  it('a PGP key appends .gpg to every data part but not to the manifest', () => {
    const encrypted = { ...foldered, pgpPublicKey: PGP };
    expect(dataObjectKey(encrypted, end)).toBe(
      `my_folder/sub_folder_daily_export/export_day=20-05-2022/event_exports_${ts}.json.gz.gpg`,
    );
    expect(dataObjectKey(encrypted, end, 3)).toBe(
      `my_folder/sub_folder_daily_export/export_day=20-05-2022/event_exports_${ts}_3.json.gz.gpg`,
    );
    expect(manifestObjectKey(encrypted, end)).toBe(
      `my_folder/sub_folder_daily_export/export_day=20-05-2022/event_exports_${ts}.manifest.json`,
    );
  });

  it('the manifest sits beside the data parts', () => {
    expect(manifestObjectKey(plain, end)).toBe(
      `daily_export/export_day=20-05-2022/event_exports_${ts}.manifest.json`,
    );
  });

  it('export_timestamp is the epoch seconds of the window end and export_day its UTC date as DD-MM-YYYY', () => {
    expect(exportTimestamp(at('2022-05-20T10:15:00Z'))).toBe(1653041700);
    expect(exportDayFolder(at('2022-05-20T10:15:00Z'))).toBe('20-05-2022');
    expect(exportDayFolder(at('2023-01-01T00:00:00Z'))).toBe('01-01-2023');
    // 23:59 local elsewhere is still the UTC date.
    expect(exportDayFolder(at('2022-12-31T23:45:00-05:00'))).toBe('01-01-2023');
  });

  it('a retried window rewrites the same keys: they depend only on the connection and the window end', () => {
    const retryEnd = new Date(end.getTime());
    expect(dataObjectKey(foldered, retryEnd, 2)).toBe(dataObjectKey(foldered, end, 2));
    expect(manifestObjectKey(foldered, retryEnd)).toBe(manifestObjectKey(foldered, end));
  });

  it('connectionPrefix is [<folderPath>_]<connectionName>/', () => {
    expect(connectionPrefix(plain)).toBe('daily_export/');
    expect(connectionPrefix(foldered)).toBe('my_folder/sub_folder_daily_export/');
  });
});

interface TickCase {
  frequency: Frequency;
  /** When the schedule fired (a settle delay after the boundary, maybe later). */
  tick: string;
  windowEnd: string;
  key: string;
}

// Keys for connection "c" with no folder: one table for all three frequencies.
const tickCases: TickCase[] = [
  {
    frequency: 'FIFTEEN_MINUTES',
    tick: '2022-05-20T10:05:00Z',
    windowEnd: '2022-05-20T10:00:00Z',
    key: '20-05-2022',
  },
  {
    frequency: 'FIFTEEN_MINUTES',
    tick: '2022-05-20T10:20:00Z',
    windowEnd: '2022-05-20T10:15:00Z',
    key: '20-05-2022',
  },
  {
    frequency: 'FIFTEEN_MINUTES',
    tick: '2022-05-20T10:35:00Z',
    windowEnd: '2022-05-20T10:30:00Z',
    key: '20-05-2022',
  },
  {
    frequency: 'FIFTEEN_MINUTES',
    tick: '2022-05-20T10:50:00Z',
    windowEnd: '2022-05-20T10:45:00Z',
    key: '20-05-2022',
  },
  // Delayed by 9 minutes 59 seconds: still the same window.
  {
    frequency: 'FIFTEEN_MINUTES',
    tick: '2022-05-20T10:59:59Z',
    windowEnd: '2022-05-20T10:45:00Z',
    key: '20-05-2022',
  },
  // Year boundary.
  {
    frequency: 'FIFTEEN_MINUTES',
    tick: '2023-01-01T00:05:00Z',
    windowEnd: '2023-01-01T00:00:00Z',
    key: '01-01-2023',
  },
  { frequency: 'DAILY', tick: '2022-05-20T00:05:00Z', windowEnd: '2022-05-20T00:00:00Z', key: '20-05-2022' },
  // Delayed by hours.
  { frequency: 'DAILY', tick: '2022-05-20T07:42:13Z', windowEnd: '2022-05-20T00:00:00Z', key: '20-05-2022' },
  // Month boundary (and a leap day before it).
  { frequency: 'DAILY', tick: '2024-03-01T00:05:00Z', windowEnd: '2024-03-01T00:00:00Z', key: '01-03-2024' },
  { frequency: 'DAILY', tick: '2024-02-29T00:05:00Z', windowEnd: '2024-02-29T00:00:00Z', key: '29-02-2024' },
  // 2022-05-23 is a Monday.
  { frequency: 'WEEKLY', tick: '2022-05-23T00:05:00Z', windowEnd: '2022-05-23T00:00:00Z', key: '23-05-2022' },
  { frequency: 'WEEKLY', tick: '2022-05-29T23:59:59Z', windowEnd: '2022-05-23T00:00:00Z', key: '23-05-2022' },
  // Monday 2024-01-01: weekly across a year boundary; and Monday 2022-08-01: across a month boundary.
  { frequency: 'WEEKLY', tick: '2024-01-01T00:05:00Z', windowEnd: '2024-01-01T00:00:00Z', key: '01-01-2024' },
  { frequency: 'WEEKLY', tick: '2022-08-03T12:00:00Z', windowEnd: '2022-08-01T00:00:00Z', key: '01-08-2022' },
];

describe('the test-connection probe is never read as data', () => {
  const at = new Date('2026-03-01T00:15:00Z');
  const connections = [
    { connectionName: 'daily-events' },
    { connectionName: 'daily-events', folderPath: 'exports' },
    { connectionName: 'daily-events', folderPath: 'exports', pgpPublicKey: PGP },
  ];
  /** The objects an Athena table with partition projection reads: its `storage.location.template`. */
  const projectedLocation = (prefix: string) => new RegExp(`^${prefix}export_day=\\d{2}-\\d{2}-\\d{4}/`);

  it.each(connections)(
    '%o: under the prefix (the bucket policy grant) but outside every export_day= folder',
    (c) => {
      const key = probeObjectKey(c, at);
      const prefix = connectionPrefix(c);
      expect(key.startsWith(prefix)).toBe(true);
      expect(key).not.toMatch(projectedLocation(prefix));
      expect(dataObjectKey(c, at)).toMatch(projectedLocation(prefix));
      // A Hive-style reader of the whole prefix skips folders whose name starts with `_`.
      expect(key.slice(prefix.length).split('/')[0]).toMatch(/^_/);
    },
  );

  it.each(connections)('%o: matched by no data glob (*.json.gz, *.gz, *.gpg, *.json)', (c) => {
    const key = probeObjectKey(c, at);
    for (const suffix of ['.json.gz', '.gz', '.gpg', '.json']) expect(key.endsWith(suffix)).toBe(false);
    expect(key).toBe(`${connectionPrefix(c)}_connection_test/probe_${exportTimestamp(at)}.probe`);
  });
});

describe('window ends of schedule ticks (docs/product.md#schedules-and-windows)', () => {
  it.each(tickCases)('$frequency tick at $tick exports the window ending $windowEnd', (c) => {
    const windowEnd = windowEndForTick(c.frequency, at(c.tick));
    expect(windowEnd.toISOString()).toBe(at(c.windowEnd).toISOString());
    expect(dataObjectKey({ connectionName: 'c' }, windowEnd)).toBe(
      `c/export_day=${c.key}/event_exports_${epoch(c.windowEnd)}.json.gz`,
    );
  });

  it('fifteen-minute boundaries fall on :00, :15, :30 and :45 only', () => {
    const ends = boundariesBetween('FIFTEEN_MINUTES', at('2022-05-20T09:52:00Z'), at('2022-05-20T11:00:00Z'));
    expect(ends.map((d) => d.toISOString().slice(11, 16))).toEqual([
      '10:00',
      '10:15',
      '10:30',
      '10:45',
      '11:00',
    ]);
  });

  it('daily boundaries are 00:00 UTC and weekly boundaries are Mondays 00:00 UTC', () => {
    const days = boundariesBetween('DAILY', at('2022-05-30T12:00:00Z'), at('2022-06-02T00:00:00Z'));
    expect(days.map((d) => d.toISOString())).toEqual([
      '2022-05-31T00:00:00.000Z',
      '2022-06-01T00:00:00.000Z',
      '2022-06-02T00:00:00.000Z',
    ]);
    const weeks = boundariesBetween('WEEKLY', at('2022-05-20T00:00:00Z'), at('2022-06-10T00:00:00Z'));
    expect(weeks.map((d) => d.toISOString())).toEqual([
      '2022-05-23T00:00:00.000Z',
      '2022-05-30T00:00:00.000Z',
      '2022-06-06T00:00:00.000Z',
    ]);
    for (const w of weeks) expect(w.getUTCDay()).toBe(1);
  });

  it('a time on a boundary is its own boundary; boundaryAfter is strictly later', () => {
    expect(boundaryAtOrBefore('DAILY', at('2022-05-20T00:00:00Z')).toISOString()).toBe(
      '2022-05-20T00:00:00.000Z',
    );
    expect(boundaryAfter('DAILY', at('2022-05-20T00:00:00Z')).toISOString()).toBe('2022-05-21T00:00:00.000Z');
    expect(boundaryAtOrBefore('WEEKLY', at('2022-05-22T23:59:59.999Z')).toISOString()).toBe(
      '2022-05-16T00:00:00.000Z',
    );
  });

  it('the next window runs from the watermark to the window end, and none once the watermark is there', () => {
    const watermark = at('2022-05-20T09:30:00Z');
    const end = at('2022-05-20T10:00:00Z');
    expect(nextWindow(watermark, end)).toEqual({ start: watermark, end });
    expect(nextWindow(end, end)).toBeUndefined();
    expect(nextWindow(at('2022-05-20T10:15:00Z'), end)).toBeUndefined();
  });

  it('after a frequency change the next window starts at the old watermark (no gap, no overlap)', () => {
    const watermark = at('2022-05-20T10:45:00Z'); // last fifteen-minute export
    const dailyEnd = windowEndForTick('DAILY', at('2022-05-21T00:05:00Z'));
    expect(nextWindow(watermark, dailyEnd)).toEqual({ start: watermark, end: at('2022-05-21T00:00:00Z') });
  });

  it('export lag is the distance from the watermark to the latest due boundary', () => {
    expect(exportLagMs('FIFTEEN_MINUTES', at('2022-05-20T10:00:00Z'), at('2022-05-20T10:14:00Z'))).toBe(0);
    expect(exportLagMs('FIFTEEN_MINUTES', at('2022-05-20T10:00:00Z'), at('2022-05-20T10:31:00Z'))).toBe(
      30 * 60_000,
    );
  });
});
