import { describe, expect, it } from 'vitest';
import { clockDuration, createProgress, progressLine } from '../../cli/progress.ts';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { isTTY, writes, write: (text: string) => writes.push(text) };
}

describe('progress line', () => {
  it('on a terminal: redraws one line in place with windows, events, elapsed and ETA, then ends it', () => {
    const stream = fakeStream(true);
    let t = 0;
    const progress = createProgress({ label: 'demo', stream, now: () => t, minIntervalMs: 200 });
    expect(progress.enabled).toBe(true);
    progress.update({ done: 0, total: 4, events: 0 });
    t = 10_000;
    progress.update({ done: 1, total: 4, events: 1200 });
    t = 10_050; // within the interval: not redrawn
    progress.update({ done: 1, total: 4, events: 1300 });
    t = 20_000;
    progress.update({ done: 2, total: 4, events: 2500 });
    progress.clear();
    t = 40_000;
    progress.update({ done: 4, total: 4, events: 5000 });
    progress.finish();
    expect(stream.writes).toEqual([
      '\r\x1b[2Kdemo: 0/4 windows, 0 events, 0:00 elapsed',
      '\r\x1b[2Kdemo: 1/4 windows, 1,200 events, 0:10 elapsed, ETA 0:30',
      '\r\x1b[2Kdemo: 2/4 windows, 2,500 events, 0:20 elapsed, ETA 0:20',
      '\r\x1b[2K',
      '\r\x1b[2Kdemo: 4/4 windows, 5,000 events, 0:40 elapsed',
      '\n',
    ]);
  });

  it('measures the pace (ETA) from the first update, not from the set-up before it', () => {
    const stream = fakeStream(true);
    let t = 0;
    const progress = createProgress({ label: 'sim', stream, now: () => t, minIntervalMs: 0 });
    t = 60_000; // a minute of engines starting
    progress.update({ done: 1, total: 5 });
    t = 70_000;
    progress.update({ done: 2, total: 5 });
    expect(stream.writes.at(-1)).toBe('\r\x1b[2Ksim: 2/5 windows, 1:10 elapsed, ETA 0:30');
  });

  it('not a terminal (pipe, CI log): writes nothing at all', () => {
    const stream = fakeStream(false);
    const progress = createProgress({ label: 'sim', stream, now: () => 0 });
    progress.update({ done: 1, total: 2 });
    progress.clear();
    progress.finish();
    expect(progress.enabled).toBe(false);
    expect(stream.writes).toEqual([]);
  });

  it('with --json on a terminal: writes nothing either', () => {
    const stream = fakeStream(true);
    const progress = createProgress({ label: 'rerun', stream, json: true, now: () => 0 });
    progress.update({ done: 1, total: 1 });
    progress.finish();
    expect(stream.writes).toEqual([]);
  });

  it('formats durations as m:ss and h:mm:ss, and names the unit', () => {
    expect(clockDuration(0)).toBe('0:00');
    expect(clockDuration(65_400)).toBe('1:05');
    expect(clockDuration(3_725_000)).toBe('1:02:05');
    expect(progressLine('bench', 'runs', { done: 3, total: 6 }, 30_000, 30_000)).toBe(
      'bench: 3/6 runs, 0:30 elapsed, ETA 0:30',
    );
    expect(progressLine('bench', 'runs', { done: 0, total: 6 }, 5_000)).toBe('bench: 0/6 runs, 0:05 elapsed');
  });
});
