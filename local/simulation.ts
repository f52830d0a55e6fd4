/**
 * The exactly-once simulation (docs/simulation.md, docs/product.md#exactly-once-windows).
 *
 * A seeded run of N simulated days on the real local engines, driven by a ManualClock through a
 * LocalDriver, with failures injected at every step and operator drills, then a fault-free
 * catch-up and checks from the stored objects. One concern per module under local/simulation/:
 *
 * - options.ts — what a run takes and returns, with the defaults;
 * - world.ts — connections, arrivals, ticks and edits, the same on every run of a seed;
 * - faults.ts, injected-errors.ts — the faults, drawn per attempt, and the ports that inject them;
 * - stager.ts, exporter.ts, operator.ts, runbook.ts — the platform's actors (Kinesis, its event
 *   source and the stager; the dispatcher, SQS and the exporter; the operator's edits and drills,
 *   local/operator-drills.ts; the operator following the stager's runbooks after a drop);
 * - run.ts — wiring, the agenda of actions in time order, the catch-up;
 * - checks.ts — staging, then each connection with the demo's verification (local/verify.ts),
 *   its state, usage and history.
 */
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TABLES } from '../lambdas/definitions.ts';
import { createTable } from './engines.ts';
import type { SimulationOptions, SimulationResult } from './simulation/options.ts';
import { simulate } from './simulation/run.ts';

export {
  consumePartly,
  SimulatedCrash,
  slowDownError,
  throttlingError,
} from './simulation/injected-errors.ts';
export {
  type ConnectionOutcome,
  formatSummary,
  type SimulationOptions,
  type SimulationResult,
  type SimulationSummary,
} from './simulation/options.ts';

/**
 * Run one simulation. It creates its own three tables on the engines (named after the run), so
 * runs never see each other's connections — a dispatcher lists every connection of its table —
 * and several runs may share one engines instance, even concurrently; the tables are deleted at
 * the end.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  const runId = options.runId ?? `s${options.seed}`;
  if (!/^[a-z0-9-]{1,40}$/.test(runId)) throw new Error('runId must be 1-40 of a-z, 0-9 and "-"');
  const { engines } = options;
  const tables = {
    connections: `${engines.tables.connections}-${runId}`,
    exportState: `${engines.tables.exportState}-${runId}`,
    stagingLedger: `${engines.tables.stagingLedger}-${runId}`,
  };
  const dynamo = new DynamoDBClient({
    region: engines.region,
    endpoint: engines.dynamoEndpoint,
    credentials: engines.credentials,
  });
  try {
    await Promise.all([
      createTable(dynamo, TABLES[0], tables.connections),
      createTable(dynamo, TABLES[1], tables.exportState),
      createTable(dynamo, TABLES[2], tables.stagingLedger),
    ]);
    return await simulate(options, runId, tables);
  } finally {
    for (const name of Object.values(tables)) {
      await dynamo.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
    }
    dynamo.destroy();
  }
}
