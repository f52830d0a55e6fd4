/**
 * The exported record (docs/product.md#records): exactly these top-level keys, in this order:
 *   {"app_name", "export_hour", "db_name", "event", "export_day"}
 * `event` is the event as received (its keys in received order) with
 * user_attributes / device_attributes reduced to the selected names.
 */
import type { Connection } from './connection.ts';
import { DomainError } from './errors.ts';

export const ALWAYS_KEPT_USER_ATTRIBUTE = 'moengage_user_id';
export const ALWAYS_KEPT_DEVICE_ATTRIBUTE = 'moengage_device_id';

/** A received event: at least these fields, anything else passes through untouched. */
export interface ReceivedEvent {
  event_uuid: string;
  event_name: string;
  event_time: number;
  event_code?: string;
  user_attributes?: Record<string, unknown>;
  device_attributes?: Record<string, unknown>;
  [key: string]: unknown;
}

export class CorruptStagedLineError extends DomainError {
  override readonly name = 'CorruptStagedLineError';
  constructor(
    readonly stagedKey: string,
    readonly lineNumber: number,
    readonly reason: string,
  ) {
    super(
      `staged object ${stagedKey} line ${lineNumber} is not a valid event (${reason}); ` +
        'the window was not committed. Move the object to quarantine/ or repair the line, then the next tick retries.',
    );
  }
}

/** Why an incoming event is refused at staging (kept in quarantine with this reason), or undefined if valid. */
export function eventDefect(event: unknown): string | undefined {
  if (event === null || typeof event !== 'object' || Array.isArray(event))
    return 'event is not a JSON object';
  const e = event as Record<string, unknown>;
  if (typeof e.event_uuid !== 'string' || e.event_uuid.length === 0)
    return 'event.event_uuid is missing or not a string';
  if (typeof e.event_name !== 'string' || e.event_name.length === 0)
    return 'event.event_name is missing or not a string';
  if (typeof e.event_time !== 'number' || !Number.isFinite(e.event_time))
    return 'event.event_time is missing or not a number';
  return undefined;
}

/** The fixed per-window parts of every record, computed once per window. */
export interface RecordFrame {
  /** `{"app_name":...,"export_hour":...,"db_name":...,"event":` */
  head: string;
  /** `,"export_day":"YYYY-MM-DD"}` */
  tail: string;
}

export function recordFrame(
  connection: Pick<Connection, 'appName' | 'dbName'>,
  windowEnd: Date,
): RecordFrame {
  const exportHour = String(windowEnd.getUTCHours());
  const exportDay = windowEnd.toISOString().slice(0, 10);
  return {
    head: `{"app_name":${JSON.stringify(connection.appName)},"export_hour":${JSON.stringify(exportHour)},"db_name":${JSON.stringify(connection.dbName)},"event":`,
    tail: `,"export_day":${JSON.stringify(exportDay)}}`,
  };
}

export type Selection = Pick<Connection, 'events' | 'userAttributes' | 'deviceAttributes'>;

/** True when a staged line can be copied into the record without parsing it. */
export function isPassThrough(selection: Selection): boolean {
  return (
    selection.events.mode === 'ALL' &&
    selection.userAttributes === 'ALL' &&
    selection.deviceAttributes === 'ALL'
  );
}

/** Compiled selection/projection for one window: decide and reshape one parsed event. */
export interface EventShaper {
  /** The event to write (possibly the same object), or undefined when it is not selected. */
  shape(event: ReceivedEvent): ReceivedEvent | undefined;
}

function projectAttributes(
  attributes: unknown,
  keep: 'ALL' | readonly string[],
  alwaysKept: string,
): unknown {
  if (keep === 'ALL' || attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
    return attributes;
  }
  const source = attributes as Record<string, unknown>;
  const wanted = new Set(keep);
  wanted.add(alwaysKept);
  const out: Record<string, unknown> = {};
  // Keep the received order of the kept keys.
  for (const key of Object.keys(source)) if (wanted.has(key)) out[key] = source[key];
  return out;
}

export function compileShaper(selection: Selection): EventShaper {
  const names = selection.events.mode === 'SELECTED' ? new Set(selection.events.names) : undefined;
  const { userAttributes, deviceAttributes } = selection;
  return {
    shape(event) {
      if (
        names &&
        !names.has(event.event_name) &&
        !(event.event_code !== undefined && names.has(event.event_code))
      ) {
        return undefined;
      }
      if (userAttributes === 'ALL' && deviceAttributes === 'ALL') return event;
      const out: ReceivedEvent = { ...event };
      if ('user_attributes' in event) {
        out.user_attributes = projectAttributes(
          event.user_attributes,
          userAttributes,
          ALWAYS_KEPT_USER_ATTRIBUTE,
        ) as ReceivedEvent['user_attributes'];
      }
      if ('device_attributes' in event) {
        out.device_attributes = projectAttributes(
          event.device_attributes,
          deviceAttributes,
          ALWAYS_KEPT_DEVICE_ATTRIBUTE,
        ) as ReceivedEvent['device_attributes'];
      }
      return out;
    },
  };
}

/** One output line (without the newline) for an already-serialized event. */
export function recordLine(frame: RecordFrame, eventJson: string): string {
  return frame.head + eventJson + frame.tail;
}

/** Build the full record object (for tests and tools; the exporter writes {@link recordLine}). */
export function buildRecord(
  connection: Pick<Connection, 'appName' | 'dbName'>,
  windowEnd: Date,
  event: ReceivedEvent,
): Record<string, unknown> {
  return {
    app_name: connection.appName,
    export_hour: String(windowEnd.getUTCHours()),
    db_name: connection.dbName,
    event,
    export_day: windowEnd.toISOString().slice(0, 10),
  };
}
