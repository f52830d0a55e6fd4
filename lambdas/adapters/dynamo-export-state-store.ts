/**
 * ExportStateStore on the ExportState table. Per connection (`pk = "conn#<id>"`):
 *
 *   sk = STATE                           watermark, sequence, pending window, lease, cursor, last error
 *   sk = WINDOW#<windowEnd>              one history row per committed window
 *   sk = WINDOW#<windowEnd>#PARTS#<n>    part-list items: one per part written by the exporter
 *                                        (item n holds part n + 1), or 500 parts each (older commits)
 *   sk = USAGE#<YYYY-MM>                 no longer written: usage is derived from the history rows
 *
 * Dates are ISO-8601 strings (`toISOString()`, fixed width, so they compare
 * lexically in condition expressions). The lease expiry is `leaseExpiresAt`,
 * never `expiresAt`, which is the table's TTL attribute.
 *
 * Every state change is one conditional write; the commit of a window is one
 * transaction (state + history row), so usage, summed from the history rows, is
 * exact under retries. The cursor on the state row has a constant size: the parts
 * it stands for are in their part-list items, written with it (docs/exactly-once.md §5).
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
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
  CommittedWindowSpan,
  CommitWindow,
  ConnectionDiagnosis,
  DroppedWindow,
  ExportCursor,
  ExportState,
  ExportStateQueries,
  ExportStateStore,
  ManifestSupersedes,
  MonthlyUsage,
  StoredExportState,
  SupersededObject,
  UsageCounts,
  WindowHistoryEntry,
  WrittenPart,
} from '../ports/index.ts';

// The operator-read types live with their port; re-exported for callers that import them from here.
export type { MonthlyUsage, StoredExportState, WindowHistoryEntry };

const STATE_SK = 'STATE';
const WINDOW_SK_PREFIX = 'WINDOW#';
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

interface StateRow {
  pk: string;
  sk: string;
  connectionId: string;
  watermark?: string;
  sequence?: number;
  pendingWindowEnd?: string;
  pendingConnection?: Record<string, unknown>;
  pendingSupersedes?: SupersededObject[];
  droppedWindow?: { windowEnd: string; connection: Record<string, unknown>; nextPartNumber: number };
  replayThrough?: string;
  superseded?: { windowEnd: string; supersedes: ManifestSupersedes };
  leaseOwner?: string;
  leaseExpiresAt?: string;
  cursor?: StoredCursor;
  lastError?: ConnectionDiagnosis;
  lastCommittedAt?: string;
  lastFileKey?: string;
  lastGap?: WindowGap & { windowEnd: string };
}

/**
 * The cursor as the state row keeps it: positions and the number of parts, whose part-list items
 * carry `attempt`. Cursors saved before parts had items of their own list `parts` inline instead.
 */
interface StoredCursor {
  nextObjectIndex: number;
  nextPartNumber: number;
  partCount?: number;
  attempt?: string;
  parts?: WrittenPart[];
}

/** At most this many items in one transaction (DynamoDB allows 100). */
const MAX_TRANSACTION_ITEMS = 100;

function stateOfRow(row: StateRow): StoredExportState {
  const state: StoredExportState = { connectionId: row.connectionId, sequence: Number(row.sequence ?? 0) };
  if (row.watermark) state.watermark = new Date(row.watermark);
  if (row.pendingWindowEnd) state.pendingWindowEnd = new Date(row.pendingWindowEnd);
  if (row.pendingConnection) state.pendingConnection = row.pendingConnection;
  if (row.pendingSupersedes?.length) state.pendingSupersedes = row.pendingSupersedes;
  if (row.replayThrough) state.replayThrough = new Date(row.replayThrough);
  if (row.droppedWindow)
    state.droppedWindow = { ...row.droppedWindow, windowEnd: new Date(row.droppedWindow.windowEnd) };
  if (row.superseded)
    state.superseded = {
      windowEnd: new Date(row.superseded.windowEnd),
      supersedes: row.superseded.supersedes,
    };
  if (row.leaseOwner && row.leaseExpiresAt)
    state.lease = { owner: row.leaseOwner, expiresAt: new Date(row.leaseExpiresAt) };
  if (row.cursor) {
    const { nextObjectIndex, nextPartNumber, attempt, parts } = row.cursor;
    // Parts kept in items are read by withCursorParts.
    state.cursor = { nextObjectIndex, nextPartNumber, parts: parts ?? [], ...(attempt ? { attempt } : {}) };
  }
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
  entry.usage = usageOfHistoryRow(row);
  return entry;
}

