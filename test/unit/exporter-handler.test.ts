import { describe, expect, it } from 'vitest';
import { parseExportJob } from '../../lambdas/exporter/handler.ts';
import { retryLater } from '../../lambdas/usecases/export-job.ts';

describe('exporter handler decisions', () => {
  it('a job whose lease is held by another exporter is handed back to SQS for a later retry', () => {
    expect(retryLater({ status: 'lease-held' })).toBe(true);
  });

  it('jobs that finished, were refused or found nothing to do are acknowledged', () => {
    expect(retryLater({ status: 'up-to-date' })).toBe(false);
    expect(retryLater({ status: 'committed', windows: [] })).toBe(false);
    expect(retryLater({ status: 'missing' })).toBe(false);
    expect(
      retryLater({
        status: 'refused',
        diagnosis: { code: 'INVALID_CONNECTION', message: 'x', at: '2026-01-01T00:00:00Z' },
      }),
    ).toBe(false);
  });

  it('a group message carries connectionIds; a message with both shapes, neither, or an empty group is refused', () => {
    expect(
      parseExportJob('{"connectionIds":["conn_a","conn_b"],"windowEnd":"2026-11-02T10:15:00.000Z"}'),
    ).toEqual({
      connectionIds: ['conn_a', 'conn_b'],
      windowEnd: '2026-11-02T10:15:00.000Z',
      reason: 'schedule',
    });
    for (const body of [
      '{"connectionId":"conn_a","connectionIds":["conn_b"],"windowEnd":"2026-11-02T10:15:00.000Z"}',
      '{"connectionIds":[],"windowEnd":"2026-11-02T10:15:00.000Z"}',
      '{"connectionIds":["conn_a",7],"windowEnd":"2026-11-02T10:15:00.000Z"}',
      '{"windowEnd":"2026-11-02T10:15:00.000Z"}',
    ]) {
      expect(() => parseExportJob(body), body).toThrow('export job must be');
    }
  });

  it('a batch message carries groups of connection ids; an empty batch, an empty group or a non-ISO windowEnd is refused', () => {
    expect(
      parseExportJob(
        '{"groups":[["conn_a","conn_b"],["conn_c"]],"windowEnd":"2026-11-02T10:15:00.000Z","reason":"continuation"}',
      ),
    ).toEqual({
      groups: [['conn_a', 'conn_b'], ['conn_c']],
      windowEnd: '2026-11-02T10:15:00.000Z',
      reason: 'continuation',
    });
    for (const body of [
      '{"groups":[],"windowEnd":"2026-11-02T10:15:00.000Z"}',
      '{"groups":[[]],"windowEnd":"2026-11-02T10:15:00.000Z"}',
      '{"groups":[["conn_a"]],"connectionId":"conn_a","windowEnd":"2026-11-02T10:15:00.000Z"}',
      'not json',
    ]) {
      expect(() => parseExportJob(body), body).toThrow('export job must be');
    }
    expect(() => parseExportJob('{"groups":[["conn_a"]],"windowEnd":"soon"}')).toThrow(
      'windowEnd is not an ISO instant',
    );
  });

  it('a malformed job message is refused with the expected shape in the error', () => {
    expect(() => parseExportJob('{"connectionId": 1}')).toThrow('export job must be');
    expect(parseExportJob('{"connectionId":"conn_x","windowEnd":"2026-11-02T10:15:00.000Z"}').reason).toBe(
      'schedule',
    );
  });
});
