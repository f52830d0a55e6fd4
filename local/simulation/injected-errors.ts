/** The errors the simulation injects, as the SDKs throw them, and a crash (local/simulation/faults.ts). */
import type { Readable } from 'node:stream';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { S3ServiceException } from '@aws-sdk/client-s3';

/** What the SDK throws for an S3 503 SlowDown. */
export function slowDownError(): S3ServiceException {
  return new S3ServiceException({
    name: 'SlowDown',
    $fault: 'server',
    $metadata: { httpStatusCode: 503 },
    message: 'Please reduce your request rate.',
  });
}

/** What the SDK throws when DynamoDB throttles. */
export function throttlingError(): ProvisionedThroughputExceededException {
  return new ProvisionedThroughputExceededException({
    message: 'The level of configured provisioned throughput for the table was exceeded.',
    $metadata: { httpStatusCode: 400 },
  });
}

/** A crash: the process is gone; nothing after this point of the attempt runs. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

/** Read part of a body, as an upload that fails midway does, and stop reading it. */
export async function consumePartly(body: Readable, chunks = 1): Promise<number> {
  let bytes = 0;
  let seen = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    seen += 1;
    if (seen >= chunks) break;
  }
  return bytes;
}

/** Errors the simulation itself injects (S3 503, DynamoDB throttling). */
export function isInjected(error: unknown): boolean {
  const name = (error as { name?: unknown } | undefined)?.name;
  return name === 'SlowDown' || name === 'ProvisionedThroughputExceededException';
}
