/**
 * ExportStateStore on the ExportState table. Per connection (`pk = "conn#<id>"`):
 *
 *   sk = STATE                 watermark, sequence, pending window, lease, cursor, last error
 *   sk = WINDOW#<windowEnd>    one history row per committed window
 *   sk = USAGE#<YYYY-MM>       events, files and bytes exported that month
 *
 * Dates are ISO-8601 strings (`toISOString()`, fixed width, so they compare
 * lexically in condition expressions). The lease expiry is `leaseExpiresAt`,
 * never `expiresAt`, which is the table's TTL attribute.
 *
 * Every state change is one conditional write; the commit of a window is one
 * transaction (state + history + usage), so usage is exact under retries.
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  GetCommand,
  paginateQuery,
  paginateScan,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { WindowGap } from '../domain/data-expiry.ts';
import type {
  CommittedWindowRecord,
  CommitWindow,
  ConnectionDiagnosis,
  ExportCursor,
  ExportState,
  ExportStateQueries,
  ExportStateStore,
  ManifestSupersedes,
  MonthlyUsage,
  StoredExportState,
  SupersededObject,
  WindowHistoryEntry,
  WrittenPart,
} from '../ports/index.ts';

// The operator-read types live with their port; re-exported for callers that import them from here.
export type { MonthlyUsage, StoredExportState, WindowHistoryEntry };

const STATE_SK = 'STATE';
const WINDOW_SK_PREFIX = 'WINDOW#';
const USAGE_SK_PREFIX = 'USAGE#';
/** Parts of a history row kept in the row itself; more go to part-list items of the window. */
export const HISTORY_INLINE_PARTS = 100;
/** Parts per part-list item (≈ 200 bytes each: far below DynamoDB's 400 KB item limit). */
export const HISTORY_PARTS_PER_ITEM = 500;
/** Part-list items written in the commit transaction at most (100 items, 4 MB per transaction). */
const MAX_HISTORY_PART_ITEMS = 20;
const PARTS_SK_INFIX = '#PARTS#';

export function connectionKey(connectionId: string): string {
  return `conn#${connectionId}`;
}

export function windowHistoryKey(windowEnd: Date): string {
  return `${WINDOW_SK_PREFIX}${windowEnd.toISOString()}`;
}

/** The sk of the `chunk`-th part-list item of a window's history (after the window row in key order). */
export function windowPartsKey(windowEnd: Date, chunk: number): string {
  return `${windowHistoryKey(windowEnd)}${PARTS_SK_INFIX}${String(chunk).padStart(4, '0')}`;
}

export function usageKey(month: string): string {
  return `${USAGE_SK_PREFIX}${month}`;
}

interface StateRow {
  pk: string;
  sk: string;
  connectionId: string;
  watermark?: string;
  sequence?: number;
  pendingWindowEnd?: string;
  pendingConnection?: Record<string, unknown>;
  pendingSupersedes?: SupersededObject[];
  replayThrough?: string;
  superseded?: { windowEnd: string; supersedes: ManifestSupersedes };
  leaseOwner?: string;
  leaseExpiresAt?: string;
  cursor?: ExportCursor;
  lastError?: ConnectionDiagnosis;
  lastCommittedAt?: string;
  lastFileKey?: string;
  lastGap?: WindowGap & { windowEnd: string };
}

function stateOfRow(row: StateRow): StoredExportState {
  const state: StoredExportState = { connectionId: row.connectionId, sequence: Number(row.sequence ?? 0) };
  if (row.watermark) state.watermark = new Date(row.watermark);
  if (row.pendingWindowEnd) state.pendingWindowEnd = new Date(row.pendingWindowEnd);
  if (row.pendingConnection) state.pendingConnection = row.pendingConnection;
  if (row.pendingSupersedes?.length) state.pendingSupersedes = row.pendingSupersedes;
  if (row.replayThrough) state.replayThrough = new Date(row.replayThrough);
  if (row.superseded)
    state.superseded = {
      windowEnd: new Date(row.superseded.windowEnd),
      supersedes: row.superseded.supersedes,
    };
  if (row.leaseOwner && row.leaseExpiresAt)
    state.lease = { owner: row.leaseOwner, expiresAt: new Date(row.leaseExpiresAt) };
  if (row.cursor) state.cursor = row.cursor;
  if (row.lastError) state.lastError = row.lastError;
  if (row.lastCommittedAt) state.lastCommittedAt = new Date(row.lastCommittedAt);
  if (row.lastFileKey) state.lastFileKey = row.lastFileKey;
  if (row.lastGap) state.lastGap = row.lastGap;
  return state;
}

