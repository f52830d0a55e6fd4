/**
 * ConnectionRepository on the Connections table: one row per connection, stored
 * as plain attributes (what an operator writes with `aws dynamodb put-item`).
 */
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { CONNECTIONS_TABLE, type Frequency } from '../definitions.ts';
import type { Connection } from '../domain/connection.ts';
import type { ConnectionPage, ConnectionRepository } from '../ports/index.ts';

const BY_FREQUENCY = CONNECTIONS_TABLE.globalSecondaryIndexes[0];

export class DynamoConnectionRepository implements ConnectionRepository {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** Rows per Query page (default: DynamoDB's 1 MB pages). */
    private readonly pageSize?: number,
  ) {}

  async getRaw(connectionId: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.dynamo.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [CONNECTIONS_TABLE.partitionKey.name]: connectionId },
        ConsistentRead: true,
      }),
    );
    return Item;
  }

  async listRawByFrequency(frequency: Frequency): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    let after: string | undefined;
    do {
      const page = await this.listRawByFrequencyPage(frequency, after);
      rows.push(...page.rows);
      after = page.next;
    } while (after);
    return rows;
  }

  /** One Query page of the byFrequency index (up to 1 MB); the token is its LastEvaluatedKey as JSON. */
  async listRawByFrequencyPage(frequency: Frequency, after?: string): Promise<ConnectionPage> {
    let startKey: Record<string, unknown> | undefined;
    if (after !== undefined) {
      try {
        startKey = JSON.parse(after) as Record<string, unknown>;
      } catch (error) {
        throw new Error(`connection page token is not the JSON a previous page returned: ${after}`, {
          cause: error,
        });
      }
    }
    const page = await this.dynamo.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: BY_FREQUENCY.indexName,
        KeyConditionExpression: '#frequency = :frequency',
        ExpressionAttributeNames: { '#frequency': BY_FREQUENCY.partitionKey.name },
        ExpressionAttributeValues: { ':frequency': frequency },
        ...(this.pageSize ? { Limit: this.pageSize } : {}),
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    const next = page.LastEvaluatedKey ? JSON.stringify(page.LastEvaluatedKey) : undefined;
    return { rows: page.Items ?? [], ...(next ? { next } : {}) };
  }

  async listRaw(): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.dynamo.send(
        new ScanCommand({
          TableName: this.tableName,
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      rows.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return rows;
  }

  async put(connection: Connection): Promise<void> {
    await this.dynamo.send(new PutCommand({ TableName: this.tableName, Item: { ...connection } }));
  }

  async delete(connectionId: string): Promise<void> {
    await this.dynamo.send(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { [CONNECTIONS_TABLE.partitionKey.name]: connectionId },
      }),
    );
  }
}
