/**
 * A schedule tick: find the ACTIVE connections of a frequency (GSI query),
 * fix the window end from the tick's *scheduled* time, and enqueue one export
 * job per connection. Measures export lag for the lag alarms.
 */
import type { Frequency } from '../definitions.ts';
import { validateConnection } from '../domain/connection.ts';
import { exportLagMs, periodMs, windowEndForTick } from '../domain/windows.ts';
import type { Clock, ConnectionRepository, ExportJob, ExportStateStore, JobQueue } from '../ports/index.ts';

export interface TickInput {
  frequency: Frequency;
  /** The schedule's scheduled time (not the invocation's clock). */
  scheduledTime: Date;
}

export interface DispatchDeps {
  connections: ConnectionRepository;
  state: ExportStateStore;
  jobs: JobQueue;
  clock: Clock;
}

export interface LaggingConnection {
  connectionId: string;
  lagSeconds: number;
}

export interface TickResult {
  windowEnd: Date;
  jobs: ExportJob[];
  /** Ids (or row positions) of rows that failed validation; their errors are recorded on their state. */
  invalidConnections: string[];
  inactiveConnections: number;
  /** Largest lag over the frequency's active connections, in seconds (0 when all are on time). */
  maxLagSeconds: number;
  /** Connections more than one period (plus settle delay) behind. */
  lagging: LaggingConnection[];
}

export async function dispatchTick(
  input: TickInput,
  deps: DispatchDeps,
  settleDelayMs: number,
): Promise<TickResult> {
  const windowEnd = windowEndForTick(input.frequency, input.scheduledTime);
  const now = deps.clock.now();
  const rows = await deps.connections.listRawByFrequency(input.frequency);
  const result: TickResult = {
    windowEnd,
    jobs: [],
    invalidConnections: [],
    inactiveConnections: 0,
    maxLagSeconds: 0,
    lagging: [],
  };

  for (const [position, raw] of rows.entries()) {
    const validation = validateConnection(raw);
    if (!validation.ok) {
      const id = typeof raw.connectionId === 'string' ? raw.connectionId : `row#${position}`;
      result.invalidConnections.push(id);
      if (typeof raw.connectionId === 'string') {
        await deps.state.recordError(raw.connectionId, {
          code: 'INVALID_CONNECTION',
          message: `the connection row is invalid and is not exported until fixed: ${validation.errors
            .map((e) => `${e.field}: ${e.message}`)
            .join('; ')}`,
          at: now.toISOString(),
          windowEnd: windowEnd.toISOString(),
        });
      }
      continue;
    }
    const connection = validation.connection;
    if (connection.status !== 'ACTIVE') {
      result.inactiveConnections += 1;
      continue;
    }
    const state = await deps.state.get(connection.connectionId);
    if (state) {
      const lagMs = exportLagMs(input.frequency, state.watermark, now);
      const lagSeconds = Math.round(lagMs / 1000);
      result.maxLagSeconds = Math.max(result.maxLagSeconds, lagSeconds);
      if (lagMs > periodMs(input.frequency) + settleDelayMs) {
        result.lagging.push({ connectionId: connection.connectionId, lagSeconds });
      }
      if (state.watermark.getTime() >= windowEnd.getTime() && !state.pendingWindowEnd) continue;
    }
    result.jobs.push({
      connectionId: connection.connectionId,
      windowEnd: windowEnd.toISOString(),
      reason: 'schedule',
    });
  }

  if (result.jobs.length > 0) await deps.jobs.enqueue(result.jobs);
  return result;
}
