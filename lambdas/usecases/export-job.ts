/**
 * One export job as the exporter receives it: a single connection's (continuations, retries,
 * backfills, manual runs), or a group's — connections of one app due at one window end (see
 * dispatch-tick.ts), exported concurrently in one invocation that reads the app's staged data
 * once (shared-staged-reads.ts). Each member is its own `exportWindow` call: its lease, pinned
 * window, cursor, manifest and commit are exactly those of a single job.
 */

import { mapBounded } from '../domain/bounded.ts';
import type { ExportJob, StagingStore } from '../ports/index.ts';
import { type ExportDeps, type ExportOutcome, exportWindow, outOfTime } from './export-window.ts';
import { type SharedReadStats, SharedStagedReads } from './shared-staged-reads.ts';
import { countStagedReads, newStagedReadStats, type StagedReadStats } from './staged-read-stats.ts';

/** One connection's part of a job: its outcome, or the error its export threw. */
export interface MemberRun {
  connectionId: string;
  outcome?: ExportOutcome;
  error?: unknown;
}

export interface ExportJobRun {
  job: ExportJob;
  /** In the job's order; one for a single job. */
  members: MemberRun[];
  /** What the job read from the staging bucket, every member together. */
  stagedReads: StagedReadStats;
  /** How the members of a group shared their reads (group and batch jobs; summed over groups). */
  shared?: SharedReadStats;
  /**
   * Jobs handed back to the queue: members of a group or batch that failed or found their lease
   * held (alone), and the groups of a batch not started before the time budget ran low (a batch).
   */
  retried: ExportJob[];
  /** The message must go back to the queue (a batch item failure): SQS retries it whole. */
  redeliver: boolean;
}

export interface ExportJobOptions {
  /** K of the shared reader (shared-staged-reads.ts). */
  lookAhead?: number;
}

/**
 * Another exporter holds the lease. If it died, its lease expires long before SQS makes the
 * message visible again, so the job is retried instead of waiting for the next tick (a week for
 * WEEKLY). If it is alive, the retry finds the window committed and does nothing.
 */
export function retryLater(outcome: ExportOutcome): boolean {
  return outcome.status === 'lease-held';
}

function failed(member: MemberRun): boolean {
  return member.error !== undefined || (member.outcome !== undefined && retryLater(member.outcome));
}

async function exportMember(
  connectionId: string,
  windowEnd: Date,
  deps: ExportDeps,
  staging: StagingStore,
): Promise<MemberRun> {
  try {
    return { connectionId, outcome: await exportWindow({ connectionId, windowEnd }, { ...deps, staging }) };
  } catch (error) {
    return { connectionId, error };
  }
}

/**
 * Run a job. A member's failure never stops the others, and `executeExportJob` itself does not
 * throw for one: it is in the member's `error`.
 *
 * Retry semantics of a group: the members that failed (threw, or found their lease held) are
 * re-enqueued as single jobs, and the group message is acknowledged. Redelivering the whole
 * group instead would be correct too — a member that committed finds its watermark at the
 * window end and does nothing (two reads) — but a connection that fails for good (a deleted
 * bucket) would then drag its whole group through every redelivery into the DLQ, where the
 * alarm and the runbook's redrive would name N connections instead of the broken one, and a
 * member that continued in another job would be run again beside its continuation. As a single
 * job the failed member has exactly the old semantics: SQS retries it after the visibility
 * timeout, then moves it to the DLQ. Only when that enqueue fails is the group message itself
 * redelivered (safe, for the reason above).
 */
export async function executeExportJob(
  job: ExportJob,
  deps: ExportDeps,
  options: ExportJobOptions = {},
): Promise<ExportJobRun> {
  const windowEnd = new Date(job.windowEnd);
  const stagedReads = newStagedReadStats();
  const staging = countStagedReads(deps.staging, stagedReads);

  if (job.connectionId !== undefined) {
    const member = await exportMember(job.connectionId, windowEnd, deps, staging);
    return { job, members: [member], stagedReads, retried: [], redeliver: failed(member) };
  }

  const groups = job.groups ?? [job.connectionIds];
  const shared: SharedReadStats = { fetched: 0, shared: 0, unshared: 0, waits: 0, peakHeld: 0 };
  const notStarted: string[][] = [];
  const runs = await mapBounded(groups, BATCH_LANES, async (ids) => {
    // A batch stops starting groups when the budget runs low: the rest go back to the queue.
    if (outOfTime(deps)) {
      notStarted.push(ids);
      return [];
    }
    const run = await exportGroup(ids, windowEnd, deps, staging, options);
    addSharedStats(shared, run.stats);
    return run.members;
  });
  const members = runs.flat();

  const retry: ExportJob[] = members
    .filter(failed)
    .map((m) => ({ connectionId: m.connectionId, windowEnd: job.windowEnd, reason: 'retry' }));
  const rest: ExportJob[] = notStarted.length
    ? [{ groups: notStarted, windowEnd: job.windowEnd, reason: 'continuation' }]
    : [];
  let redeliver = false;
  if (retry.length + rest.length > 0) {
    try {
      if (!deps.jobs) throw new Error('no job queue to hand failed members back to');
      await deps.jobs.enqueue([...retry, ...rest]);
    } catch {
      redeliver = true;
    }
  }
  return { job, members, stagedReads, shared, retried: redeliver ? [] : [...retry, ...rest], redeliver };
}

/** Groups of a batch job run at once in one invocation (each group's members run concurrently). */
export const BATCH_LANES = 8;

function addSharedStats(into: SharedReadStats, stats: SharedReadStats): void {
  into.fetched += stats.fetched;
  into.shared += stats.shared;
  into.unshared += stats.unshared;
  into.waits += stats.waits;
  into.peakHeld = Math.max(into.peakHeld, stats.peakHeld);
}

/** One app's connections: alone, or concurrently with their staged reads shared. */
async function exportGroup(
  ids: string[],
  windowEnd: Date,
  deps: ExportDeps,
  staging: StagingStore,
  options: ExportJobOptions,
): Promise<{ members: MemberRun[]; stats: SharedReadStats }> {
  const reader = new SharedStagedReads(staging, options.lookAhead);
  if (ids.length === 1)
    return { members: [await exportMember(ids[0]!, windowEnd, deps, staging)], stats: reader.stats };
  // Every member joins before any starts, so none misses an object another fetched early.
  const views = ids.map(() => reader.join());
  const settled = await Promise.allSettled(
    ids.map(async (connectionId, i) => {
      const view = views[i]!;
      try {
        return await exportMember(connectionId, windowEnd, deps, view);
      } finally {
        // Finished, failed or returned early: it must never hold the others back.
        view.leave();
      }
    }),
  );
  const members = settled.map(
    (s, i): MemberRun => (s.status === 'fulfilled' ? s.value : { connectionId: ids[i]!, error: s.reason }),
  );
  return { members, stats: reader.stats };
}
