/**
 * Connection rows at the CLI boundary: read from a file (plain JSON or the
 * DynamoDB JSON of `aws dynamodb put-item --item file://...`), validated with
 * the domain schema, printed without secrets, errors one line per field.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import {
  type Connection,
  type FieldError,
  type ValidationResult,
  validateConnection,
  validateConnectionAt,
} from '../lambdas/domain/connection.ts';
import { CliError } from './command.ts';
import type { CliContext } from './context.ts';
import { kmsKeyAllowlistOf } from './operations.ts';

export type RowFormat = 'json' | 'dynamodb';

export interface RawRow {
  /** `connection <id>` when the row has a string connectionId, else `connection #<n>` (1-based). */
  label: string;
  raw: unknown;
}

export interface RowFile {
  /** True when the file held an array (or a scan's `Items`): print an array back. */
  isList: boolean;
  format: RowFormat;
  rows: RawRow[];
}

export interface RowError {
  label: string;
  field: string;
  message: string;
}

export type CheckedRows = { ok: true; connections: Connection[] } | { ok: false; errors: RowError[] };

const DYNAMODB_TYPES = new Set(['S', 'N', 'B', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS', 'BS']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** An attribute value of DynamoDB JSON: `{"S": "..."}`, `{"M": {...}}`, ... (one type key). */
function isAttributeValue(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && DYNAMODB_TYPES.has(keys[0] as string);
}

/** True for an item in DynamoDB JSON: every attribute is a typed attribute value. */
export function isDynamoDbItem(value: unknown): value is Record<string, Record<string, unknown>> {
  return (
    isPlainObject(value) && Object.keys(value).length > 0 && Object.values(value).every(isAttributeValue)
  );
}

function labelOf(raw: unknown, index: number): string {
  const id = isPlainObject(raw) ? raw.connectionId : undefined;
  return typeof id === 'string' && id !== '' ? `connection ${id}` : `connection #${index + 1}`;
}

/**
 * Rows from parsed JSON: one row, an array of rows, a `get-item` answer (`{"Item": ...}`)
 * or a `scan` answer (`{"Items": [...]}`), each row plain or in DynamoDB JSON.
 */
export function rowsFromJson(parsed: unknown): RowFile {
  let items: unknown[];
  let isList: boolean;
  if (Array.isArray(parsed)) {
    items = parsed;
    isList = true;
  } else if (isPlainObject(parsed) && Array.isArray(parsed.Items) && Object.keys(parsed).every(isScanKey)) {
    items = parsed.Items;
    isList = true;
  } else if (isPlainObject(parsed) && Object.keys(parsed).length === 1 && isDynamoDbItem(parsed.Item)) {
    items = [parsed.Item];
    isList = false;
  } else {
    items = [parsed];
    isList = false;
  }
  const dynamo = items.length > 0 && items.every(isDynamoDbItem);
  const rows = items.map((item, index) => {
    const raw = dynamo ? unmarshallItem(item as Record<string, Record<string, unknown>>, index) : item;
    return { label: labelOf(raw, index), raw };
  });
  return { isList, format: dynamo ? 'dynamodb' : 'json', rows };
}

function isScanKey(key: string): boolean {
  return ['Items', 'Count', 'ScannedCount', 'LastEvaluatedKey', 'ConsumedCapacity'].includes(key);
}

function unmarshallItem(item: Record<string, Record<string, unknown>>, index: number): unknown {
  try {
    // biome-ignore lint/suspicious/noExplicitAny: util-dynamodb types the item as its own AttributeValue union
    return unmarshall(item as any);
  } catch (error) {
    throw new CliError(`row #${index + 1} is not valid DynamoDB JSON: ${(error as Error).message}`);
  }
}

/** Read a row file (`-` is stdin). Never echoes file content in errors: it may hold a private key. */
export async function readRowFile(
  path: string,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<RowFile> {
  let text: string;
  try {
    text = path === '-' ? await readStream(stdin) : await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') throw new CliError(`${path}: no such file`);
    if (code === 'EISDIR') throw new CliError(`${path}: is a directory, expected a JSON file`);
    throw new CliError(`${path}: cannot read (${code ?? (error as Error).message})`);
  }
  return rowsFromJson(parseJson(text, path));
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: string[] = [];
  stream.setEncoding('utf8');
  for await (const chunk of stream) chunks.push(chunk as string);
  return chunks.join('');
}

/** JSON.parse with an error that gives line and column but, unlike V8's message, no snippet of the text. */
export function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    if (position === undefined) throw new CliError(`${source}: not valid JSON`);
    const before = text.slice(0, Number(position));
    const line = before.split('\n').length;
    const column = Number(position) - before.lastIndexOf('\n');
    throw new CliError(`${source}: not valid JSON (line ${line}, column ${column})`);
  }
}

/** The verdict on one raw row. */
export type RowValidator = (raw: unknown) => Promise<ValidationResult>;

/** The row's schema only: for rows that carry neither a PGP key nor a KMS key (e.g. `connections new`). */
export const schemaOnly: RowValidator = async (raw) => validateConnection(raw);

/**
 * What the exporter of this deployment would refuse (domain/connection.ts validateConnectionAt):
 * the schema, the PGP key as of the context's clock, and the KMS allowlist of the environment.
 */
export async function deploymentValidator(ctx: CliContext): Promise<RowValidator> {
  const kmsKeyAllowlist = kmsKeyAllowlistOf(ctx);
  const { createConnectionChecks } = await import('../lambdas/adapters/connection-checks.ts');
  const checks = createConnectionChecks(kmsKeyAllowlist);
  return (raw) => validateConnectionAt(raw, checks, ctx.clock.now());
}

/** Validate every row; errors carry the row's label so each line says which row and field. */
export async function checkRows(rows: RawRow[], validate: RowValidator): Promise<CheckedRows> {
  const connections: Connection[] = [];
  const errors: RowError[] = [];
  for (const { label, raw } of rows) {
    const result = await validate(raw);
    if (result.ok) connections.push(result.connection);
    else errors.push(...result.errors.map((e) => ({ label, ...explain(raw, e) })));
  }
  return errors.length ? { ok: false, errors } : { ok: true, connections };
}

function explain(raw: unknown, error: FieldError): FieldError {
  const value = isPlainObject(raw) ? raw[error.field] : undefined;
  if (value instanceof Set) {
    return { ...error, message: `${error.message} (got a DynamoDB set; write it as a list, "L")` };
  }
  return error;
}

/** `field: message`, without repeating the field when the message already starts with it. */
export function formatRowError(error: RowError): string {
  const leaf = error.field.split('.').pop() ?? error.field;
  let message = error.message;
  if (message.startsWith(`${leaf}:`)) message = message.slice(leaf.length + 1).trimStart();
  else if (message.startsWith(`${leaf} `)) message = message.slice(leaf.length + 1);
  return `${error.label}: ${error.field}: ${message}`;
}

/** A row for printing: the PGP key is replaced by its length (it is long, and must never be echoed). */
export function redactConnection(row: Record<string, unknown>): Record<string, unknown> {
  if (typeof row.pgpPublicKey !== 'string') return row;
  return { ...row, pgpPublicKey: `<pgp public key: ${row.pgpPublicKey.length} chars>` };
}

/** A connection as DynamoDB JSON (lists stay lists, never sets), for `aws dynamodb put-item --item`. */
export function toDynamoDbJson(row: Record<string, unknown>): Record<string, unknown> {
  return marshall(row, { removeUndefinedValues: true, convertEmptyValues: false }) as Record<string, unknown>;
}

export function toJsonText(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** A connection given to a command as a stored row's id or as a row file not yet stored. */
export interface RowSource {
  connectionId: string;
  raw: unknown;
  /** False when the row came from a file: nothing is recorded on its (absent) export state. */
  stored: boolean;
}

/**
 * `conn_...` (not an existing file) reads the stored row; anything else is a row FILE (one row, plain or DynamoDB JSON), so an
 * operator can print policies and test a connection before it is stored.
 */
export async function rowFromIdOrFile(
  argument: string,
  repository: () => Promise<{ getRaw(id: string): Promise<Record<string, unknown> | undefined> }>,
): Promise<RowSource> {
  if (argument.startsWith('conn_') && !existsSync(argument)) {
    const raw = await (await repository()).getRaw(argument);
    if (!raw) throw new CliError(`connection ${argument} not found`);
    return { connectionId: argument, raw, stored: true };
  }
  const file = await readRowFile(argument);
  const [row, ...others] = file.rows;
  if (!row || others.length > 0) {
    throw new CliError(`${argument}: expected exactly one connection row, found ${file.rows.length}`);
  }
  const id = (row.raw as { connectionId?: unknown } | null)?.connectionId;
  return { connectionId: typeof id === 'string' ? id : '(no connectionId)', raw: row.raw, stored: false };
}
