/** What a simulation run takes (with its defaults) and what it returns (local/simulation.ts). */
import type { Frequency } from '../../lambdas/definitions.ts';
import type { Clock, StagingLedger, StagingStore } from '../../lambdas/ports/index.ts';
import type { LocalEngines } from '../engines.ts';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export interface SimulationOptions {
  engines: LocalEngines;
  seed: number;
  days: number;
  /**
   * Distinguishes this run's apps, connections, shards and bucket from other runs on the same
   * engines (lowercase letters, digits, '-'); default `s<seed>`.
   */
  runId?: string;
  /** Called after each scheduled tick: ticks run of the total scheduled, events generated so far. */
  onProgress?: (update: { done: number; total: number; events: number }) => void;
  /** Start of the simulated time (default: Sunday 2026-11-01 plus `seed % 24` hours). */
  start?: Date;
  /** Mean minutes between two Kinesis batches of one app (default 20). */
  batchIntervalMinutes?: number;
  /** Largest number of events in one batch (default 25). */
  maxBatchEvents?: number;
  /** Probability that a step (stager attempt, tick, export attempt) has a failure injected (default 0.3). */
  faultRate?: number;
  /**
   * The event source's maxRecordAge, in hours (default 6): batches older than it are dropped. The
   * deployment sets it to the stream's retention, so the simulated stream holds records this long.
   */
  maxRecordAgeHours?: number;
  /** Mean hours between two frequency changes of one connection (default 20). */
  frequencyChangeEveryHours?: number;
  /** Mean hours between two pauses of one connection (default 36). */
  pauseEveryHours?: number;
  /** Uncompressed size at which data parts are split (default 48 KiB, so windows have several parts). */
  partSizeBytes?: number;
  /** Operator drills: every row field wrong for a while, then fixed (local/operator-drills.ts; default on). */
  operatorDrills?: boolean;
  /** Progress lines (one per simulated day, and the injected faults at the end). */
  log?: (line: string) => void;
  /**
   * The CLI's command-line router, to run `s3-event-export stage` as the operator would
   * (local/simulation/cli-stage.ts). Handed in by the caller (the CLI's `sim` command, the tests):
   * local code does not depend on the CLI. Without it, no CLI stage runs are simulated.
   */
  cli?: CliEntryPoint;
}

/** `runCli` of cli/main.ts (or the router over the `stage` command), as the simulation calls it. */
export type CliEntryPoint = (
  argv: readonly string[],
  options: {
    env: NodeJS.ProcessEnv;
    clock: Clock;
    io: { stdout(text: string): void; stderr(text: string): void };
    overrides: { stagingLedger(): Promise<StagingLedger>; stagingStore(): Promise<StagingStore> };
  },
) => Promise<number>;

export interface SimulationSummary {
  connections: number;
  /** Distinct events generated (a replayed event is the same event). */
  events: number;
  /** Data files in the customer bucket. */
  files: number;
  /** Extra copies of expected events, plus exported events that were not expected at all. */
  duplicates: number;
  /** Expected events found in no data file. */
  missing: number;
}

export interface ConnectionOutcome {
  connectionId: string;
  frequency: Frequency;
  expected: number;
  exported: number;
  duplicates: number;
  unexpected: number;
  missing: number;
  files: number;
  manifests: number;
  watermark: string;
}

export interface SimulationResult extends SimulationSummary {
  /** Manifests read back (all connections). */
  manifests: number;
  /** Every violated check, in words (manifest, staging, record shape, catch-up, usage); empty when all hold. */
  problems: string[];
  /** How many failures of each kind were injected and actually fired. */
  injected: Record<string, number>;
  perConnection: ConnectionOutcome[];
  stagerAttempts: number;
  exportAttempts: number;
  /** Events the stream no longer held when the operator came to replay them (not expected anywhere). */
  lost: number;
  /** Simulated time at the end. */
  end: Date;
}

/** The options of one run with every default applied (instants and durations in epoch ms). */
export interface SimulationSettings {
  engines: LocalEngines;
  seed: number;
  days: number;
  runId: string;
  start: number;
  end: number;
  batchMeanMs: number;
  maxBatchEvents: number;
  faultRate: number;
  maxRecordAgeMs: number;
  frequencyChangeMeanMs: number;
  pauseMeanMs: number;
  partSizeBytes: number;
  operatorDrills: boolean;
  onProgress: (update: { done: number; total: number; events: number }) => void;
  log: (line: string) => void;
}

export function simulationSettings(options: SimulationOptions, runId: string): SimulationSettings {
  // A Sunday plus up to a day: even a one-day run crosses a Monday 00:00 (daily and weekly windows).
  const start = options.start?.getTime() ?? Date.parse('2026-11-01T00:00:00Z') + (options.seed % 24) * HOUR;
  return {
    engines: options.engines,
    seed: options.seed,
    days: options.days,
    runId,
    start,
    end: start + options.days * DAY,
    batchMeanMs: (options.batchIntervalMinutes ?? 20) * MINUTE,
    maxBatchEvents: options.maxBatchEvents ?? 25,
    faultRate: options.faultRate ?? 0.3,
    maxRecordAgeMs: (options.maxRecordAgeHours ?? 6) * HOUR,
    frequencyChangeMeanMs: (options.frequencyChangeEveryHours ?? 20) * HOUR,
    pauseMeanMs: (options.pauseEveryHours ?? 36) * HOUR,
    partSizeBytes: options.partSizeBytes ?? 48 * 1024,
    operatorDrills: options.operatorDrills ?? true,
    onProgress: options.onProgress ?? (() => undefined),
    log: options.log ?? (() => undefined),
  };
}

/** The customer bucket of a run (its staging bucket is this plus `-staging`). */
export function bucketOf(runId: string): string {
  return `sim-${runId}`.slice(0, 63);
}

/** The one-line summary the `sim` command prints. */
export function formatSummary(summary: SimulationSummary): string {
  return `sim: ${summary.connections} connections, ${summary.events} events, ${summary.files} files, ${summary.duplicates} duplicates, ${summary.missing} missing`;
}
