import { describe, expect, it } from 'vitest';
import {
  compareSequenceNumbers,
  hourPrefixesForWindow,
  keyInWindow,
  quarantineObjectKey,
  stagedHourPrefix,
  stagedObjectKey,
  stageTimeOfKey,
} from '../../lambdas/domain/staging-layout.ts';

const at = (iso: string) => new Date(iso);
const SHARD = 'shardId-000000000001';
const SEQ = '49590338271490256608559692538361571095921575989136588898';

describe('staging layout', () => {
  it('a staged key lives under its app and the UTC hour of its stage time, and encodes that time', () => {
    const stageTime = at('2022-05-20T10:07:30.123Z');
    const key = stagedObjectKey('acme-shop', stageTime, SHARD, SEQ);
    expect(key.startsWith('events/app=acme-shop/dt=2022-05-20/hr=10/')).toBe(true);
    expect(key.endsWith('.ndjson.gz')).toBe(true);
    expect(stageTimeOfKey(key)?.toISOString()).toBe(stageTime.toISOString());
  });

  it('keys of one hour sort lexically in stage-time order, whatever the shard or sequence', () => {
    const times = [
      '2022-05-20T10:59:59.999Z',
      '2022-05-20T10:00:00.000Z',
      '2022-05-20T10:00:00.001Z',
      '2022-05-20T10:30:00Z',
    ];
    const keys = [
      stagedObjectKey('app', at(times[0] as string), 'shardId-000000000000', '1'),
      stagedObjectKey('app', at(times[1] as string), 'shardId-000000000009', '9'.repeat(56)),
      stagedObjectKey('app', at(times[2] as string), 'shardId-000000000000', '5'),
      stagedObjectKey('app', at(times[3] as string), 'shardId-000000000003', '2'),
    ];
    const sortedByKey = [...keys].sort().map((k) => stageTimeOfKey(k)?.toISOString());
    expect(sortedByKey).toEqual([...times].map((t) => at(t).toISOString()).sort());
  });

  it('an app id with "/" or "=" cannot escape its prefix', () => {
    const key = stagedObjectKey('a/b=c', at('2022-05-20T10:00:00Z'), SHARD, SEQ);
    expect(key.startsWith('events/app=a%2Fb%3Dc/dt=2022-05-20/hr=10/')).toBe(true);
  });

  it('quarantine keys are by day and carry the stage time too', () => {
    const key = quarantineObjectKey(at('2022-05-20T23:59:00Z'), SHARD, SEQ);
    expect(key.startsWith('quarantine/dt=2022-05-20/')).toBe(true);
    expect(stageTimeOfKey(key)?.toISOString()).toBe('2022-05-20T23:59:00.000Z');
  });

  it('hourPrefixesForWindow lists exactly the hours [start, end) touches', () => {
    expect(hourPrefixesForWindow('app', at('2022-05-20T10:00:00Z'), at('2022-05-20T10:15:00Z'))).toEqual([
      'events/app=app/dt=2022-05-20/hr=10/',
    ]);
    // End on an hour boundary: that hour is not listed.
    expect(hourPrefixesForWindow('app', at('2022-05-20T10:45:00Z'), at('2022-05-20T11:00:00Z'))).toEqual([
      'events/app=app/dt=2022-05-20/hr=10/',
    ]);
    expect(hourPrefixesForWindow('app', at('2022-05-20T10:45:00Z'), at('2022-05-20T11:15:00Z'))).toEqual([
      'events/app=app/dt=2022-05-20/hr=10/',
      'events/app=app/dt=2022-05-20/hr=11/',
    ]);
  });

  it('a daily window over midnight lists 24 hours, ending with 23 of the previous day', () => {
    const prefixes = hourPrefixesForWindow('app', at('2022-05-19T00:00:00Z'), at('2022-05-20T00:00:00Z'));
    expect(prefixes).toHaveLength(24);
    expect(prefixes[0]).toBe('events/app=app/dt=2022-05-19/hr=00/');
    expect(prefixes[23]).toBe('events/app=app/dt=2022-05-19/hr=23/');
    expect(new Set(prefixes).size).toBe(24);
    for (let h = 0; h < 24; h++) {
      expect(prefixes[h]).toBe(stagedHourPrefix('app', new Date(Date.UTC(2022, 4, 19, h))));
    }
  });

  it('a window starting mid-hour also lists that first hour; a week lists 168 hours', () => {
    const prefixes = hourPrefixesForWindow('app', at('2022-05-20T10:59:59Z'), at('2022-05-20T12:00:00Z'));
    expect(prefixes).toEqual(['events/app=app/dt=2022-05-20/hr=10/', 'events/app=app/dt=2022-05-20/hr=11/']);
    expect(hourPrefixesForWindow('app', at('2022-05-16T00:00:00Z'), at('2022-05-23T00:00:00Z'))).toHaveLength(
      168,
    );
  });

  it('keyInWindow includes the start and excludes the end', () => {
    const start = at('2022-05-20T10:00:00Z');
    const end = at('2022-05-20T10:15:00Z');
    const keyAt = (ms: number) => stagedObjectKey('app', new Date(ms), SHARD, SEQ);
    expect(keyInWindow(keyAt(start.getTime()), start, end)).toBe(true);
    expect(keyInWindow(keyAt(start.getTime() - 1), start, end)).toBe(false);
    expect(keyInWindow(keyAt(end.getTime() - 1), start, end)).toBe(true);
    expect(keyInWindow(keyAt(end.getTime()), start, end)).toBe(false);
  });

  it('keyInWindow refuses keys that are not staged events objects', () => {
    const start = at('2022-05-20T10:00:00Z');
    const end = at('2022-05-20T11:00:00Z');
    expect(keyInWindow('events/app=app/dt=2022-05-20/hr=10/notes.txt', start, end)).toBe(false);
    expect(stageTimeOfKey('events/app=app/dt=2022-05-20/hr=10/')).toBeUndefined();
  });

  it('compareSequenceNumbers orders 56-digit sequence numbers as integers', () => {
    const a = '49590338271490256608559692538361571095921575989136588898';
    const b = '49590338271490256608559692538361571095921575989136588899';
    const c = '49590338271490256608559692540925702759324208523137515618';
    expect(a).toHaveLength(56);
    expect(compareSequenceNumbers(a, b)).toBeLessThan(0);
    expect(compareSequenceNumbers(c, b)).toBeGreaterThan(0);
    expect(compareSequenceNumbers(a, a)).toBe(0);
    // A shorter number is smaller even where a string comparison says otherwise.
    expect(compareSequenceNumbers('9', '10')).toBeLessThan(0);
    expect(compareSequenceNumbers(c, '9'.repeat(55))).toBeGreaterThan(0);
    // Beyond Number precision: these two are equal as doubles.
    expect(Number(a)).toBe(Number(b));
    expect([c, b, a].sort(compareSequenceNumbers)).toEqual([a, b, c]);
  });
});
