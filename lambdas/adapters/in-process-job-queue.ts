import type { ExportJob, JobQueue } from '../ports/index.ts';

/**
 * The local stand-in for the SQS job queue: jobs are kept in order and handed
 * to the exporter in-process by whoever drains the queue (CLI, demo, simulation).
 */
export class InProcessJobQueue implements JobQueue {
  private readonly pending: ExportJob[] = [];

  async enqueue(jobs: ExportJob[]): Promise<void> {
    this.pending.push(...jobs);
  }

  /** Take every queued job (including continuations enqueued while draining) through `run`. */
  async drain(run: (job: ExportJob) => Promise<void>): Promise<number> {
    let count = 0;
    for (let job = this.pending.shift(); job; job = this.pending.shift()) {
      await run(job);
      count += 1;
    }
    return count;
  }

  get size(): number {
    return this.pending.length;
  }
}
