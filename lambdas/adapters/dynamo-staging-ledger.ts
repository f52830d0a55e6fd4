/**
 * StagingLedger on the StagingLedger table: one row per Kinesis shard,
 * `pk = "shard#<shardId>"`, replaced whole under an optimistic version check.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_STAGING_RETENTION_DAYS } from '../definitions.ts';
import { type Clock, type ShardCheckpoint, type StagingLedger, systemClock } from '../ports/index.ts';

const DAY_SECONDS = 86_400;

export function shardKey(shardId: string): string {
  return `shard#${shardId}`;
}

export interface DynamoStagingLedgerOptions {
  /** Sets the row's TTL (`expiresAt`); default: the system clock. */
  clock?: Clock;
  /** A row untouched for twice this long is expired by TTL (its shard is long closed). */
  stagingRetentionDays?: number;
}

interface LedgerRow extends ShardCheckpoint {
  pk: string;
  /** Epoch seconds: DynamoDB TTL. */
  expiresAt: number;
}

export class DynamoStagingLedger implements StagingLedger {
  private readonly clock: Clock;
  private readonly ttlSeconds: number;

  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: DynamoStagingLedgerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.ttlSeconds = 2 * (options.stagingRetentionDays ?? DEFAULT_STAGING_RETENTION_DAYS) * DAY_SECONDS;
  }

  async getCheckpoint(shardId: string): Promise<ShardCheckpoint> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: shardKey(shardId) }, ConsistentRead: true }),
    );
    if (!Item) return { shardId, version: 0 };
    const row = Item as LedgerRow;
    const checkpoint: ShardCheckpoint = { shardId: row.shardId ?? shardId, version: Number(row.version) };
    if (row.stagedThrough !== undefined) checkpoint.stagedThrough = row.stagedThrough;
    if (row.pending !== undefined) checkpoint.pending = row.pending;
    if (row.abandoned !== undefined) checkpoint.abandoned = row.abandoned;
    return checkpoint;
  }

  async putCheckpoint(next: Omit<ShardCheckpoint, 'version'>, expectedVersion: number): Promise<boolean> {
    const row: LedgerRow = {
      pk: shardKey(next.shardId),
      shardId: next.shardId,
      stagedThrough: next.stagedThrough,
      pending: next.pending,
      abandoned: next.abandoned,
      version: expectedVersion + 1,
      expiresAt: Math.floor(this.clock.now().getTime() / 1000) + this.ttlSeconds,
    };
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.tableName,
          Item: row,
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: '#version = :expected',
                ExpressionAttributeNames: { '#version': 'version' },
                ExpressionAttributeValues: { ':expected': expectedVersion },
              }),
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // The SDK retries a request whose answer was lost (a timeout, a reset connection). If the
      // first attempt was applied, the retry fails its own condition: the row then holds exactly
      // what this call wrote, which is a success, not a lost race.
      return this.holds(row);
    }
  }

  /** True when the stored row is `row` (same version and content). */
  private async holds(row: LedgerRow): Promise<boolean> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: row.pk }, ConsistentRead: true }),
    );
    if (!Item) return false;
    const stored = Item as LedgerRow;
    return (
      Number(stored.version) === row.version &&
      stored.shardId === row.shardId &&
      stored.stagedThrough === row.stagedThrough &&
      canonical(stored.pending) === canonical(row.pending) &&
      canonical(stored.abandoned) === canonical(row.abandoned)
    );
  }
}

/** JSON with object keys sorted (a DynamoDB map comes back in any key order). */
function canonical(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
