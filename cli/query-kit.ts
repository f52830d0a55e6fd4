/**
 * What a customer needs to query a connection's files where they land: an Athena (Glue) table and
 * the equivalent DuckDB query, both reading only the data files of the `export_day=DD-MM-YYYY/`
 * folders (not manifests, not connection-test probes), with the folder's `export_day` as the
 * partition and the record's own `export_day` field left out. Why: docs/reading-exports.md.
 */
import type { Connection } from '../lambdas/domain/connection.ts';
import { connectionPrefix } from '../lambdas/domain/object-keys.ts';

/** Glob of a connection's data files under its location (manifests, probes and .gpg files excluded). */
export const DATA_FILES_GLOB = 'export_day=*/event_exports_*.json.gz';
export const MANIFESTS_GLOB = 'export_day=*/event_exports_*.manifest.json';

/** `s3://bucket/[folder_]name/`: where the connection's objects are. */
export function connectionLocation(connection: Connection): string {
  return `s3://${connection.bucketName}/${connectionPrefix(connection)}`;
}

/** A Glue/Athena identifier from a connection name: lower case, letters, digits and `_`. */
export function tableNameOf(connection: Connection): string {
  const name = connection.connectionName.toLowerCase().replace(/[^a-z0-9_]+/g, '_');
  return /^[a-z_]/.test(name) ? name : `events_${name}`;
}

/** Glue names: 1-255 of lower-case letters, digits and `_`; anything else is refused with the rule. */
export function checkGlueName(value: string, flag: string): string {
  if (!/^[a-z0-9_]{1,255}$/.test(value))
    throw new RangeError(`${flag} "${value}" must be 1-255 lower-case letters, digits or "_" (a Glue name)`);
  return value;
}

export interface AthenaTableOptions {
  database: string;
  table: string;
}

/**
 * `CREATE EXTERNAL TABLE` (OpenX JSON SerDe, partition projection on `export_day` in the key's
 * `dd-MM-yyyy` format) and a view of the data files only: the SerDe would also read each
 * manifest in the same folder (as empty rows), and Athena cannot select files by name in a table.
 */
export function athenaStatements(connection: Connection, options: AthenaTableOptions): string {
  const location = connectionLocation(connection);
  const table = `\`${options.database}\`.\`${options.table}\``;
  return `-- Athena (Glue): ${connection.connectionName} (${connection.connectionId}), ${location}
-- Run both statements in the Athena query editor. Query the view: it reads the data files only.
CREATE EXTERNAL TABLE IF NOT EXISTS ${table} (
  app_name string,
  export_hour string,
  db_name string,
  event struct<
    uid: string,
    event_type: string,
    event_code: string,
    event_name: string,
    event_source: string,
    event_uuid: string,
    event_time: bigint,
    email_id: string,
    user_attributes: string,
    device_attributes: string,
    event_attributes: string
  >
)
PARTITIONED BY (export_day string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${location}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.export_day.type' = 'date',
  'projection.export_day.format' = 'dd-MM-yyyy',
  'projection.export_day.range' = '01-01-2020,NOW',
  'projection.export_day.interval' = '1',
  'projection.export_day.interval.unit' = 'DAYS',
  'storage.location.template' = '${location}export_day=\${export_day}/'
);

CREATE OR REPLACE VIEW \`${options.database}\`.\`${options.table}_records\` AS
SELECT * FROM ${table}
WHERE "$path" LIKE '%/event_exports_%.json.gz';

-- e.g.: SELECT event.event_name, count(*) FROM \`${options.database}\`.\`${options.table}_records\`
--       WHERE export_day = '22-11-2026' GROUP BY 1;
`;
}

/** SQL string literal. */
function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export interface DuckDbOptions {
  /** Where the connection's objects are: its S3 location (default) or a local copy of it. */
  location?: string;
  /** Add each record's file (the `filename` column): where a record came from. */
  filename?: boolean;
}

/** The `read_json` call over the data files, with `export_day` from the folder. */
export function duckdbSource(connection: Connection, options: DuckDbOptions = {}): string {
  const location = withSlash(options.location ?? connectionLocation(connection));
  return `read_json(${literal(`${location}${DATA_FILES_GLOB}`)},
    format = 'newline_delimited', union_by_name = true,${options.filename ? ' filename = true,' : ''}
    hive_partitioning = true, hive_types = {'export_day': VARCHAR})`;
}

/** A DuckDB query of every record with the same columns as the Athena view, plus the day as a DATE. */
export function duckdbQuery(connection: Connection, options: DuckDbOptions = {}): string {
  return `SELECT app_name, export_hour, db_name, event, export_day,
       strptime(export_day, '%d-%m-%Y')::DATE AS export_date${options.filename ? ', filename' : ''}
FROM ${duckdbSource(connection, options)}`;
}

/** The manifests of the connection, one row per window (sequence, window, files, totals). */
export function duckdbManifestsQuery(connection: Connection, options: DuckDbOptions = {}): string {
  const location = withSlash(options.location ?? connectionLocation(connection));
  return `SELECT sequence, windowStart, windowEnd, totalRecords, files
FROM read_json(${literal(`${location}${MANIFESTS_GLOB}`)}, format = 'auto')
ORDER BY sequence`;
}

/**
 * Every file a manifest lists whose records read back differ (missing file: `read` is NULL), and
 * every sequence number missing before the newest manifest. No row: complete.
 */
export function duckdbCompletenessQuery(connection: Connection, options: DuckDbOptions = {}): string {
  const location = withSlash(options.location ?? connectionLocation(connection));
  return `WITH manifests AS (
  SELECT * FROM read_json(${literal(`${location}${MANIFESTS_GLOB}`)}, format = 'auto')
), listed AS (
  SELECT sequence, unnest(files, recursive := true) FROM manifests
), read AS (
  SELECT filename, count(*) AS records
  FROM read_json(${literal(`${location}${DATA_FILES_GLOB}`)},
    format = 'newline_delimited', union_by_name = true, filename = true)
  GROUP BY filename
)
SELECT 'file' AS problem, listed.sequence, listed.key, listed.records AS expected, read.records AS read
FROM listed LEFT JOIN read ON ends_with(read.filename, '/' || listed.key)
WHERE read.records IS DISTINCT FROM listed.records
UNION ALL
SELECT 'missing window', m.sequence + 1, NULL, NULL, NULL
FROM manifests m
WHERE m.sequence < (SELECT max(sequence) FROM manifests)
  AND m.sequence + 1 NOT IN (SELECT sequence FROM manifests)
ORDER BY 2`;
}

function withSlash(location: string): string {
  return location.endsWith('/') ? location : `${location}/`;
}

/** The DuckDB part of `connections athena`: set-up for S3, the query, and the manifests query. */
export function duckdbStatements(connection: Connection): string {
  return `-- DuckDB: the same records straight from S3 (credentials from the AWS default chain)
INSTALL httpfs; LOAD httpfs; INSTALL aws; LOAD aws;
CREATE OR REPLACE SECRET export_s3 (TYPE s3, PROVIDER credential_chain, REGION ${literal(connection.bucketRegion)});
CREATE OR REPLACE VIEW ${tableNameOf(connection)} AS
${duckdbQuery(connection)};

-- The windows, from their manifests (sequence numbers 1, 2, 3, ... one per window)
${duckdbManifestsQuery(connection)};

-- Completeness: no row = every listed file is there with its record count, no window missing
${duckdbCompletenessQuery(connection)};
`;
}