function historyEntryOf(row: Record<string, unknown>): WindowHistoryEntry {
  const entry: WindowHistoryEntry = {
    connectionId: String(row['connectionId']),
    windowStart: new Date(String(row['windowStart'])),
    windowEnd: new Date(String(row['windowEnd'])),
    sequence: Number(row['sequence']),
    parts: (row['parts'] as WrittenPart[] | undefined) ?? [],
    manifestKey: String(row['manifestKey']),
    records: Number(row['records']),
    bytes: Number(row['bytes']),
    committedAt: new Date(String(row['committedAt'])),
  };
  if (typeof row['bucketName'] === 'string') entry.bucketName = row['bucketName'];
  if (row['supersedes']) entry.supersedes = row['supersedes'] as ManifestSupersedes;
  return entry;
}

function initializedState(row: StateRow | undefined): ExportState | undefined {
  if (!row?.watermark) return undefined;
  return stateOfRow(row) as ExportState;
}

/** Names used in expressions (some, like `sequence`, are DynamoDB reserved words). */
const NAMES = {
  '#watermark': 'watermark',
  '#sequence': 'sequence',
  '#pending': 'pendingWindowEnd',
  '#pendingConnection': 'pendingConnection',
  '#pendingSupersedes': 'pendingSupersedes',
  '#superseded': 'superseded',
  '#replayThrough': 'replayThrough',
  '#parts': 'parts',
  '#leaseOwner': 'leaseOwner',
  '#leaseExpiresAt': 'leaseExpiresAt',
  '#cursor': 'cursor',
  '#lastError': 'lastError',
  '#at': 'at',
  '#lastCommittedAt': 'lastCommittedAt',
  '#lastFileKey': 'lastFileKey',
  '#lastGap': 'lastGap',
  '#connectionId': 'connectionId',
} as const;

type NameToken = keyof typeof NAMES;

/** ExpressionAttributeNames for exactly the tokens an expression uses (DynamoDB rejects unused ones). */
function namesIn(...expressions: string[]): Record<string, string> {
  const text = expressions.join(' ');
  const used: Record<string, string> = {};
  for (const token of Object.keys(NAMES) as NameToken[]) {
    if (new RegExp(`${token}\\b`).test(text)) used[token] = NAMES[token];
  }
  return used;
}

const LEASE_IS_FREE_OR_OURS =
  '(attribute_not_exists(#leaseOwner) OR #leaseOwner = :owner OR #leaseExpiresAt <= :now)';

function isConditionFailure(error: unknown): boolean {
  if (error instanceof ConditionalCheckFailedException) return true;
  if (error instanceof TransactionCanceledException) {
    const reasons = error.CancellationReasons ?? [];
    if (reasons.length > 0) return reasons.some((r) => r.Code === 'ConditionalCheckFailed');
    return /ConditionalCheckFailed/.test(error.message);
  }
  return false;
}

function partChunks(parts: WrittenPart[]): WrittenPart[][] {
  const chunks: WrittenPart[][] = [];
  for (let i = 0; i < parts.length; i += HISTORY_PARTS_PER_ITEM)
    chunks.push(parts.slice(i, i + HISTORY_PARTS_PER_ITEM));
  return chunks;
}

/**
 * The history row's part fields: every part when few; else none inline (part-list items hold
 * them), or — beyond what one transaction can carry — only the manifest lists them.
 */
function historyParts(parts: WrittenPart[]): Record<string, unknown> {
  if (parts.length <= HISTORY_INLINE_PARTS) return { parts, partCount: parts.length };
  return { parts: [], partCount: parts.length };
}

export class DynamoExportStateStore implements ExportStateStore, ExportStateQueries {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private key(connectionId: string, sk = STATE_SK) {
    return { pk: connectionKey(connectionId), sk };
  }

