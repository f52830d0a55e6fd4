/**
 * Where a connection starts exporting: its first window begins at `startFrom` when set, else at
 * `createdAt`, and only the first export reads them (it stores the watermark; from then on the
 * watermark alone decides). So a row is refused when:
 *
 * - `startFrom` changes after the connection started exporting: the exporter would ignore the
 *   edit. Re-exporting from an earlier instant is what `backfill` does.
 * - the start of a connection that has not exported yet (`startFrom`, else `createdAt`) is older
 *   than the staging retention: staged events before `now - retention` are deleted, so the first
 *   window would claim to cover events it can no longer read.
 */
import type { Connection, FieldError } from './connection.ts';

const DAY_MS = 86_400_000;

export interface StartCheck {
  /** The row being written. */
  incoming: Pick<Connection, 'connectionId' | 'startFrom' | 'createdAt'>;
  /** The row stored now, if any (raw). */
  stored?: Record<string, unknown> | undefined;
  /** The connection's watermark, when it has started exporting. */
  watermark?: Date | undefined;
  now: Date;
  stagingRetentionDays: number;
}

/** The instant of an optional ISO text; undefined when absent or not a date. */
function instant(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** True when the check needs the connection's export state (the caller reads it only then). */
export function startCheckNeedsState(check: Omit<StartCheck, 'watermark'>): boolean {
  const { incoming, stored, now, stagingRetentionDays } = check;
  const earliest = now.getTime() - stagingRetentionDays * DAY_MS;
  const start = instant(incoming.startFrom) ?? (instant(incoming.createdAt) as number);
  return instant(incoming.startFrom) !== instant(stored?.['startFrom']) || start < earliest;
}

export function startProblems(check: StartCheck): FieldError[] {
  const { incoming, stored, watermark, now, stagingRetentionDays } = check;
  const id = incoming.connectionId;
  const backfillCommand = (from: string) =>
    `s3-event-export connections pause ${id}; s3-event-export backfill --connection ${id} --from ${from}; s3-event-export connections resume ${id}`;
  const earliest = new Date(now.getTime() - stagingRetentionDays * DAY_MS);

  if (watermark) {
    if (instant(incoming.startFrom) === instant(stored?.['startFrom'])) return [];
    const keep =
      typeof stored?.['startFrom'] === 'string'
        ? `keep startFrom ${stored['startFrom']}`
        : 'leave startFrom out';
    return [
      {
        field: 'startFrom',
        message:
          `cannot be changed: the connection has exported up to ${watermark.toISOString()}, and startFrom is only read ` +
          `before its first export. ${keep} in the row; to export again from an earlier instant run ` +
          `\`${backfillCommand(incoming.startFrom ?? '<ISO instant>')}\``,
      },
    ];
  }

  const retention = `the staging retention (${stagingRetentionDays} days) keeps events from ${earliest.toISOString()} only`;
  if (incoming.startFrom !== undefined) {
    if ((instant(incoming.startFrom) as number) >= earliest.getTime()) return [];
    return [
      {
        field: 'startFrom',
        message: `${incoming.startFrom} is too early: ${retention}; set startFrom at or after ${earliest.toISOString()}`,
      },
    ];
  }
  if ((instant(incoming.createdAt) as number) >= earliest.getTime()) return [];
  return [
    {
      field: 'createdAt',
      message:
        `${incoming.createdAt} is too early for a connection that has not exported yet (its first window starts there): ` +
        `${retention}. Set createdAt to now, then export what is kept with \`${backfillCommand(earliest.toISOString())}\`, ` +
        `or set startFrom at or after ${earliest.toISOString()}`,
    },
  ];
}
