/**
 * TickProgressStore on the ExportState table: one row per unfinished tick,
 * `pk = "tick#<frequency>"`, `sk = <window end>`, holding the page token after the
 * last page whose jobs were enqueued. It expires (TTL) two days after it was saved;
 * a tick that completes removes the token.
 */
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Frequency } from '../definitions.ts';
import type { TickProgressStore } from '../ports/index.ts';

const TTL_SECONDS = 2 * 86_400;

export class DynamoTickProgressStore implements TickProgressStore {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private key(frequency: Frequency, windowEnd: Date) {
    return { pk: `tick#${frequency}`, sk: windowEnd.toISOString() };
  }

  async get(frequency: Frequency, windowEnd: Date): Promise<string | undefined> {
    const { Item } = await this.dynamo.send(
      new GetCommand({
        TableName: this.tableName,
        Key: this.key(frequency, windowEnd),
        ConsistentRead: true,
      }),
    );
    return typeof Item?.after === 'string' ? Item.after : undefined;
  }

  async save(frequency: Frequency, windowEnd: Date, after: string, now: Date): Promise<void> {
    await this.dynamo.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(frequency, windowEnd),
        UpdateExpression: 'SET #after = :after, #savedAt = :savedAt, #expiresAt = :expiresAt',
        ExpressionAttributeNames: { '#after': 'after', '#savedAt': 'savedAt', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: {
          ':after': after,
          ':savedAt': now.toISOString(),
          ':expiresAt': Math.floor(now.getTime() / 1000) + TTL_SECONDS,
        },
      }),
    );
  }

  async clear(frequency: Frequency, windowEnd: Date): Promise<void> {
    // UpdateItem (not DeleteItem): the dispatcher's role already may update this table.
    await this.dynamo
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(frequency, windowEnd),
          UpdateExpression: 'REMOVE #after',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#after': 'after' },
        }),
      )
      .catch((error: unknown) => {
        // Nothing saved for this tick: nothing to clear.
        if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      });
  }
}