/** What a history row counts for usage: the sum over its end's commits, else its own counts. */
function usageOfHistoryRow(row: Record<string, unknown>): UsageCounts {
  const usage = row['usage'] as UsageCounts | undefined;
  if (usage) return { events: Number(usage.events), files: Number(usage.files), bytes: Number(usage.bytes) };
  const inline = (row['parts'] as WrittenPart[] | undefined) ?? [];
  return {
    events: Number(row['records'] ?? 0),
    files: Number(row['partCount'] ?? inline.length),
    bytes: Number(row['bytes'] ?? 0),
  };
}

function isPartListKey(sk: string): boolean {
  return sk.includes(PARTS_SK_INFIX);
}

/** The chunk number of a part-list item's sk. */
function partListChunk(sk: string): number {
  return Number(sk.slice(sk.indexOf(PARTS_SK_INFIX) + PARTS_SK_INFIX.length));
}

/**
 * A window's parts from its part-list items: those of `attempt` (absent: items written by commits
 * before attempts existed), in part order, the first `count`.
 */
function partsOfItems(items: Record<string, unknown>[], attempt: string | undefined, count: number) {
  return items
    .filter((item) => (item['attempt'] as string | undefined) === attempt)
    .map((item) => ({ chunk: partListChunk(String(item['sk'])), parts: item['parts'] as WrittenPart[] }))
    .sort((a, b) => a.chunk - b.chunk)
    .flatMap((item) => item.parts ?? [])
    .slice(0, count);
}

