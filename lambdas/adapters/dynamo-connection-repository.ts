/**
 * ConnectionRepository on the Connections table: one row per connection, stored
 * as plain attributes (what an operator writes with `aws dynamodb put-item`).
 *
 * Prefix claims (domain/namespaces.ts) live in the ExportState table, one item per
 * (bucket, prefix): `pk = "bucket#<bucketName>"`, `sk = "prefix#<prefix>"`, with `owner` (the
 * connection whose prefix it is) and `below` (the set of connections with a prefix under it).
 * A put writes the row and its claims in one transaction, each claim conditional, so of two
 * racing puts of colliding rows exactly one succeeds.
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { CONNECTIONS_TABLE, type Frequency } from '../definitions.ts';
import type { Connection } from '../domain/connection.ts';
import {
  NamespaceConflictError,
  type NamespacedConnection,
  type PrefixClaim,
  prefixClaims,
} from '../domain/namespaces.ts';
import { connectionPrefix } from '../domain/object-keys.ts';
import type { ConnectionPage, ConnectionRepository } from '../ports/index.ts';

const BY_FREQUENCY = CONNECTIONS_TABLE.globalSecondaryIndexes[0];
const ID = CONNECTIONS_TABLE.partitionKey.name;
/** Attempts of a put or claim that lost a race it can retry (a concurrent edit of the row, a transaction conflict). */
const MAX_ATTEMPTS = 6;

type TransactItem = NonNullable<
  ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']
>[number];

export function claimKey(claim: Pick<PrefixClaim, 'bucketName' | 'prefix'>): { pk: string; sk: string } {
  return { pk: `bucket#${claim.bucketName}`, sk: `prefix#${claim.prefix}` };
}

const OWN_CONDITION =
  '(attribute_not_exists(#owner) OR #owner = :me) AND (attribute_not_exists(#below) OR (size(#below) = :one AND contains(#below, :meValue)))';

/** The conditional update that takes one claim for `connectionId` (releasing a former role on the same item). */
function claimUpdate(tableName: string, claim: PrefixClaim, connectionId: string): TransactItem {
  const me = new Set([connectionId]);
  if (claim.role === 'own') {
    return {
      Update: {
        TableName: tableName,
        Key: claimKey(claim),
        UpdateExpression: 'SET #owner = :me DELETE #below :meSet',
        ConditionExpression: OWN_CONDITION,
        ExpressionAttributeNames: { '#owner': 'owner', '#below': 'below' },
        ExpressionAttributeValues: { ':me': connectionId, ':meSet': me, ':one': 1, ':meValue': connectionId },
      },
    };
  }
  return {
    Update: {
      TableName: tableName,
      Key: claimKey(claim),
      UpdateExpression: 'REMOVE #owner ADD #below :meSet',
      ConditionExpression: 'attribute_not_exists(#owner) OR #owner = :me',
      ExpressionAttributeNames: { '#owner': 'owner', '#below': 'below' },
      ExpressionAttributeValues: { ':me': connectionId, ':meSet': me },
    },
  };
}

/** The row is still what we read: the condition of the row's put (a concurrent edit retries). */
function rowCondition(old: Record<string, unknown> | undefined): {
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
} {
  if (!old)
    return { ConditionExpression: 'attribute_not_exists(#id)', ExpressionAttributeNames: { '#id': ID } };
  const names: Record<string, string> = { '#id': ID };
  const values: Record<string, unknown> = {};
  const terms = ['attribute_exists(#id)'];
  for (const [index, field] of ['bucketName', 'connectionName', 'folderPath'].entries()) {
    names[`#a${index}`] = field;
    if (old[field] === undefined) terms.push(`attribute_not_exists(#a${index})`);
    else {
      terms.push(`#a${index} = :v${index}`);
      values[`:v${index}`] = old[field];
    }
  }
  return {
    ConditionExpression: terms.join(' AND '),
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
  };
}

/** The namespace fields of a stored row, when it has them (an invalid row may not). */
function namespaceOf(row: Record<string, unknown> | undefined): NamespacedConnection | undefined {
  if (!row) return undefined;
  const { connectionId, bucketName, connectionName, folderPath } = row;
  if (
    typeof connectionId !== 'string' ||
    typeof bucketName !== 'string' ||
    typeof connectionName !== 'string'
  )
    return undefined;
  return {
    connectionId,
    bucketName,
    connectionName,
    folderPath: typeof folderPath === 'string' ? folderPath : undefined,
  };
}

class RetryableRaceError extends Error {
  override readonly name = 'RetryableRaceError';
}

