import { type ChildProcess, spawn } from 'node:child_process';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV, TABLES } from '../../lambdas/definitions.ts';
import { createTable, isPortListening, isProcessAlive, startLocalEngines } from '../../local/engines.ts';

/** Child processes of a test, killed after it even when it fails (their hooks then stop their JVM). */
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
});

function spawnEngineScript(script: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url).pathname,
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.push(child);
  return child;
}

/** Start the engines in a separate Node process; resolves once DynamoDB Local answers. */
async function enginesInChildProcess(): Promise<{ child: ChildProcess; jvmPid: number }> {
  const script =
    "import { startLocalEngines } from './local/engines.ts';" +
    'const e = await startLocalEngines(); console.log(JSON.stringify({ pid: e.dynamoPid })); setInterval(() => {}, 1000);';
  const child = spawnEngineScript(script);
  const jvmPid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /\{"pid":(\d+)\}/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`engine process exited early (${code})`)));
  });
  return { child, jvmPid };
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

describe('local engines', () => {
  it('create the tables and staging bucket, and leave no JVM or listening port after stop()', async () => {
    const engines = await startLocalEngines();
    const s3Port = Number(new URL(engines.s3Endpoint).port);
    const dynamoPort = Number(new URL(engines.dynamoEndpoint).port);
    try {
      expect(isProcessAlive(engines.dynamoPid)).toBe(true);
      expect(await isPortListening(s3Port)).toBe(true);

      const dynamo = new DynamoDBClient({
        region: engines.region,
        endpoint: engines.dynamoEndpoint,
        credentials: engines.credentials,
      });
      const connections = await dynamo.send(
        new DescribeTableCommand({ TableName: engines.tables.connections }),
      );
      expect(
        connections.Table?.GlobalSecondaryIndexes?.map((i) => [i.IndexName, i.Projection?.ProjectionType]),
      ).toEqual([['byFrequency', 'ALL']]);
      const state = await dynamo.send(new DescribeTableCommand({ TableName: engines.tables.exportState }));
      expect(state.Table?.KeySchema).toEqual([
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ]);
      // No TTL deletion by default: local clocks are simulated, DynamoDB Local expires by the wall clock.
      const ttl = await dynamo.send(
        new DescribeTimeToLiveCommand({ TableName: engines.tables.stagingLedger }),
      );
      expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).not.toBe('ENABLED');
      // As the stack defines it when asked for.
      await createTable(dynamo, TABLES[2], 'ttl-probe', { timeToLive: true });
      const probe = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: 'ttl-probe' }));
      expect(probe.TimeToLiveDescription?.AttributeName).toBe(TABLES[2].timeToLiveAttribute);
      expect(probe.TimeToLiveDescription?.TimeToLiveStatus).toBe('ENABLED');
      dynamo.destroy();

      const s3 = new S3Client({
        region: engines.region,
        endpoint: engines.s3Endpoint,
        forcePathStyle: true,
        credentials: engines.credentials,
      });
      await s3.send(new HeadBucketCommand({ Bucket: engines.stagingBucket }));
      await engines.createBucket('customer-bucket');
      await engines.createBucket('customer-bucket'); // twice is fine
      await s3.send(new PutObjectCommand({ Bucket: 'customer-bucket', Key: 'a/b.txt', Body: 'x' }));
      s3.destroy();

      expect(engines.env[ENV.connectionsTable]).toBe(engines.tables.connections);
      expect(engines.env[ENV.stagingBucket]).toBe(engines.stagingBucket);
      expect(engines.env['AWS_ENDPOINT_URL_S3']).toBe(engines.s3Endpoint);
      expect(engines.env['AWS_ENDPOINT_URL_DYNAMODB']).toBe(engines.dynamoEndpoint);
    } finally {
      await engines.stop();
    }
    await engines.stop(); // idempotent
    expect(isProcessAlive(engines.dynamoPid)).toBe(false);
    expect(await isPortListening(s3Port)).toBe(false);
    expect(await isPortListening(dynamoPort)).toBe(false);
  });

  it('kill DynamoDB Local when the process that started it is killed outright', async () => {
    const { child, jvmPid } = await enginesInChildProcess();
    expect(isProcessAlive(jvmPid)).toBe(true);
    child.kill('SIGKILL'); // no exit hook runs: the detached reaper must notice
    await waitUntilGone(jvmPid, 10_000);
    expect(isProcessAlive(jvmPid)).toBe(false);
  });

  it('stop DynamoDB Local on SIGTERM of the process that started it', async () => {
    const { child, jvmPid } = await enginesInChildProcess();
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    // The signal hook kills the JVM group before re-raising the signal.
    await waitUntilGone(jvmPid, 1_500);
    expect(isProcessAlive(jvmPid)).toBe(false);
  });

  it('fail with a clear message, and leave nothing running, when java is missing', async () => {
    const script =
      "import { startLocalEngines } from './local/engines.ts';" +
      'try { const e = await startLocalEngines(); console.log("started"); await e.stop(); } catch (e) { console.log(e.name + ": " + e.message); }';
    // Node is started by its absolute path; nothing else is on PATH, so no java.
    const child = spawnEngineScript(script, { ...process.env, PATH: '/nonexistent', JAVA_HOME: '' });
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(out).toContain('LocalEngineError: DynamoDB Local needs a Java runtime');
    expect(code).toBe(0); // s3rver was closed too: nothing kept the process alive
  });
});
