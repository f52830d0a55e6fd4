/**
 * One definition of each fact shared by the CDK stack, the Lambdas, the CLI and
 * the local-engine bootstrap: table names and keys, environment variable names,
 * schedule timing. Nothing here imports an SDK.
 */

/**
 * A setting of the deployment that cannot be used: an environment variable of the Lambdas
 * (lambdas/config.ts) or a CDK context value (lib/config.ts). The message names the setting and
 * its valid form. Defined here, beside the settings' names, so that lib/ need not import lambdas/.
 */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

export const FREQUENCIES = ['FIFTEEN_MINUTES', 'DAILY', 'WEEKLY'] as const;
export type Frequency = (typeof FREQUENCIES)[number];

/**
 * Minutes after a window boundary at which its schedule fires (see docs/exactly-once.md). At least
 * the compaction delay of the window's last staging slot; 4 keeps a 15-minute connection's events
 * within 20 minutes of their arrival.
 */
export const DEFAULT_SETTLE_DELAY_MINUTES = 4;

/** Upper bound of one stager invocation (its Lambda timeout). Must stay well below the settle delay. */
export const STAGER_TIMEOUT_SECONDS = 60;

/**
 * Staged events are compacted per slot of stage time: one object (all apps, grouped by app) and
 * one index per slot (docs/platform-scale.md). Every window boundary is a slot boundary.
 */
export const STAGING_SLOT_MINUTES = 15;

/** Margin for clock skew between the stager and the compactor. */
export const CLOCK_SKEW_MARGIN_SECONDS = 60;

/**
 * A slot is compacted this long after its end: every stager invocation that could still write a
 * segment with a stage time inside it has ended by then (docs/exactly-once.md §2).
 */
export const COMPACTION_DELAY_SECONDS = STAGER_TIMEOUT_SECONDS + CLOCK_SKEW_MARGIN_SECONDS;

/** Kinesis event source batching: as many records as one invocation payload (6 MB) takes. */
export const STAGER_BATCH_SIZE = 10_000;
export const STAGER_MAX_BATCHING_WINDOW_SECONDS = 5;

/** Staged data is kept this long; backfills cannot start earlier than this. */
export const DEFAULT_STAGING_RETENTION_DAYS = 14;

export interface KeyAttribute {
  name: string;
  type: 'S' | 'N';
}

export interface TableDefinition {
  /** Logical id in CDK and the table name used locally. */
  logicalName: string;
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  timeToLiveAttribute?: string;
  globalSecondaryIndexes?: { indexName: string; partitionKey: KeyAttribute; sortKey?: KeyAttribute }[];
}

/** Operator-owned configuration: one row per export connection (docs/product.md#connections). */
export const CONNECTIONS_TABLE = {
  logicalName: 'Connections',
  partitionKey: { name: 'connectionId', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: 'byFrequency',
      partitionKey: { name: 'frequency', type: 'S' },
      sortKey: { name: 'connectionId', type: 'S' },
    },
  ],
} as const satisfies TableDefinition;

/**
 * Export state: the watermark/lease row of each connection (sk = STATE), its
 * window history (sk = WINDOW#<windowEnd>) and monthly usage (sk = USAGE#YYYY-MM).
 */
export const EXPORT_STATE_TABLE = {
  logicalName: 'ExportState',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
} as const satisfies TableDefinition;

/** Stager bookkeeping: one checkpoint row per Kinesis shard, fixing stage times of in-flight batches. */
export const STAGING_LEDGER_TABLE = {
  logicalName: 'StagingLedger',
  partitionKey: { name: 'pk', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
} as const satisfies TableDefinition;

export const TABLES = [CONNECTIONS_TABLE, EXPORT_STATE_TABLE, STAGING_LEDGER_TABLE] as const;

/** Environment variables read by the Lambdas (set by the stack, by the CLI, and by the local bootstrap). */
export const ENV = {
  connectionsTable: 'CONNECTIONS_TABLE',
  exportStateTable: 'EXPORT_STATE_TABLE',
  stagingLedgerTable: 'STAGING_LEDGER_TABLE',
  stagingBucket: 'STAGING_BUCKET',
  jobQueueUrl: 'JOB_QUEUE_URL',
  settleDelayMinutes: 'SETTLE_DELAY_MINUTES',
  stagingRetentionDays: 'STAGING_RETENTION_DAYS',
  kmsKeyAllowlist: 'KMS_KEY_ALLOWLIST',
  exporterRoleArn: 'EXPORTER_ROLE_ARN',
  partSizeBytes: 'PART_SIZE_BYTES',
} as const;

/** Tag put on the exporter's STS session so customers' bucket policies can pin a connection id. */
export const CONNECTION_SESSION_TAG = 'export-connection-id';

export const METRIC_NAMESPACE = 'S3EventExport';