export class DynamoConnectionRepository implements ConnectionRepository {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** The ExportState table, which holds the prefix claims (resolved on first use). */
    private readonly claimsTable: string | (() => string),
    /** Rows per Query page (default: DynamoDB's 1 MB pages). */
    private readonly pageSize?: number,
  ) {}

  private claimsTableName(): string {
    return typeof this.claimsTable === 'string' ? this.claimsTable : this.claimsTable();
  }

  async getRaw(connectionId: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.tableName, Key: { [ID]: connectionId }, ConsistentRead: true }),
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
    await this.withRetries(async () => {
      const old = await this.getRaw(connection.connectionId);
      const claims = prefixClaims(connection);
      const items: TransactItem[] = [
        { Put: { TableName: this.tableName, Item: { ...connection }, ...rowCondition(old) } },
        ...claims.map((claim) => claimUpdate(this.claimsTableName(), claim, connection.connectionId)),
      ];
      await this.transact(items, connection, claims, 1);
      await this.releaseExcept(namespaceOf(old), claims);
    });
  }

  async claimNamespace(connection: Connection): Promise<void> {
    const own = prefixClaims(connection)[0] as PrefixClaim;
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.claimsTableName(), Key: claimKey(own), ConsistentRead: true }),
    );
    // Claims are only ever taken whole (own + ancestors, one transaction): owning the prefix is enough.
    if (Item?.owner === connection.connectionId) return;
    await this.withRetries(async () => {
      const claims = prefixClaims(connection);
      const items = claims.map((claim) =>
        claimUpdate(this.claimsTableName(), claim, connection.connectionId),
      );
      await this.transact(items, connection, claims, 0);
    });
  }

  async delete(connectionId: string): Promise<void> {
    const old = await this.getRaw(connectionId);
    await this.dynamo.send(new DeleteCommand({ TableName: this.tableName, Key: { [ID]: connectionId } }));
    await this.releaseExcept(namespaceOf(old), []);
  }

  private async withRetries(attempt: () => Promise<void>): Promise<void> {
    for (let n = 1; ; n += 1) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof RetryableRaceError) || n >= MAX_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** n * Math.random()));
      }
    }
  }

  /**
   * Run the transaction; a failed claim condition becomes a {@link NamespaceConflictError} naming
   * the holder, anything else that lost a race a {@link RetryableRaceError}.
   */
  private async transact(
    items: TransactItem[],
    connection: NamespacedConnection,
    claims: PrefixClaim[],
    firstClaimIndex: number,
  ): Promise<void> {
    try {
      await this.dynamo.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      for (const [index, reason] of reasons.entries()) {
        if (reason.Code !== 'ConditionalCheckFailed') continue;
        const claim = claims[index - firstClaimIndex];
        if (!claim) throw new RetryableRaceError('the row changed while it was written', { cause: error });
        const holder = await this.holderOf(claim, connection.connectionId);
        if (holder) {
          throw new NamespaceConflictError(
            connection.connectionId,
            connection.bucketName,
            connectionPrefix(connection),
            holder,
            { cause: error },
          );
        }
      }
      throw new RetryableRaceError('a concurrent claim or edit', { cause: error });
    }
  }

  /** Another connection holding `claim`'s item in a way that blocks it, if any. */
  private async holderOf(claim: PrefixClaim, connectionId: string): Promise<string | undefined> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.claimsTableName(), Key: claimKey(claim), ConsistentRead: true }),
    );
    const owner = typeof Item?.owner === 'string' && Item.owner !== connectionId ? Item.owner : undefined;
    if (owner || claim.role === 'below') return owner;
    const below = Item?.below instanceof Set ? [...(Item.below as Set<string>)] : [];
    return below.filter((id) => id !== connectionId).sort()[0];
  }

  /**
   * Release the claims `old` held that `kept` does not: only ours (conditional), best effort
   * after the row is written — a claim left behind only blocks that prefix for others.
   */
  private async releaseExcept(old: NamespacedConnection | undefined, kept: PrefixClaim[]): Promise<void> {
    if (!old) return;
    const keep = new Set(kept.map((c) => JSON.stringify(claimKey(c))));
    for (const claim of prefixClaims(old)) {
      if (keep.has(JSON.stringify(claimKey(claim)))) continue;
      const command =
        claim.role === 'own'
          ? new UpdateCommand({
              TableName: this.claimsTableName(),
              Key: claimKey(claim),
              UpdateExpression: 'REMOVE #owner',
              ConditionExpression: '#owner = :me',
              ExpressionAttributeNames: { '#owner': 'owner' },
              ExpressionAttributeValues: { ':me': old.connectionId },
            })
          : new UpdateCommand({
              TableName: this.claimsTableName(),
              Key: claimKey(claim),
              UpdateExpression: 'DELETE #below :meSet',
              ConditionExpression: 'attribute_exists(#below)',
              ExpressionAttributeNames: { '#below': 'below' },
              ExpressionAttributeValues: { ':meSet': new Set([old.connectionId]) },
            });
      await this.dynamo.send(command).catch((error: unknown) => {
        if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      });
    }
  }
}