/** Names used in expressions (some, like `sequence`, are DynamoDB reserved words). */
const NAMES = {
  '#watermark': 'watermark',
  '#sequence': 'sequence',
  '#pending': 'pendingWindowEnd',
  '#pendingConnection': 'pendingConnection',
  '#pendingSupersedes': 'pendingSupersedes',
  '#droppedWindow': 'droppedWindow',
  '#superseded': 'superseded',
  '#replayThrough': 'replayThrough',
  '#parts': 'parts',
  '#partCount': 'partCount',
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
 * them: those of the cursor's attempt, or — commits without one — 500 a item), or, beyond what
 * one transaction can carry, only the manifest lists them.
 */
function historyParts(commit: CommitWindow): Record<string, unknown> {
  const { parts } = commit;
  if (parts.length <= HISTORY_INLINE_PARTS) return { parts, partCount: parts.length };
  return {
    parts: [],
    partCount: parts.length,
    ...(commit.partsAttempt ? { partsAttempt: commit.partsAttempt } : {}),
  };
}

/** The part-list item of part `index + 1` of a window written by `attempt`. */
function partItem(pk: string, windowEnd: Date, index: number, part: WrittenPart, attempt: string) {
  return { pk, sk: windowPartsKey(windowEnd, index), parts: [part], attempt };
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

  /** The state of an initialized row, with the parts of its cursor read from their items. */
  private async initializedState(row: StateRow | undefined): Promise<ExportState | undefined> {
    if (!row?.watermark) return undefined;
    return (await this.withCursorParts(row, stateOfRow(row))) as ExportState;
  }

  private async withCursorParts<T extends StoredExportState>(row: StateRow, state: T): Promise<T> {
    const count = row.cursor?.partCount;
    if (!state.cursor || count === undefined || !row.pendingWindowEnd) return state;
    const windowSk = windowHistoryKey(new Date(row.pendingWindowEnd));
    const items = await this.queryPrefix(row.connectionId, `${windowSk}${PARTS_SK_INFIX}`, {});
    const parts = partsOfItems(items, row.cursor?.attempt, count);
    if (parts.length !== count)
      throw new Error(
        `export state of ${row.connectionId}: its cursor counts ${count} parts of the window ending ` +
          `${row.pendingWindowEnd} but ${parts.length} part-list items of attempt ${row.cursor?.attempt} exist; ` +
          'the table was edited by hand or restored partly: restore it, or backfill the connection from its watermark',
      );
    return { ...state, cursor: { ...state.cursor, parts } };
  }

  async get(connectionId: string): Promise<ExportState | undefined> {
    return this.initializedState(await this.readRow(connectionId));
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
          const state = await this.initializedState(item as StateRow);
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
    const state = await this.initializedState(created ?? (await this.readRow(connectionId)));
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
    if (pinned) return this.initializedState(pinned);
    // Either the lease is held, or there is nothing to pin: take the lease alone.
    const leased = await this.update(
      connectionId,
      takeLease,
      `attribute_exists(#watermark) AND ${LEASE_IS_FREE_OR_OURS}`,
      values,
    );
    return this.initializedState(leased);
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

  /** As the port says: one transaction, the state row's condition fencing the part-list items. */
  async saveCursor(
    connectionId: string,
    owner: string,
    windowEnd: Date,
    cursor: ExportCursor,
    recorded: number,
  ): Promise<boolean> {
    const { attempt } = cursor;
    if (!attempt) throw new Error(`the cursor of ${connectionId} has no attempt: its parts cannot be stored`);
    const pk = connectionKey(connectionId);
    const stored: StoredCursor = {
      nextObjectIndex: cursor.nextObjectIndex,
      nextPartNumber: cursor.nextPartNumber,
      partCount: cursor.parts.length,
      attempt,
    };
    const update = 'SET #cursor = :cursor';
    const condition = '#leaseOwner = :owner AND #pending = :windowEnd';
    const items = cursor.parts
      .slice(recorded)
      .map((part, i) => partItem(pk, windowEnd, recorded + i, part, attempt));
    return this.transactWithItems(
      {
        Update: {
          TableName: this.tableName,
          Key: { pk, sk: STATE_SK },
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames: namesIn(update, condition),
          ExpressionAttributeValues: {
            ':cursor': stored,
            ':owner': owner,
            ':windowEnd': windowEnd.toISOString(),
          },
        },
      },
      items,
    );
  }

  /**
   * One transaction: `first` (the conditional state update) and Puts of `items`. Items beyond what
   * a transaction holds (only when a cursor saved before part-list items existed is converted) are
   * put before it: they hold what the cursor already recorded. False when the condition failed.
   */
  private async transactWithItems(
    first: NonNullable<TransactWriteCommandInput['TransactItems']>[number],
    items: Record<string, unknown>[],
    more: NonNullable<TransactWriteCommandInput['TransactItems']> = [],
  ): Promise<boolean> {
    const room = MAX_TRANSACTION_ITEMS - 1 - more.length;
    const early = items.slice(0, Math.max(0, items.length - room));
    for (let i = 0; i < early.length; i += 16)
      await Promise.all(
        early
          .slice(i, i + 16)
          .map((Item) => this.dynamo.send(new PutCommand({ TableName: this.tableName, Item }))),
      );
    const transact = [
      first,
      ...more,
      ...items.slice(early.length).map((Item) => ({ Put: { TableName: this.tableName, Item } })),
    ];
    try {
      await this.dynamo.send(new TransactWriteCommand({ TransactItems: transact }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async repinWindow(
    connectionId: string,
    owner: string,
    connectionSnapshot: Record<string, unknown>,
    supersedes: SupersededObject[],
  ): Promise<ExportState | undefined> {
    const repinned = await this.update(
      connectionId,
      'SET #pendingConnection = :snapshot, #pendingSupersedes = :supersedes REMOVE #cursor, #droppedWindow',
      '#leaseOwner = :owner AND attribute_exists(#pending)',
      { ':owner': owner, ':snapshot': connectionSnapshot, ':supersedes': supersedes },
    );
    return repinned ? this.initializedState(repinned) : undefined;
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
          // After the window ending at `after` and its part-list items (thousands, for a large window).
          ':from': `${windowHistoryKey(after)}#\uffff`,
          ':to': `${WINDOW_SK_PREFIX}\uffff`,
        },
        Limit: 32,
        ConsistentRead: true,
      }),
    );
    // Part-list items of a window sort after it: only window rows name window ends.
    const ends = (Items ?? [])
      .filter((item) => !isPartListKey(String(item['sk'])))
      .map((item) => new Date(String(item['windowEnd'])));
    return ends.find((end) => end.getTime() > after.getTime());
  }

  async commitWindow(connectionId: string, commit: CommitWindow): Promise<boolean> {
    const pk = connectionKey(connectionId);
    const records = commit.parts.reduce((n, p) => n + p.records, 0);
    const bytes = commit.parts.reduce((n, p) => n + p.bytes, 0);
    const committedAt = commit.committedAt.toISOString();
    const lastFileKey = commit.parts.at(-1)?.key ?? commit.manifestKey;
    const earlier = commit.earlierUsage;
    // A re-export (backfill) counts again: the row keeps the sum over its end's commits.
    const usage = earlier
      ? {
          events: earlier.events + records,
          files: earlier.files + commit.parts.length,
          bytes: earlier.bytes + bytes,
        }
      : undefined;
    const history = {
      Put: {
        TableName: this.tableName,
        Item: {
          pk,
          sk: windowHistoryKey(commit.windowEnd),
          connectionId,
          windowStart: commit.expectedWatermark.toISOString(),
          windowEnd: commit.windowEnd.toISOString(),
          sequence: commit.sequence,
          ...historyParts(commit),
          manifestKey: commit.manifestKey,
          records,
          bytes,
          committedAt,
          ...(commit.gaps?.length ? { gaps: commit.gaps } : {}),
          bucketName: commit.bucketName,
          ...(commit.supersedes ? { supersedes: commit.supersedes } : {}),
          ...(usage ? { usage } : {}),
        },
      },
    };
    const ok = await this.transactWithItems(
      this.commitStateUpdate(pk, commit, committedAt, lastFileKey),
      this.commitPartItems(pk, commit),
      [history],
    );
    if (ok) return true;
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

  /** The commit's state update: conditional on the watermark it started from and on our lease. */
  private commitStateUpdate(pk: string, commit: CommitWindow, committedAt: string, lastFileKey: string) {
    const lastGap = commit.gaps?.at(-1);
    // A window with a gap records it as lastGap (shown by `status`); a complete one leaves the last.
    // The last window that superseded anything stays on the state (status shows it) until another does.
    const superseded = commit.supersedes?.objects.length
      ? { windowEnd: commit.windowEnd.toISOString(), supersedes: commit.supersedes }
      : undefined;
    const stateUpdate =
      'SET #watermark = :windowEnd, #sequence = :sequence, #lastCommittedAt = :committedAt, #lastFileKey = :lastFileKey' +
      (lastGap ? ', #lastGap = :lastGap' : '') +
      (superseded ? ', #superseded = :superseded ' : ' ') +
      'REMOVE #pending, #pendingConnection, #pendingSupersedes, #droppedWindow, #cursor, #leaseOwner, #leaseExpiresAt, #lastError';
    const stateCondition = '#watermark = :expected AND #leaseOwner = :owner';
    return {
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
    };
  }

  /**
   * The part-list items the commit writes: none when the history row lists the parts itself; else
   * those of the parts saveCursor did not store (usually the last part alone), or — a commit
   * without an attempt — chunks of 500 parts, up to what one transaction carries.
   */
  private commitPartItems(pk: string, commit: CommitWindow): Record<string, unknown>[] {
    const { parts, partsAttempt } = commit;
    if (parts.length <= HISTORY_INLINE_PARTS) return [];
    if (partsAttempt) {
      const recorded = commit.recordedParts ?? 0;
      return parts
        .slice(recorded)
        .map((part, i) => partItem(pk, commit.windowEnd, recorded + i, part, partsAttempt));
    }
    const chunks = partChunks(parts);
    if (chunks.length > MAX_HISTORY_PART_ITEMS) return [];
    return chunks.map((chunk, i) => ({ pk, sk: windowPartsKey(commit.windowEnd, i), parts: chunk }));
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
    dropped?: DroppedWindow,
  ): Promise<boolean> {
    const reset = await this.update(
      connectionId,
      'SET #watermark = :watermark, #sequence = if_not_exists(#sequence, :zero), #connectionId = :id' +
        (replayThrough ? ', #replayThrough = :replayThrough' : '') +
        (dropped ? ', #droppedWindow = :dropped ' : ' ') +
        'REMOVE #cursor, #leaseOwner, #leaseExpiresAt, #pending, #pendingConnection',
      // A pending window with no part recorded: a backfill may drop its pin (what it may have
      // written unrecorded is kept as droppedWindow, when it is still the window the caller read).
      '(attribute_not_exists(#pending) OR attribute_not_exists(#cursor) OR ' +
        '(attribute_not_exists(#cursor.#partCount) AND size(#cursor.#parts) = :zero) OR #cursor.#partCount = :zero) ' +
        (dropped ? 'AND #pending = :droppedEnd ' : '') +
        'AND (attribute_not_exists(#leaseOwner) OR #leaseExpiresAt <= :now)',
      {
        ':watermark': watermark.toISOString(),
        ':zero': 0,
        ':id': connectionId,
        ':now': now.toISOString(),
        ...(replayThrough ? { ':replayThrough': replayThrough.toISOString() } : {}),
        ...(dropped
          ? {
              ':dropped': { ...dropped, windowEnd: dropped.windowEnd.toISOString() },
              ':droppedEnd': dropped.windowEnd.toISOString(),
            }
          : {}),
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
    const chunks = new Map<string, Record<string, unknown>[]>();
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
        if (isPartListKey(sk)) {
          const windowSk = sk.slice(0, sk.indexOf(PARTS_SK_INFIX));
          chunks.set(windowSk, [...(chunks.get(windowSk) ?? []), item]);
          continue;
        }
        if (options.limit !== undefined && windows.length >= options.limit) break read;
        windows.push(item);
      }
    }
    return windows.map((row) => {
      const inline = (row['parts'] as WrittenPart[] | undefined) ?? [];
      const partCount = Number(row['partCount'] ?? inline.length);
      const attempt = row['partsAttempt'] as string | undefined;
      const parts =
        inline.length === partCount
          ? inline
          : partsOfItems(chunks.get(String(row['sk'])) ?? [], attempt, partCount);
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
        usage: usageOfHistoryRow(row),
      };
    });
  }

  async earliestWindowCommittedSince(
    connectionId: string,
    since: Date,
  ): Promise<CommittedWindowSpan | undefined> {
    const input: QueryCommandInput = {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      // Part-list items have no commit time: only window rows pass.
      FilterExpression: '#committedAt >= :since',
      ProjectionExpression: 'windowStart, windowEnd, #committedAt',
      ExpressionAttributeNames: { '#committedAt': 'committedAt' },
      ExpressionAttributeValues: {
        ':pk': connectionKey(connectionId),
        ':prefix': WINDOW_SK_PREFIX,
        ':since': since.toISOString(),
      },
      ConsistentRead: true,
    };
    // Oldest end first: the first window that passes the filter is the earliest.
    for await (const page of paginateQuery({ client: this.dynamo }, input)) {
      const row = page.Items?.[0];
      if (row) {
        return {
          windowStart: new Date(String(row['windowStart'])),
          windowEnd: new Date(String(row['windowEnd'])),
          committedAt: new Date(String(row['committedAt'])),
        };
      }
    }
    return undefined;
  }

  /**
   * Usage of one connection in one month (`YYYY-MM`, the UTC month of the window ends); zeros when
   * nothing was exported. Summed from the month's history rows (each counts its end's commits).
   */
  async getUsage(connectionId: string, month: string): Promise<MonthlyUsage> {
    const usage = await this.usageByMonth(connectionId, `${WINDOW_SK_PREFIX}${month}`);
    return usage.get(month) ?? { connectionId, month, events: 0, files: 0, bytes: 0 };
  }

  /** Every month with usage of one connection, oldest first. */
  async listUsage(connectionId: string): Promise<MonthlyUsage[]> {
    return [...(await this.usageByMonth(connectionId, WINDOW_SK_PREFIX)).values()];
  }

  private async usageByMonth(connectionId: string, prefix: string): Promise<Map<string, MonthlyUsage>> {
    const months = new Map<string, MonthlyUsage>();
    for (const row of await this.queryPrefix(connectionId, prefix, {})) {
      if (isPartListKey(String(row['sk']))) continue;
      const month = String(row['windowEnd']).slice(0, 7);
      const sum = months.get(month) ?? { connectionId, month, events: 0, files: 0, bytes: 0 };
      const counts = usageOfHistoryRow(row);
      sum.events += counts.events;
      sum.files += counts.files;
      sum.bytes += counts.bytes;
      months.set(month, sum);
    }
    return months;
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
      for (const item of page.Items ?? []) {
        const row = item as StateRow;
        states.push(await this.withCursorParts(row, stateOfRow(row)));
      }
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
