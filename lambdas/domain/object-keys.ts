/**
 * Keys of the objects written to a customer's bucket (docs/product.md#output-keys):
 *   [<folderPath>_]<connectionName>/export_day=<DD-MM-YYYY>/event_exports_<export_timestamp>[_<n>].json.gz[.gpg]
 *   [<folderPath>_]<connectionName>/export_day=<DD-MM-YYYY>/event_exports_<export_timestamp>.manifest.json
 */

export interface KeyedConnection {
  connectionName: string;
  folderPath?: string | undefined;
  pgpPublicKey?: string | undefined;
}

/** Epoch seconds (UTC) of the window end: the `export_timestamp` of every object of the window. */
export function exportTimestamp(windowEnd: Date): number {
  return Math.floor(windowEnd.getTime() / 1000);
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** `DD-MM-YYYY` of the window end (UTC), as used in the `export_day=` folder. */
export function exportDayFolder(windowEnd: Date): string {
  return `${pad2(windowEnd.getUTCDate())}-${pad2(windowEnd.getUTCMonth() + 1)}-${windowEnd.getUTCFullYear()}`;
}

/** The prefix shared by every object of a connection: `[<folderPath>_]<connectionName>/`. */
export function connectionPrefix(connection: KeyedConnection): string {
  const folder = connection.folderPath ? `${connection.folderPath}_` : '';
  return `${folder}${connection.connectionName}/`;
}

function windowStem(connection: KeyedConnection, windowEnd: Date): string {
  return `${connectionPrefix(connection)}export_day=${exportDayFolder(windowEnd)}/event_exports_${exportTimestamp(windowEnd)}`;
}

/** Key of data part `partNumber` (1-based) of a window; part 1 has no `_1` suffix. */
export function dataObjectKey(connection: KeyedConnection, windowEnd: Date, partNumber = 1): string {
  if (!Number.isInteger(partNumber) || partNumber < 1)
    throw new RangeError(`part number must be >= 1, got ${partNumber}`);
  const part = partNumber === 1 ? '' : `_${partNumber}`;
  const gpg = connection.pgpPublicKey ? '.gpg' : '';
  return `${windowStem(connection, windowEnd)}${part}.json.gz${gpg}`;
}

/** Key of the window's manifest, written last beside the data parts (never PGP-encrypted). */
export function manifestObjectKey(connection: KeyedConnection, windowEnd: Date): string {
  return `${windowStem(connection, windowEnd)}.manifest.json`;
}

/**
 * Key of the probe object written by "test connection": `<prefix>_connection_test/probe_<ts>.probe`.
 * It must never be read as data: it is outside every `export_day=` folder (an Athena table with
 * partition projection reads only those), its folder starts with `_` (hidden to Hive-style
 * readers), and it ends neither in `.json.gz` nor `.gpg`, so globs on `*.json.gz` or `*.gpg`
 * (any depth) skip it. It stays under the connection's prefix: that is all the bucket policy grants.
 */
export function probeObjectKey(connection: KeyedConnection, at: Date): string {
  return `${connectionPrefix(connection)}_connection_test/probe_${exportTimestamp(at)}.probe`;
}

/** S3's limit on an object key: 1,024 bytes of UTF-8. */
export const MAX_OBJECT_KEY_BYTES = 1024;

/**
 * The largest data part number the key-length check allows for: at the default part size
 * (512 MiB of uncompressed output per part) 99,999 parts are ~50 TB in one window, far beyond
 * any window this product exports; a 5-digit suffix bounds the key.
 */
export const MAX_PART_NUMBER = 99_999;

const UTF8 = new TextEncoder();

/** The latest window end whose `export_timestamp` has 10 digits (2286-11-20): bounds the key. */
const LATEST_WINDOW_END = new Date(9_999_999_999_000);

/**
 * The longest key (in UTF-8 bytes) a connection can produce: a data part with the largest
 * part number, the manifest or the test-connection probe, whichever is longest.
 */
export function longestObjectKeyBytes(connection: KeyedConnection): number {
  return Math.max(
    ...[
      dataObjectKey(connection, LATEST_WINDOW_END, MAX_PART_NUMBER),
      manifestObjectKey(connection, LATEST_WINDOW_END),
      probeObjectKey(connection, LATEST_WINDOW_END),
    ].map((key) => UTF8.encode(key).length),
  );
}
