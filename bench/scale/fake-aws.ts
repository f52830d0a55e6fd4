/**
 * In-memory S3, DynamoDB and SQS behind the REAL SDK clients (a custom request handler answers
 * the signed HTTP requests), so the project's real adapters (S3StagingStore, S3ExportSink,
 * DynamoStagingLedger, DynamoExportStateStore, DynamoConnectionRepository, SqsJobQueue) run
 * unchanged and every request is counted the way AWS bills it:
 *
 * - S3: one request per HTTP request — PUT/POST/LIST class (PutObject, CreateMultipartUpload,
 *   UploadPart, CompleteMultipartUpload, ListObjectsV2) and GET class (GetObject, each range
 *   one request; HeadObject).
 * - DynamoDB on-demand: write units = ceil(item KB) per written item, the larger of the item
 *   before and after (a failed condition still consumes them), x2 in a transaction; read units
 *   = ceil(size / 4 KB), x0.5 when eventually consistent; a Query is rounded per page.
 * - SQS: one request per 64 KB chunk of a call's payload.
 *
 * Latency model: every request takes `latencyMs`; requests issued while others are in flight
 * overlap (up to `maxSockets` at once, the SDK's default per client), so an invocation's request
 * time is `rounds x latencyMs`, a round opening when nothing is in flight (or the last one is full).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLES } from '../../lambdas/definitions.ts';
import { applyUpdate, evaluateCondition, type Item } from './dynamo-expressions.ts';

// ---------------------------------------------------------------- the meter

/** Billable units of one scope (a function, or a part of the work). */
export interface Usage {
  s3Put: number;
  s3Get: number;
  /** Of which HeadObject (GET class). */
  s3Head: number;
  /** Of which ListObjectsV2 (PUT class). */
  s3List: number;
  /** Bytes returned by GETs. */
  s3GetBytes: number;
  dynamoWriteUnits: number;
  dynamoReadUnits: number;
  dynamoRequests: number;
  sqsRequests: number;
  /** Requests of any kind. */
  requests: number;
  /** Latency rounds (see the module comment). */
  rounds: number;
}

export function emptyUsage(): Usage {
  return {
    s3Put: 0,
    s3Get: 0,
    s3Head: 0,
    s3List: 0,
    s3GetBytes: 0,
    dynamoWriteUnits: 0,
    dynamoReadUnits: 0,
    dynamoRequests: 0,
    sqsRequests: 0,
    requests: 0,
    rounds: 0,
  };
}

export function addUsage(into: Usage, from: Usage, factor = 1): Usage {
  for (const key of Object.keys(into) as (keyof Usage)[]) into[key] += from[key] * factor;
  return into;
}

export interface Measured<T> {
  value: T;
  usage: Usage;
  /** CPU of the invocation (user + system, all threads of the process), the fakes' own excluded. */
  cpuMicros: number;
  /** S3 requests by category (see Meter.byCategory). */
  categories: Map<string, { put: number; get: number; bytes: number }>;
}

/** `bucket:first-path-segment/*.ext`, or `bucket:*` for bucket-level requests (LIST). */
export function s3Category(bucket: string, key: string): string {
  if (!key) return `${bucket}:*`;
  const first = key.split('/')[0];
  const ext = /\.[a-z]+$/.exec(key)?.[0] ?? '';
  return `${bucket}:${first}/*${ext}`;
}

export class Meter {
  /** Where requests are counted now (set around each invocation). */
  current: Usage = emptyUsage();
  /** S3 requests of the current scope by `bucket:prefix/*.ext` (e.g. `staging:slots/*.index`). */
  byCategory = new Map<string, { put: number; get: number; bytes: number }>();
  /** CPU microseconds spent inside the fakes (not the Lambda's): subtracted from invocations. */
  fakeCpuMicros = 0;
  private inflight = 0;
  private inRound = 0;

  constructor(
    readonly maxSockets = 50,
    readonly latencyMs = 30,
  ) {}