  private async readRow(connectionId: string): Promise<StateRow | undefined> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(connectionId), ConsistentRead: true }),
    );
    return Item as StateRow | undefined;
  }

  /**
   * One conditional UpdateItem on the STATE row. Resolves the row after the write, or
   * undefined when the condition failed (nothing written).
   */
  private async update(
    connectionId: string,
    update: string,
    condition: string | undefined,
    values: Record<string, unknown>,
  ): Promise<StateRow | undefined> {
    const expressions = condition ? [update, condition] : [update];
    const usedValues = Object.fromEntries(
      Object.entries(values).filter(([token]) => expressions.some((e) => new RegExp(`${token}\\b`).test(e))),
    );
    try {
      const { Attributes } = await this.dynamo.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(connectionId),
          UpdateExpression: update,
          ...(condition ? { ConditionExpression: condition } : {}),
          ExpressionAttributeNames: namesIn(...expressions),
          ...(Object.keys(usedValues).length ? { ExpressionAttributeValues: usedValues } : {}),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes as StateRow;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async get(connectionId: string): Promise<ExportState | undefined> {
    return initializedState(await this.readRow(connectionId));
  }

  /** BatchGetItem, 100 keys a call, unprocessed keys retried (with a short backoff). */
  async getMany(connectionIds: string[]): Promise<Map<string, ExportState>> {
    const states = new Map<string, ExportState>();
    for (let i = 0; i < connectionIds.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = connectionIds
        .slice(i, i + 100)
        .map((id) => this.key(id));
      for (let attempt = 0; keys && keys.length > 0; attempt += 1) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)));
        const out: BatchGetCommandOutput = await this.dynamo.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } },
          }),
        );
        for (const item of out.Responses?.[this.tableName] ?? []) {
          const state = initializedState(item as StateRow);
          if (state) states.set(state.connectionId, state);
        }
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys;
      }
    }
    return states;
  }

  async initialize(connectionId: string, watermark: Date): Promise<ExportState> {
    const created = await this.update(
      connectionId,
      'SET #watermark = :watermark, #sequence = if_not_exists(#sequence, :zero), #connectionId = :id',
      'attribute_not_exists(#watermark)',
      { ':watermark': watermark.toISOString(), ':zero': 0, ':id': connectionId },
    );
    const state = initializedState(created ?? (await this.readRow(connectionId)));
    if (!state) throw new Error(`export state of ${connectionId} vanished during initialize`);
    return state;
  }

  /** As the port says; also undefined when the state row was never initialized. */
  async acquireLease(
    connectionId: string,
    owner: string,
    now: Date,
    leaseMs: number,
    windowEnd: Date,
    connectionSnapshot?: Record<string, unknown>,
  ): Promise<ExportState | undefined> {
    const values: Record<string, unknown> = {
      ':owner': owner,
      ':now': now.toISOString(),
      ':leaseExpiresAt': new Date(now.getTime() + leaseMs).toISOString(),
      ':windowEnd': windowEnd.toISOString(),
    };
    const takeLease = 'SET #leaseOwner = :owner, #leaseExpiresAt = :leaseExpiresAt';
    let pin = `${takeLease}, #pending = if_not_exists(#pending, :windowEnd)`;
    if (connectionSnapshot) {
      // The snapshot goes with the window end: only when no window is pinned yet.
      pin += ', #pendingConnection = if_not_exists(#pendingConnection, :snapshot)';
      values[':snapshot'] = connectionSnapshot;
    }
    // Pin the window end unless one is pinned; never pin an end at or before the watermark
    // (a racing exporter may have committed that window meanwhile).
    const pinned = await this.update(
      connectionId,
      pin,
      `attribute_exists(#watermark) AND ${LEASE_IS_FREE_OR_OURS} AND (attribute_exists(#pending) OR #watermark < :windowEnd)`,
      values,
    );
    if (pinned) return initializedState(pinned);
    // Either the lease is held, or there is nothing to pin: take the lease alone.
    const leased = await this.update(
      connectionId,
      takeLease,
      `attribute_exists(#watermark) AND ${LEASE_IS_FREE_OR_OURS}`,
      values,
    );
    return initializedState(leased);
  }

  async renewLease(connectionId: string, owner: string, now: Date, leaseMs: number): Promise<boolean> {
    const renewed = await this.update(
      connectionId,
      'SET #leaseExpiresAt = :leaseExpiresAt',
      '#leaseOwner = :owner',
      {
        ':owner': owner,
        ':leaseExpiresAt': new Date(now.getTime() + leaseMs).toISOString(),
      },
    );
    return renewed !== undefined;
  }

  async saveCursor(connectionId: string, owner: string, cursor: ExportCursor): Promise<boolean> {
    const saved = await this.update(connectionId, 'SET #cursor = :cursor', '#leaseOwner = :owner', {
      ':owner': owner,
      ':cursor': cursor,
    });
    return saved !== undefined;
  }

  async repinWindow(
    connectionId: string,
    owner: string,
    connectionSnapshot: Record<string, unknown>,
    supersedes: SupersededObject[],
  ): Promise<ExportState | undefined> {
    const repinned = await this.update(
      connectionId,
      'SET #pendingConnection = :snapshot, #pendingSupersedes = :supersedes REMOVE #cursor',
      '#leaseOwner = :owner AND attribute_exists(#pending)',
      { ':owner': owner, ':snapshot': connectionSnapshot, ':supersedes': supersedes },
    );
    return repinned ? initializedState(repinned) : undefined;
  }

  async getCommittedWindow(
    connectionId: string,
    windowEnd: Date,
  ): Promise<CommittedWindowRecord | undefined> {
    const { Item } = await this.dynamo.send(
      new GetCommand({
        TableName: this.tableName,
        Key: this.key(connectionId, windowHistoryKey(windowEnd)),
        ConsistentRead: true,
      }),
    );
    return Item ? historyEntryOf(Item) : undefined;
  }

  async nextCommittedWindowEnd(connectionId: string, after: Date): Promise<Date | undefined> {
    const { Items } = await this.dynamo.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': connectionKey(connectionId),
          ':from': windowHistoryKey(after),
          ':to': `${WINDOW_SK_PREFIX}\uffff`,
        },
        Limit: 32,
        ConsistentRead: true,
      }),
    );
    // Part-list items of a window sort after it: only window rows name window ends.
    const ends = (Items ?? [])
      .filter((item) => !String(item['sk']).includes(PARTS_SK_INFIX))
      .map((item) => new Date(String(item['windowEnd'])));
    return ends.find((end) => end.getTime() > after.getTime());
  }

  async commitWindow(connectionId: string, commit: CommitWindow): Promise<boolean> {
    const pk = connectionKey(connectionId);
    const records = commit.parts.reduce((n, p) => n + p.records, 0);
    const bytes = commit.parts.reduce((n, p) => n + p.bytes, 0);
    const committedAt = commit.committedAt.toISOString();
    const lastFileKey = commit.parts.at(-1)?.key ?? commit.manifestKey;

    const gaps = commit.gaps ?? [];
    const lastGap = gaps.at(-1);
    // A window with a gap records it as lastGap (shown by `status`); a complete one leaves the last.
    // The last window that superseded anything stays on the state (status shows it) until another does.
    const superseded = commit.supersedes?.objects.length
      ? { windowEnd: commit.windowEnd.toISOString(), supersedes: commit.supersedes }
      : undefined;
    const stateUpdate =
      'SET #watermark = :windowEnd, #sequence = :sequence, #lastCommittedAt = :committedAt, #lastFileKey = :lastFileKey' +
      (lastGap ? ', #lastGap = :lastGap' : '') +
      (superseded ? ', #superseded = :superseded ' : ' ') +
      'REMOVE #pending, #pendingConnection, #pendingSupersedes, #cursor, #leaseOwner, #leaseExpiresAt, #lastError';
    const stateCondition = '#watermark = :expected AND #leaseOwner = :owner';
    const usageUpdate =
      'SET #connectionId = :id, #month = :month ADD #events :events, #files :files, #bytes :bytes';

    const items: TransactWriteCommandInput['TransactItems'] = [
      {
        Update: {
          TableName: this.tableName,
          Key: { pk, sk: STATE_SK },
          UpdateExpression: stateUpdate,
          ConditionExpression: stateCondition,
          ExpressionAttributeNames: namesIn(stateUpdate, stateCondition),
          ExpressionAttributeValues: {
            ':windowEnd': commit.windowEnd.toISOString(),
            ':sequence': commit.stateSequence,
            ':committedAt': committedAt,
            ':lastFileKey': lastFileKey,
            ':expected': commit.expectedWatermark.toISOString(),
            ':owner': commit.leaseOwner,
            ...(lastGap ? { ':lastGap': { ...lastGap, windowEnd: commit.windowEnd.toISOString() } } : {}),
            ...(superseded ? { ':superseded': superseded } : {}),
          },
        },
      },
      {
        Put: {
          TableName: this.tableName,
          Item: {
            pk,
            sk: windowHistoryKey(commit.windowEnd),
            connectionId,
            windowStart: commit.expectedWatermark.toISOString(),
            windowEnd: commit.windowEnd.toISOString(),
            sequence: commit.sequence,
            ...historyParts(commit.parts),
            manifestKey: commit.manifestKey,
            records,
            bytes,
            committedAt,
            ...(gaps.length ? { gaps } : {}),
            bucketName: commit.bucketName,
            ...(commit.supersedes ? { supersedes: commit.supersedes } : {}),
          },
        },
      },
      {
        Update: {
          TableName: this.tableName,
          Key: { pk, sk: usageKey(commit.usageMonth) },
          UpdateExpression: usageUpdate,
          ExpressionAttributeNames: {
            '#connectionId': 'connectionId',
            '#month': 'month',
            '#events': 'events',
            '#files': 'files',
            '#bytes': 'bytes',
          },
          ExpressionAttributeValues: {
            ':id': connectionId,
            ':month': commit.usageMonth,
            ':events': records,
            ':files': commit.parts.length,
            ':bytes': bytes,
          },
        },
      },
    ];

    // A history row holds at most HISTORY_INLINE_PARTS parts; the others go to part-list items.
    const chunks = commit.parts.length > HISTORY_INLINE_PARTS ? partChunks(commit.parts) : [];
    if (chunks.length <= MAX_HISTORY_PART_ITEMS) {
      for (const [chunk, parts] of chunks.entries()) {
        items.push({
          Put: {
            TableName: this.tableName,
            Item: { pk, sk: windowPartsKey(commit.windowEnd, chunk), parts },
          },
        });
      }
    }
    try {
      await this.dynamo.send(new TransactWriteCommand({ TransactItems: items }));
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // A retry of a transaction that did commit (response lost) fails its condition:
      // recognise our own commit by its exact outcome rather than report a lost race.
      const row = await this.readRow(connectionId);
      return (
        row?.watermark === commit.windowEnd.toISOString() &&
        Number(row.sequence) === commit.stateSequence &&
        row.lastCommittedAt === committedAt &&
        row.lastFileKey === lastFileKey
      );
    }
  }

  async releaseLease(connectionId: string, owner: string): Promise<void> {
    await this.update(connectionId, 'REMOVE #leaseOwner, #leaseExpiresAt', '#leaseOwner = :owner', {
      ':owner': owner,
    });
  }

  async recordError(connectionId: string, diagnosis: ConnectionDiagnosis): Promise<void> {
    await this.update(connectionId, 'SET #lastError = :diagnosis, #connectionId = :id', undefined, {
      ':diagnosis': diagnosis,
      ':id': connectionId,
    });
  }

  async recordPassedTest(connectionId: string, testedAt: Date): Promise<void> {
    // Diagnoses carry `at` as an ISO instant, so string order is time order.
    await this.update(connectionId, 'REMOVE #lastError', '#lastError.#at <= :at', {
      ':at': testedAt.toISOString(),
    });
  }

  async resetWatermark(
    connectionId: string,
    watermark: Date,
    now: Date,
    replayThrough?: Date,
  ): Promise<boolean> {
    const reset = await this.update(
      connectionId,
      'SET #watermark = :watermark, #sequence = if_not_exists(#sequence, :zero), #connectionId = :id' +
        (replayThrough ? ', #replayThrough = :replayThrough ' : ' ') +
        'REMOVE #cursor, #leaseOwner, #leaseExpiresAt, #pending, #pendingConnection',
      // A pending window with no part written holds nothing to lose: a backfill may drop its pin.
      '(attribute_not_exists(#pending) OR attribute_not_exists(#cursor) OR size(#cursor.#parts) = :zero) ' +
        'AND (attribute_not_exists(#leaseOwner) OR #leaseExpiresAt <= :now)',
      {
        ':watermark': watermark.toISOString(),
        ':zero': 0,
        ':id': connectionId,
        ':now': now.toISOString(),
        ...(replayThrough ? { ':replayThrough': replayThrough.toISOString() } : {}),
      },
    );
    return reset !== undefined;
  }

  // ------------------------------------------------------------ reads for the CLI

  /** Committed windows of a connection, oldest first (`newestFirst` reverses), up to `limit`. */
  async listHistory(
    connectionId: string,
    options: { limit?: number; newestFirst?: boolean } = {},
  ): Promise<WindowHistoryEntry[]> {
    const windows: Record<string, unknown>[] = [];
    const chunks = new Map<string, WrittenPart[][]>();
    const input: QueryCommandInput = {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': connectionKey(connectionId), ':prefix': WINDOW_SK_PREFIX },
      ScanIndexForward: !options.newestFirst,
      ConsistentRead: true,
    };
    // Part-list items sort just after their window row (just before it, newest first).
    read: for await (const page of paginateQuery({ client: this.dynamo }, input)) {
      for (const item of page.Items ?? []) {
        const sk = String(item['sk']);
        const infix = sk.indexOf(PARTS_SK_INFIX);
        if (infix >= 0) {
          const windowSk = sk.slice(0, infix);
          const chunk = Number(sk.slice(infix + PARTS_SK_INFIX.length));
          const list = chunks.get(windowSk) ?? [];
          list[chunk] = (item['parts'] as WrittenPart[] | undefined) ?? [];
          chunks.set(windowSk, list);
          continue;
        }
        if (options.limit !== undefined && windows.length >= options.limit) break read;
        windows.push(item);
      }
    }
    return windows.map((row) => {
      const inline = (row['parts'] as WrittenPart[] | undefined) ?? [];
      const listed = chunks.get(String(row['sk']))?.flat() ?? [];
      const partCount = Number(row['partCount'] ?? inline.length);
      const parts = listed.length ? listed : inline;
      return {
        connectionId: String(row['connectionId']),
        windowStart: new Date(String(row['windowStart'])),
        windowEnd: new Date(String(row['windowEnd'])),
        sequence: Number(row['sequence']),
        parts,
        partCount,
        ...(parts.length < partCount ? { partsInManifestOnly: true } : {}),
        manifestKey: String(row['manifestKey']),
        records: Number(row['records']),
        bytes: Number(row['bytes']),
        committedAt: new Date(String(row['committedAt'])),
        ...(row['gaps'] ? { gaps: row['gaps'] as WindowGap[] } : {}),
        ...(typeof row['bucketName'] === 'string' ? { bucketName: row['bucketName'] } : {}),
        ...(row['supersedes'] ? { supersedes: row['supersedes'] as ManifestSupersedes } : {}),
      };
    });
  }

  /** Usage of one connection in one month (`YYYY-MM`); zeros when nothing was exported. */
  async getUsage(connectionId: string, month: string): Promise<MonthlyUsage> {
    const { Item } = await this.dynamo.send(
      new GetCommand({
        TableName: this.tableName,
        Key: this.key(connectionId, usageKey(month)),
        ConsistentRead: true,
      }),
    );
    return {
      connectionId,
      month,
      events: Number(Item?.['events'] ?? 0),
      files: Number(Item?.['files'] ?? 0),
      bytes: Number(Item?.['bytes'] ?? 0),
    };
  }

  /** Every month with usage of one connection, oldest first. */
  async listUsage(connectionId: string): Promise<MonthlyUsage[]> {
    const rows = await this.queryPrefix(connectionId, USAGE_SK_PREFIX, {});
    return rows.map((row) => ({
      connectionId,
      month: String(row['sk']).slice(USAGE_SK_PREFIX.length),
      events: Number(row['events'] ?? 0),
      files: Number(row['files'] ?? 0),
      bytes: Number(row['bytes'] ?? 0),
    }));
  }

  /** The state row of every connection (a scan: operator CLI and lag checks, not the hot path). */
  async listStates(): Promise<StoredExportState[]> {
    const states: StoredExportState[] = [];
    const pages = paginateScan(
      { client: this.dynamo },
      {
        TableName: this.tableName,
        FilterExpression: 'sk = :state',
        ExpressionAttributeValues: { ':state': STATE_SK },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) states.push(stateOfRow(item as StateRow));
    }
    return states.sort((a, b) =>
      a.connectionId < b.connectionId ? -1 : a.connectionId > b.connectionId ? 1 : 0,
    );
  }

  private async queryPrefix(
    connectionId: string,
    prefix: string,
    options: { limit?: number; newestFirst?: boolean },
  ): Promise<Record<string, unknown>[]> {
    const input: QueryCommandInput = {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': connectionKey(connectionId), ':prefix': prefix },
      ScanIndexForward: !options.newestFirst,
      ConsistentRead: true,
    };
    const rows: Record<string, unknown>[] = [];
    for await (const page of paginateQuery({ client: this.dynamo }, input)) {
      for (const item of page.Items ?? []) {
        rows.push(item);
        if (options.limit !== undefined && rows.length >= options.limit) return rows;
      }
    }
    return rows;
  }
}
