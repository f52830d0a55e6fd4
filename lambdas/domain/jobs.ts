/**
 * Export jobs: what the dispatcher enqueues and the exporter runs: one connection, or a group of
 * one app's connections due at the same window end.
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
}

export type ExportJob = ConnectionExportJob | GroupExportJob;

/** The connections a job exports, in order. */
export function jobConnectionIds(job: ExportJob): string[] {
  return job.connectionIds ?? [job.connectionId];
}