  /** Count one request's latency; call `done` when it is answered. */
  begin(): () => void {
    if (this.inflight === 0 || this.inRound >= this.maxSockets) {
      this.current.rounds += 1;
      this.inRound = 0;
    }
    this.inflight += 1;
    this.inRound += 1;
    this.current.requests += 1;
    return () => {
      this.inflight -= 1;
    };
  }

  s3(bucket: string, key: string, kind: 'put' | 'get' | 'head' | 'list', bytes = 0): void {
    const category = s3Category(bucket, key);
    const row = this.byCategory.get(category) ?? { put: 0, get: 0, bytes: 0 };
    row.bytes += bytes;
    if (kind === 'put' || kind === 'list') {
      this.current.s3Put += 1;
      row.put += 1;
      if (kind === 'list') this.current.s3List += 1;
    } else {
      this.current.s3Get += 1;
      row.get += 1;
      if (kind === 'head') this.current.s3Head += 1;
      this.current.s3GetBytes += bytes;
    }
    this.byCategory.set(category, row);
  }

  /** Run `work` as one invocation's scope: returns its usage and the CPU it took (fakes excluded). */
  async measure<T>(work: () => Promise<T>): Promise<Measured<T>> {
    const saved = this.current;
    const savedCategories = this.byCategory;
    const usage = emptyUsage();
    const categories = new Map<string, { put: number; get: number; bytes: number }>();
    this.current = usage;
    this.byCategory = categories;
    const fakeBefore = this.fakeCpuMicros;
    const before = process.cpuUsage();
    try {
      const value = await work();
      const cpu = process.cpuUsage(before);
      const cpuMicros = Math.max(0, cpu.user + cpu.system - (this.fakeCpuMicros - fakeBefore));
      return { value, usage, cpuMicros, categories };
    } finally {
      this.current = saved;
      this.byCategory = savedCategories;
    }
  }
}

// ---------------------------------------------------------------- HTTP plumbing

interface HttpRequestLike {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

interface HttpResponseLike {
  statusCode: number;
  headers: Record<string, string>;
  body: Readable;
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof Readable || (typeof body === 'object' && Symbol.asyncIterator in body)) {
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Uint8Array | string>)
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
    return Buffer.concat(chunks);
  }
  throw new Error(`fake AWS: unsupported request body ${Object.prototype.toString.call(body)}`);
}

function respond(statusCode: number, body: Buffer | string = '', headers: Record<string, string> = {}) {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return {
    statusCode,
    headers: { 'content-length': String(bytes.byteLength), ...headers },
    body: Readable.from(bytes.byteLength ? [bytes] : []),
  };
}

type Serve = (request: HttpRequestLike, payload: Buffer) => HttpResponseLike | Promise<HttpResponseLike>;

