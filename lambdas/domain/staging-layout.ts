/**
 * Layout of the staging bucket (docs/staging-layout.md).
 *
 *   events/app=<appId>/dt=<YYYY-MM-DD>/hr=<HH>/<T>-<shardId>-<firstSequence>.ndjson.gz
 *   quarantine/dt=<YYYY-MM-DD>/<T>-<shardId>-<firstSequence>.ndjson.gz
 *
 * `T` is the stage time in epoch milliseconds, zero-padded to 13 digits, so a
 * lexical listing of one hour's prefix is in stage-time order and a window
 * [start, end) is found by listing the hours it touches and filtering on `T`
 * from the key alone. Every line of an events object is one event as received
 * (JSON); every event of one object shares the object's `T`.
 */

const HOUR_MS = 3_600_000;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function dayAndHour(at: Date): { dt: string; hr: string } {
  const iso = at.toISOString();
  return { dt: iso.slice(0, 10), hr: iso.slice(11, 13) };
}

/** Key-safe form of a Kinesis shard id (`shardId-000000000001` is already safe; encode anything else). */
function safeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[-]/g, '%2D');
}

export function stagedEventsPrefix(appId: string): string {
  return `events/app=${encodeURIComponent(appId)}/`;
}

/** Prefix of one hour of one app: the unit listed when looking for a window's objects. */
export function stagedHourPrefix(appId: string, hourStart: Date): string {
  const { dt, hr } = dayAndHour(hourStart);
  return `${stagedEventsPrefix(appId)}dt=${dt}/hr=${hr}/`;
}

export function stagedObjectKey(
  appId: string,
  stageTime: Date,
  shardId: string,
  firstSequence: string,
): string {
  return `${stagedHourPrefix(appId, stageTime)}${pad(stageTime.getTime(), 13)}-${safeSegment(shardId)}-${firstSequence}.ndjson.gz`;
}

export function quarantineObjectKey(stageTime: Date, shardId: string, firstSequence: string): string {
  const { dt } = dayAndHour(stageTime);
  return `quarantine/dt=${dt}/${pad(stageTime.getTime(), 13)}-${safeSegment(shardId)}-${firstSequence}.ndjson.gz`;
}

/** The stage time encoded in a staged object's key, or undefined when the key is not a staged events object. */
export function stageTimeOfKey(key: string): Date | undefined {
  const match = /\/(\d{13})-[^/]+\.ndjson\.gz$/.exec(key);
  return match ? new Date(Number(match[1])) : undefined;
}

/**
 * The order of staged objects: by stage time, then by key. `StagingStore.listWindow` returns a
 * window's objects in this order, the exporter reads them in it (its cursor counts in it), and
 * consecutive windows of one app follow each other in it — which is what lets connections of
 * one app share one read of each object (usecases/shared-staged-reads.ts).
 */
export function compareStagedObjects(
  a: { key: string; stageTime: Date },
  b: { key: string; stageTime: Date },
): number {
  return a.stageTime.getTime() - b.stageTime.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** The hour prefixes to list for a window [start, end) of one app. */
export function hourPrefixesForWindow(appId: string, start: Date, end: Date): string[] {
  const prefixes: string[] = [];
  const first = Math.floor(start.getTime() / HOUR_MS) * HOUR_MS;
  for (let h = first; h < end.getTime(); h += HOUR_MS) prefixes.push(stagedHourPrefix(appId, new Date(h)));
  return prefixes;
}

/** True when a staged object's key belongs to the window [start, end). */
export function keyInWindow(key: string, start: Date, end: Date): boolean {
  const t = stageTimeOfKey(key)?.getTime();
  return t !== undefined && t >= start.getTime() && t < end.getTime();
}

/** Kinesis sequence numbers are decimal strings of up to 128 bits: compare them as integers. */
export function compareSequenceNumbers(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
