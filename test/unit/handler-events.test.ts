/** The handlers parse their events with a schema at the boundary, and refuse malformed ones by name. */
import { describe, expect, it } from 'vitest';
import { parseTickEvent } from '../../lambdas/dispatcher/handler.ts';
import { parseExportJob } from '../../lambdas/exporter/handler.ts';

describe('dispatcher tick event', () => {
  it('gives the frequency and the scheduled instant', () => {
    expect(parseTickEvent({ frequency: 'DAILY', scheduledTime: '2026-11-02T00:04:00Z' })).toEqual({
      frequency: 'DAILY',
      scheduledTime: new Date('2026-11-02T00:04:00Z'),
    });
  });

  it('refuses an unknown frequency or a time that is not an instant, naming the field and the value', () => {
    expect(() => parseTickEvent({ frequency: 'HOURLY', scheduledTime: '2026-11-02T00:04:00Z' })).toThrow(
      'tick event frequency must be one of FIFTEEN_MINUTES, DAILY, WEEKLY, got "HOURLY"',
    );
    expect(() => parseTickEvent({ frequency: 'DAILY', scheduledTime: 'soon' })).toThrow(
      'tick event scheduledTime must be an ISO-8601 instant, got "soon"',
    );
    expect(() => parseTickEvent(undefined)).toThrow('tick event frequency must be one of');
  });
});

describe('export job message', () => {
  it('refuses a reason no producer sends, and an unparseable windowEnd', () => {
    expect(() =>
      parseExportJob('{"connectionId":"conn_x","windowEnd":"2026-11-02T10:15:00.000Z","reason":"whim"}'),
    ).toThrow('export job must be');
    expect(() => parseExportJob('{"connectionId":"conn_x","windowEnd":"later"}')).toThrow(
      'export job windowEnd is not an ISO instant',
    );
    expect(
      parseExportJob('{"connectionId":"conn_x","windowEnd":"2026-11-02T10:15:00.000Z","reason":"backfill"}'),
    ).toEqual({ connectionId: 'conn_x', windowEnd: '2026-11-02T10:15:00.000Z', reason: 'backfill' });
  });
});