/** A request handler for an SDK client: counts latency, times the fake's own CPU, answers next tick. */
function handlerFor(meter: Meter, serve: Serve) {
  return {
    handle: async (request: HttpRequestLike) => {
      const done = meter.begin();
      try {
        const payload = await bodyBytes(request.body);
        const before = process.cpuUsage();
        const response = await serve(request, payload);
        const cpu = process.cpuUsage(before);
        meter.fakeCpuMicros += cpu.user + cpu.system;
        // Answer asynchronously, as a network would: requests issued together overlap.
        await new Promise((resolve) => setImmediate(resolve));
        return { response: { ...response, reason: '' } };
      } finally {
        done();
      }
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
  };
}

const CREDENTIALS = { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake-secret' };

// ---------------------------------------------------------------- S3

interface StoredObject {
  body: Buffer;
  etag: string;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function s3Error(status: number, code: string): HttpResponseLike {
  return respond(
    status,
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code}</Message><RequestId>fake</RequestId></Error>`,
    { 'content-type': 'application/xml' },
  );
}

function queryValue(request: HttpRequestLike, name: string): string | undefined {
  const value = request.query?.[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value[0] ?? '';
  return value ?? '';
}

/** Buckets of objects; objects can also be put without a request (`seed`), e.g. replicas. */
export class FakeS3 {
  readonly buckets = new Map<string, Map<string, StoredObject>>();
  private readonly uploads = new Map<string, { bucket: string; key: string; parts: Map<number, Buffer> }>();

  constructor(readonly meter: Meter) {}

  client(): S3Client {
    return new S3Client({
      region: 'us-east-1',
      endpoint: 'http://fake-s3.local',
      forcePathStyle: true,
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: handlerFor(this.meter, (request, payload) =>
        this.serve(request, payload),
      ) as unknown as S3Client['config']['requestHandler'],
    });
  }

  bucket(name: string): Map<string, StoredObject> {
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = new Map();
      this.buckets.set(name, bucket);
    }
    return bucket;
  }

  /** Put an object without a request (not counted). */
  seed(bucket: string, key: string, body: Buffer): void {
    this.bucket(bucket).set(key, { body, etag: `"seed-${body.byteLength}"` });
  }

  get(bucket: string, key: string): Buffer | undefined {
    return this.buckets.get(bucket)?.get(key)?.body;
  }

  private serve(request: HttpRequestLike, payload: Buffer): HttpResponseLike {
    const path = decodeURIComponent(request.path.replace(/^\//, ''));
    const slash = path.indexOf('/');
    const bucketName = slash < 0 ? path : path.slice(0, slash);
    const key = slash < 0 ? '' : path.slice(slash + 1);
    const bucket = this.bucket(bucketName);
    const uploadId = queryValue(request, 'uploadId');
    switch (request.method) {
      case 'PUT': {
        this.meter.s3(bucketName, key, 'put');
        if (uploadId !== undefined) {
          const upload = this.uploads.get(uploadId);
          if (!upload) return s3Error(404, 'NoSuchUpload');
          upload.parts.set(Number(queryValue(request, 'partNumber')), payload);
          return respond(200, '', { etag: `"part-${payload.byteLength}"` });
        }
        const ifNoneMatch = request.headers['if-none-match'] ?? request.headers['If-None-Match'];
        if (ifNoneMatch === '*' && bucket.has(key)) return s3Error(412, 'PreconditionFailed');
        const etag = `"${createHash('md5').update(payload).digest('hex')}"`;
        bucket.set(key, { body: payload, etag });
        return respond(200, '', { etag });
      }
      case 'POST':
        this.meter.s3(bucketName, key, 'put');
        if (queryValue(request, 'uploads') !== undefined) {
          const id = randomUUID();
          this.uploads.set(id, { bucket: bucketName, key, parts: new Map() });
          return respond(
            200,
            `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${xmlEscape(bucketName)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
            { 'content-type': 'application/xml' },
          );
        }
        if (uploadId !== undefined) return this.complete(uploadId);
        throw new Error(`fake S3: unsupported POST ${request.path}`);
      case 'DELETE':
        // DeleteObject and AbortMultipartUpload are free.
        if (uploadId !== undefined) this.uploads.delete(uploadId);
        else bucket.delete(key);
        return respond(204);
      case 'HEAD': {
        this.meter.s3(bucketName, key, 'head');
        const object = bucket.get(key);
        if (!object) return respond(404);
        return respond(200, '', { 'content-length': String(object.body.byteLength), etag: object.etag });
      }
      case 'GET':
        if (key === '' || queryValue(request, 'list-type') !== undefined)
          return this.list(bucketName, request);
        return this.getObject(bucketName, key, request);
      default:
        throw new Error(`fake S3: unsupported ${request.method} ${request.path}`);
    }
  }

  private complete(uploadId: string): HttpResponseLike {
    const upload = this.uploads.get(uploadId);
    if (!upload) return s3Error(404, 'NoSuchUpload');
    this.uploads.delete(uploadId);
    const numbers = [...upload.parts.keys()].sort((a, b) => a - b);
    const body = Buffer.concat(numbers.map((n) => upload.parts.get(n)!));
    const etag = `"multipart-${numbers.length}"`;
    this.bucket(upload.bucket).set(upload.key, { body, etag });
    return respond(
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Bucket>${xmlEscape(upload.bucket)}</Bucket><Key>${xmlEscape(upload.key)}</Key><ETag>${etag}</ETag></CompleteMultipartUploadResult>`,
      { 'content-type': 'application/xml' },
    );
  }

  private getObject(bucketName: string, key: string, request: HttpRequestLike): HttpResponseLike {
    const object = this.buckets.get(bucketName)?.get(key);
    if (!object) {
      this.meter.s3(bucketName, key, 'get');
      return s3Error(404, 'NoSuchKey');
    }
    const range = request.headers['range'] ?? request.headers['Range'];
    const match = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (range && !match) throw new Error(`fake S3: unsupported range ${range}`);
    const from = match ? Number(match[1]) : 0;
    const to = match ? Math.min(Number(match[2]), object.body.byteLength - 1) : object.body.byteLength - 1;
    const bytes = object.body.subarray(from, to + 1);
    this.meter.s3(bucketName, key, 'get', bytes.byteLength);
    return respond(match ? 206 : 200, bytes, {
      etag: object.etag,
      'content-type': 'application/octet-stream',
      ...(match ? { 'content-range': `bytes ${from}-${to}/${object.body.byteLength}` } : {}),
    });
  }

  private list(bucketName: string, request: HttpRequestLike): HttpResponseLike {
    this.meter.s3(bucketName, '', 'list');
    const prefix = queryValue(request, 'prefix') ?? '';
    const after = queryValue(request, 'continuation-token');
    const keys = [...this.bucket(bucketName).keys()]
      .filter((k) => k.startsWith(prefix) && (after === undefined || k > after))
      .sort();
    const page = keys.slice(0, 1000);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const o = this.bucket(bucketName).get(k)!;
        return `<Contents><Key>${xmlEscape(k)}</Key><Size>${o.body.byteLength}</Size><ETag>${xmlEscape(o.etag)}</ETag><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join('');
    const next = truncated ? `<NextContinuationToken>${xmlEscape(page.at(-1)!)}</NextContinuationToken>` : '';
    return respond(
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>${xmlEscape(bucketName)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`,
      { 'content-type': 'application/xml' },
    );
  }
}

// ---------------------------------------------------------------- DynamoDB

type AttributeValue = Record<string, unknown>;

/** DynamoDB's item size: attribute names plus values (docs: "Item sizes and formats"). */
export function attributeValueSize(value: AttributeValue): number {
  const [type, v] = Object.entries(value)[0]!;
  switch (type) {
    case 'S':
      return Buffer.byteLength(v as string, 'utf8');
    case 'N': {
      const digits = String(v).replace(/^-/, '').replace('.', '').replace(/^0+/, '');
      return Math.ceil(Math.max(1, digits.length) / 2) + 1;
    }
    case 'B':
      return (v as Uint8Array).byteLength;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'M':
      return 3 + itemSize(v as Record<string, AttributeValue>);
    case 'L':
      return 3 + (v as AttributeValue[]).reduce((n, e) => n + 1 + attributeValueSize(e), 0);
    case 'SS':
    case 'NS':
      return (v as string[]).reduce((n, e) => n + attributeValueSize({ [type.slice(0, 1)]: e }), 0);
    default:
      throw new Error(`fake DynamoDB: attribute type ${type}`);
  }
}

export function itemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item))
    size += Buffer.byteLength(name, 'utf8') + attributeValueSize(value);
  return size;
}

function plainSize(item: Item | undefined): number {
  return item
    ? itemSize(marshall(item, { removeUndefinedValues: true }) as unknown as Record<string, AttributeValue>)
    : 0;
}

const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const readUnits = (bytes: number, consistent: boolean) =>
  Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);

class ConditionFailed extends Error {}

interface TableSchema {
  partitionKey: string;
  sortKey?: string;
  indexes: Map<string, { partitionKey: string; sortKey?: string }>;
}

/** One table per project table definition (lambdas/definitions.ts), by its logical name. */
export class FakeDynamo {
  readonly tables = new Map<string, Map<string, Item>>();
  /** Largest item written, per table (bytes): items must not grow with apps. */
  readonly largestItem = new Map<string, number>();
  private readonly schemas = new Map<string, TableSchema>();

  constructor(readonly meter: Meter) {
    for (const table of TABLES) {
      const schema: TableSchema = {
        partitionKey: table.partitionKey.name,
        ...('sortKey' in table ? { sortKey: table.sortKey.name } : {}),
        indexes: new Map(),
      };
      for (const index of 'globalSecondaryIndexes' in table ? table.globalSecondaryIndexes : [])
        schema.indexes.set(index.indexName, {
          partitionKey: index.partitionKey.name,
          ...('sortKey' in index ? { sortKey: index.sortKey.name } : {}),
        });
      this.schemas.set(table.logicalName, schema);
      this.tables.set(table.logicalName, new Map());
    }
  }

  documentClient(): DynamoDBDocumentClient {
    const client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://fake-dynamodb.local',
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestHandler: handlerFor(this.meter, (request, payload) =>
        this.serve(request, payload),
      ) as unknown as DynamoDBClient['config']['requestHandler'],
    });
    return DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
      unmarshallOptions: { wrapNumbers: false },
    });
  }

  private schema(table: string): TableSchema {
    const schema = this.schemas.get(table);
    if (!schema) throw new Error(`fake DynamoDB: no table ${table}`);
    return schema;
  }

  private keyOf(table: string, key: Item): string {
    const schema = this.schema(table);
    return JSON.stringify([key[schema.partitionKey], schema.sortKey ? key[schema.sortKey] : null]);
  }

  private serve(request: HttpRequestLike, payload: Buffer): HttpResponseLike {
    const target = (request.headers['x-amz-target'] ?? '').split('.')[1];
    const input = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    this.meter.current.dynamoRequests += 1;
    try {
      const output = this.operation(target ?? '', input);
      return respond(200, JSON.stringify(output), { 'content-type': 'application/x-amz-json-1.0' });
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      const transaction = target === 'TransactWriteItems';
      return respond(
        400,
        JSON.stringify({
          __type: `com.amazonaws.dynamodb.v20120810#${transaction ? 'TransactionCanceledException' : 'ConditionalCheckFailedException'}`,
          message: transaction
            ? 'Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed]'
            : 'The conditional request failed',
          ...(transaction ? { CancellationReasons: [{ Code: 'ConditionalCheckFailed' }] } : {}),
        }),
        { 'content-type': 'application/x-amz-json-1.0' },
      );
    }
  }

  private operation(target: string, input: Record<string, unknown>): Record<string, unknown> {
    const unwrap = (v: unknown) => (v ? unmarshall(v as Parameters<typeof unmarshall>[0]) : undefined);
    const context = {
      names: input['ExpressionAttributeNames'] as Record<string, string> | undefined,
      values: unwrap(input['ExpressionAttributeValues']),
    };
    const table = input['TableName'] as string;
    switch (target) {
      case 'GetItem': {
        const item = this.tables.get(table)?.get(this.keyOf(table, unwrap(input['Key'])!));
        this.meter.current.dynamoReadUnits += readUnits(plainSize(item), input['ConsistentRead'] === true);
        return item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {};
      }
      case 'PutItem':
        this.write(
          table,
          unwrap(input['Item'])!,
          input['ConditionExpression'] as string | undefined,
          context,
          1,
        );
        return {};
      case 'UpdateItem': {
        const after = this.update(table, input, context, 1);
        return input['ReturnValues'] === 'ALL_NEW'
          ? { Attributes: marshall(after, { removeUndefinedValues: true }) }
          : {};
      }
      case 'DeleteItem': {
        const key = this.keyOf(table, unwrap(input['Key'])!);
        const before = this.tables.get(table)?.get(key);
        this.meter.current.dynamoWriteUnits += writeUnits(plainSize(before));
        this.tables.get(table)?.delete(key);
        return {};
      }
      case 'TransactWriteItems':
        return this.transact(input['TransactItems'] as Record<string, Record<string, unknown>>[]);
      case 'BatchGetItem': {
        // Billed as the GetItems it holds (eventually consistent unless the request says otherwise).
        const responses: Record<string, unknown[]> = {};
        const requests = input['RequestItems'] as Record<
          string,
          { Keys: unknown[]; ConsistentRead?: boolean }
        >;
        for (const [name, request] of Object.entries(requests)) {
          responses[name] = [];
          for (const key of request.Keys) {
            const item = this.tables.get(name)?.get(this.keyOf(name, unwrap(key)!));
            this.meter.current.dynamoReadUnits += readUnits(plainSize(item), request.ConsistentRead === true);
            if (item) responses[name].push(marshall(item, { removeUndefinedValues: true }));
          }
        }
        return { Responses: responses, UnprocessedKeys: {} };
      }
      case 'Query':
        return this.query(table, input, context);
      default:
        throw new Error(`fake DynamoDB: unsupported operation ${target}`);
    }
  }

  private write(
    table: string,
    item: Item,
    condition: string | undefined,
    context: { names?: Record<string, string> | undefined; values?: Item | undefined },
    factor: number,
  ): void {
    const rows = this.tables.get(table)!;
    const key = this.keyOf(table, item);
    const before = rows.get(key);
    const size = plainSize(item);
    this.meter.current.dynamoWriteUnits += factor * writeUnits(Math.max(size, plainSize(before)));
    if (!evaluateCondition(condition, before ?? {}, context)) throw new ConditionFailed();
    rows.set(key, item);
    this.largestItem.set(table, Math.max(this.largestItem.get(table) ?? 0, size));
  }

  private update(
    table: string,
    input: Record<string, unknown>,
    context: { names?: Record<string, string> | undefined; values?: Item | undefined },
    factor: number,
  ): Item {
    const rows = this.tables.get(table)!;
    const keyItem = unmarshall(input['Key'] as Parameters<typeof unmarshall>[0]);
    const key = this.keyOf(table, keyItem);
    const before = rows.get(key);
    const after = { ...applyUpdate(input['UpdateExpression'] as string, before ?? {}, context), ...keyItem };
    const size = plainSize(after);
    this.meter.current.dynamoWriteUnits += factor * writeUnits(Math.max(size, plainSize(before)));
    if (!evaluateCondition(input['ConditionExpression'] as string | undefined, before ?? {}, context))
      throw new ConditionFailed();
    rows.set(key, after);
    this.largestItem.set(table, Math.max(this.largestItem.get(table) ?? 0, size));
    return after;
  }

  /** All or nothing: conditions are checked on a copy first; 2 write units per KB per item. */
  private transact(items: Record<string, Record<string, unknown>>[]): Record<string, unknown> {
    const snapshot = new Map([...this.tables].map(([name, rows]) => [name, new Map(rows)]));
    try {
      for (const entry of items) {
        const [kind, input] = Object.entries(entry)[0]!;
        const table = input['TableName'] as string;
        const context = {
          names: input['ExpressionAttributeNames'] as Record<string, string> | undefined,
          values: input['ExpressionAttributeValues']
            ? unmarshall(input['ExpressionAttributeValues'] as Parameters<typeof unmarshall>[0])
            : undefined,
        };
        if (kind === 'Put')
          this.write(
            table,
            unmarshall(input['Item'] as Parameters<typeof unmarshall>[0]),
            input['ConditionExpression'] as string | undefined,
            context,
            2,
          );
        else if (kind === 'Update') this.update(table, input, context, 2);
        else throw new Error(`fake DynamoDB: unsupported transaction item ${kind}`);
      }
      return {};
    } catch (error) {
      for (const [name, rows] of snapshot) this.tables.set(name, rows);
      throw error;
    }
  }

  private query(
    table: string,
    input: Record<string, unknown>,
    context: { names?: Record<string, string> | undefined; values?: Item | undefined },
  ): Record<string, unknown> {
    const indexName = input['IndexName'] as string | undefined;
    const schema = this.schema(table);
    const keys = indexName ? schema.indexes.get(indexName)! : schema;
    const rows = [...this.tables.get(table)!.values()]
      .filter((item) => evaluateCondition(input['KeyConditionExpression'] as string, item, context))
      .sort((a, b) => {
        const sa = String(keys.sortKey ? a[keys.sortKey] : '');
        const sb = String(keys.sortKey ? b[keys.sortKey] : '');
        return sa < sb ? -1 : sa > sb ? 1 : 0;
      });
    if (input['ScanIndexForward'] === false) rows.reverse();
    const start = input['ExclusiveStartKey']
      ? rows.findIndex(
          (r) =>
            this.keyOf(table, r) ===
            this.keyOf(table, unmarshall(input['ExclusiveStartKey'] as Parameters<typeof unmarshall>[0])),
        ) + 1
      : 0;
    // Pages of at most 1 MB; read units by the page's total size.
    const page: Item[] = [];
    let bytes = 0;
    let i = start;
    for (; i < rows.length && bytes < 1024 * 1024; i += 1) {
      page.push(rows[i]!);
      bytes += plainSize(rows[i]);
    }
    this.meter.current.dynamoReadUnits += readUnits(bytes, !indexName && input['ConsistentRead'] === true);
    const last = page.at(-1);
    return {
      Items: page.map((item) => marshall(item, { removeUndefinedValues: true })),
      Count: page.length,
      ...(i < rows.length && last
        ? {
            LastEvaluatedKey: marshall(
              Object.fromEntries(
                [schema.partitionKey, schema.sortKey, keys.partitionKey, keys.sortKey]
                  .filter((k): k is string => k !== undefined)
                  .map((k) => [k, last[k]]),
              ),
            ),
          }
        : {}),
    };
  }
}

