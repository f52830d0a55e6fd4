import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type ExportJob, type JobQueue, jobConnectionIds } from '../ports/index.ts';

/**
 * The container's job queue: its SQS client is made on the first enqueue and kept (SDK clients
 * hold connection pools and credentials; one per container, not one per call). A function
 * without a queue URL fails only when it tries to enqueue.
 */
export function lazySqsJobQueue(createClient: () => SQSClient, queueUrl: string | undefined): JobQueue {
  let queue: SqsJobQueue | undefined;
  return {
    enqueue: async (jobs) => {
      if (!queueUrl) throw new Error('JOB_QUEUE_URL is not set: this function cannot enqueue export jobs');
      queue ??= new SqsJobQueue(createClient(), queueUrl);
      return queue.enqueue(jobs);
    },
  };
}

/** SendMessageBatch calls in flight at once. */
export const SEND_CONCURRENCY = 8;

/**
 * Export jobs as SQS messages (one per connection, or per group of one app's connections), sent
 * in batches of 10 (SQS's limit), several batches at once.
 */
export class SqsJobQueue implements JobQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(jobs: ExportJob[]): Promise<void> {
    const batches: ExportJob[][] = [];
    for (let i = 0; i < jobs.length; i += 10) batches.push(jobs.slice(i, i + 10));
    let next = 0;
    const lane = async () => {
      while (next < batches.length) {
        const batch = batches[next] as ExportJob[];
        next += 1;
        await this.send(batch);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SEND_CONCURRENCY, batches.length) }, lane));
  }

  private async send(batch: ExportJob[]): Promise<void> {
    const response = await this.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: batch.map((job, n) => ({ Id: String(n), MessageBody: JSON.stringify(job) })),
      }),
    );
    if (response.Failed?.length) {
      const failed = response.Failed.map((f) => {
        const job = batch[Number(f.Id)];
        return `${job ? jobConnectionIds(job).join('+') : '?'}: ${f.Code}`;
      }).join(', ');
      throw new Error(`could not enqueue ${response.Failed.length} export job(s): ${failed}`);
    }
  }
}
