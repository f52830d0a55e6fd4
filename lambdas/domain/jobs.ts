/**
 * Export jobs: what the dispatcher enqueues and the exporter runs: one connection, a group of
 * one app's connections due at the same window end, or a batch of such groups.
 */

/** Fields of every job. */
export interface ExportJobBase {
  /** ISO instant: the window end the tick stands for. */
  windowEnd: string;
  /** `retry`: a member of a group job that failed, handed back to the queue alone. */
  reason: 'schedule' | 'continuation' | 'backfill' | 'manual' | 'retry';
}

/** One connection's job: continuations, retries, backfills, manual runs, a group of one. */
export interface ConnectionExportJob extends ExportJobBase {
  connectionId: string;
  connectionIds?: undefined;
  groups?: undefined;
}

/**
 * A group job: connections of one app due at one window end, exported together by one
 * invocation that reads the app's staged data once (usecases/export-job.ts). A group message
 * has no `connectionId`, so an exporter that predates groups refuses it (and SQS retries it)
 * instead of exporting only one member.
 */
export interface GroupExportJob extends ExportJobBase {
  connectionIds: string[];
  connectionId?: undefined;
  groups?: undefined;
}

/**
 * A batch job: the up-to-date connections of many apps due at one window end, one group (one
 * app's connections) per entry, run a few groups at a time by one invocation. Small windows
 * then cost one invocation and one message per batch, not per connection (docs/platform-scale.md).
 */
export interface BatchExportJob extends ExportJobBase {
  groups: string[][];
  connectionId?: undefined;
  connectionIds?: undefined;
}

export type ExportJob = ConnectionExportJob | GroupExportJob | BatchExportJob;

/** The connections a job exports, in order. */
export function jobConnectionIds(job: ExportJob): string[] {
  if (job.groups) return job.groups.flat();
  return job.connectionIds ?? [job.connectionId];
}