// ---------------------------------------------------------------- SQS

/** SQS bills one request per 64 KB chunk of a call's payload. */
export class FakeSqs {
  readonly messages: string[] = [];

  constructor(readonly meter: Meter) {}

  client(): SQSClient {
    return new SQSClient({
      region: 'us-east-1',
      endpoint: 'http://fake-sqs.local',
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestHandler: handlerFor(this.meter, (request, payload) =>
        this.serve(request, payload),
      ) as unknown as SQSClient['config']['requestHandler'],
    });
  }

  private serve(request: HttpRequestLike, payload: Buffer): HttpResponseLike {
    const target = (request.headers['x-amz-target'] ?? '').split('.')[1];
    if (target !== 'SendMessageBatch') throw new Error(`fake SQS: unsupported ${target}`);
    const input = JSON.parse(payload.toString('utf8')) as { Entries: { Id: string; MessageBody: string }[] };
    const bytes = input.Entries.reduce((n, e) => n + Buffer.byteLength(e.MessageBody, 'utf8'), 0);
    this.meter.current.sqsRequests += Math.max(1, Math.ceil(bytes / (64 * 1024)));
    const successful = input.Entries.map((entry) => {
      this.messages.push(entry.MessageBody);
      return {
        Id: entry.Id,
        MessageId: randomUUID(),
        MD5OfMessageBody: createHash('md5').update(entry.MessageBody, 'utf8').digest('hex'),
      };
    });
    return respond(200, JSON.stringify({ Successful: successful, Failed: [] }), {
      'content-type': 'application/x-amz-json-1.0',
    });
  }
}
