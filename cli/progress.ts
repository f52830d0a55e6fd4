/**
 * One status line for long CLI work (demo, sim, rerun, bench) on a terminal:
 *
 *   demo: 41/96 windows, 2,310 events, 0:18 elapsed, ETA 0:25
 *
 * redrawn in place on stderr (at most every `minIntervalMs`), cleared before other output, and
 * ended with a newline. Off when stderr is not a TTY (CI logs, pipes) or with --json: a script
 * reading the output sees exactly what it saw before.
 */

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressUpdate {
  /** Units of work done so far (windows, ticks, repetitions). */
  done: number;
  total: number;
  /** Events handled so far, when the work counts them. */
  events?: number;
}

export interface Progress {
  /** Record the new counts; redraws the line when due. */
  update(update: ProgressUpdate): void;
  /** Erase the line (before printing something else); the next update draws it again. */
  clear(): void;
  /** Draw the final counts and end the line. */
  finish(): void;
  /** False when nothing is drawn (not a TTY, or --json). */
  readonly enabled: boolean;
}

export interface ProgressOptions {
  /** What is going on, e.g. `demo`. */
  label: string;
  /** Name of the unit counted by `done`/`total` (default `windows`). */
  unit?: string;
  stream: ProgressStream;
  /** --json: machine output, never a progress line. */
  json?: boolean;
  /** Milliseconds, monotonic (elapsed time and ETA). */
  now: () => number;
  /** Least time between two redraws (default 200 ms). */
  minIntervalMs?: number;
}

/** `m:ss`, or `h:mm:ss` from an hour on. */
export function clockDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** The text of the line: counts, elapsed and, when known, the time left (`etaMs`). */
export function progressLine(
  label: string,
  unit: string,
  update: ProgressUpdate,
  elapsedMs: number,
  etaMs?: number,
): string {
  const parts = [`${update.done}/${update.total} ${unit}`];
  if (update.events !== undefined) parts.push(`${update.events.toLocaleString('en-US')} events`);
  parts.push(`${clockDuration(elapsedMs)} elapsed`);
  if (etaMs !== undefined && update.done < update.total) parts.push(`ETA ${clockDuration(etaMs)}`);
  return `${label}: ${parts.join(', ')}`;
}

const ERASE_LINE = '\r\x1b[2K';

const DISABLED: Progress = { update() {}, clear() {}, finish() {}, enabled: false };

export function createProgress(options: ProgressOptions): Progress {
  if (options.json || options.stream.isTTY !== true) return DISABLED;
  const { stream, label, now } = options;
  const unit = options.unit ?? 'windows';
  const minInterval = options.minIntervalMs ?? 200;
  const started = now();
  let last: ProgressUpdate | undefined;
  // The pace is measured from the first update: set-up before it (engines starting) is not work.
  let first: { at: number; done: number } | undefined;
  let drawnAt = Number.NEGATIVE_INFINITY;
  let shown = false;
  /** The counts changed since the line was drawn. */
  let stale = false;
  const draw = () => {
    if (!last) return;
    const at = now();
    const eta =
      first && last.done > first.done
        ? ((at - first.at) / (last.done - first.done)) * (last.total - last.done)
        : undefined;
    stream.write(`${ERASE_LINE}${progressLine(label, unit, last, at - started, eta)}`);
    drawnAt = now();
    shown = true;
    stale = false;
  };
  return {
    enabled: true,
    update(update) {
      last = update;
      first ??= { at: now(), done: update.done };
      stale = true;
      if (!shown || now() - drawnAt >= minInterval || update.done >= update.total) draw();
    },
    clear() {
      if (shown) stream.write(ERASE_LINE);
      shown = false;
    },
    finish() {
      if (stale || !shown) draw();
      if (shown) stream.write('\n');
      shown = false;
      last = undefined;
    },
  };
}
