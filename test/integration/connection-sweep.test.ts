/**
 * The connection sweep (usecases/sweep-connections.ts) on DynamoDB Local: every row of the
 * Connections table is validated — also a row with a misspelt or missing `frequency`, which no
 * dispatcher query returns — with the exporter's verdict (KMS allowlist) and the namespace rule;
 * each refusal is recorded on the connection's export state.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDynamoDocumentClient } from '../../lambdas/adapters/aws-clients.ts';
import { createConnectionChecks } from '../../lambdas/adapters/connection-checks.ts';
import { DynamoConnectionRepository } from '../../lambdas/adapters/dynamo-connection-repository.ts';
import { DynamoExportStateStore } from '../../lambdas/adapters/dynamo-export-state-store.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import type { ConnectionDiagnosis } from '../../lambdas/ports/index.ts';
import { dispatchTick } from '../../lambdas/usecases/dispatch-tick.ts';
import { sweepConnections } from '../../lambdas/usecases/sweep-connections.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const NOW = new Date('2026-11-29T10:00:00.000Z');
const clock = { now: () => NOW };
const ALLOWED = 'arn:aws:kms:ap-south-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER = 'arn:aws:kms:ap-south-1:444455556666:key/99999999-12ab-34cd-56ef-1234567890ab';

let dynamo: ReturnType<typeof createDynamoDocumentClient>;
let connections: DynamoConnectionRepository;
let state: DynamoExportStateStore;

beforeAll(() => {
  const e = engines();
  dynamo = createDynamoDocumentClient({
    region: e.region,
    endpoint: e.dynamoEndpoint,
    credentials: e.credentials,
  });
  connections = new DynamoConnectionRepository(dynamo, e.tables.connections, e.tables.exportState);
  state = new DynamoExportStateStore(dynamo, e.tables.exportState);
});

const row = (n: number, patch: Record<string, unknown> = {}) => ({
  connectionId: `conn_sweep${String(n).padStart(21, '0')}`,
  appId: `app-${n}`,
  appName: 'App',
  dbName: 'DB',
  connectionName: `export-${n}`,
  bucketName: 'sweep-bucket',
  bucketRegion: 'ap-south-1',
  events: { mode: 'ALL' },
  frequency: 'DAILY',
  createdAt: '2026-11-01T00:00:00.000Z',
  ...patch,
});

/** As an operator's `aws dynamodb put-item` writes it: no validation, no claim. */
async function putDirectly(item: Record<string, unknown>): Promise<void> {
  await dynamo.send(new PutCommand({ TableName: engines().tables.connections, Item: item }));
}

async function lastErrorOf(connectionId: string): Promise<ConnectionDiagnosis | undefined> {
  const { Item } = await dynamo.send(
    new GetCommand({
      TableName: engines().tables.exportState,
      Key: { pk: `conn#${connectionId}`, sk: 'STATE' },
    }),
  );
  return Item?.lastError as ConnectionDiagnosis | undefined;
}

describe('sweepConnections', () => {
  it('reports every refused row, including those no frequency index returns, and records each on its state', async () => {
    const fine = row(1);
    await connections.put(parseConnection(fine));
    await connections.put(parseConnection(row(2, { kmsKeyArn: ALLOWED })));
    const misspelt = row(3, { frequency: 'DAYLY' });
    const { frequency: _none, ...missing } = row(4);
    const badKey = row(5, { kmsKeyArn: OTHER });
    const colliding = row(6, { connectionName: 'export-1', appId: 'other-app' }); // same prefix as row 1
    for (const item of [misspelt, missing, badKey, colliding]) await putDirectly(item);

    // The dispatcher's index queries never return the rows without a valid frequency.
    const ticks = await Promise.all(
      (['FIFTEEN_MINUTES', 'DAILY', 'WEEKLY'] as const).map((frequency) =>
        dispatchTick(
          // A settled tick: its window end is at or before now minus the settle delay.
          { frequency, scheduledTime: new Date(NOW.getTime() - 15 * 60_000) },
          { connections, state, jobs: { enqueue: async () => undefined }, clock },
          300_000,
        ),
      ),
    );
    const seen = ticks.flatMap((t) => t.invalidConnections);
    expect(seen).not.toContain(misspelt.connectionId);
    expect(seen).not.toContain(missing.connectionId);

    const result = await sweepConnections({
      connections,
      state,
      checks: createConnectionChecks([ALLOWED]),
      clock,
    });
    expect(result.rows).toBe(6);
    expect(
      Object.fromEntries(result.invalid.map((r) => [r.connectionId, [r.code, r.errors.map((e) => e.field)]])),
    ).toEqual({
      [misspelt.connectionId]: ['INVALID_CONNECTION', ['frequency']],
      [missing.connectionId]: ['INVALID_CONNECTION', ['frequency']],
      [badKey.connectionId]: ['INVALID_CONNECTION', ['kmsKeyArn']],
      [colliding.connectionId]: ['NAMESPACE_CONFLICT', ['connectionName']],
    });

    expect(await lastErrorOf(misspelt.connectionId)).toEqual({
      code: 'INVALID_CONNECTION',
      message: expect.stringContaining('frequency: frequency must be one of FIFTEEN_MINUTES, DAILY, WEEKLY'),
      at: NOW.toISOString(),
    });
    expect((await lastErrorOf(missing.connectionId))?.code).toBe('INVALID_CONNECTION');
    expect((await lastErrorOf(badKey.connectionId))?.message).toContain(
      `kmsKeyArn ${OTHER} is not on this deployment's KMS key allowlist`,
    );
    expect((await lastErrorOf(colliding.connectionId))?.message).toContain(
      `collides with connection ${fine.connectionId}`,
    );
    // Valid rows get nothing recorded.
    expect(await lastErrorOf(fine.connectionId)).toBeUndefined();
  });
});
