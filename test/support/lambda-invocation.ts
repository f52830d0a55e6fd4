/**
 * Running the real Lambda handlers in a test: a Lambda context, the SQS event the exporter
 * receives, and what a handler prints (Powertools logs and EMF metrics: one JSON object a line).
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { expect, vi } from 'vitest';

/**
 * SQS and EventBridge have no local emulator: aws-sdk-client-mock stubs that accept every
 * message and event (a test reads what was sent from the stubs' calls). Call at the top of a
 * test file; `restore()` both in afterAll.
 */
export function acceptingSqsAndEventBridge() {
  const sqs = mockClient(SQSClient);
  const eventBridge = mockClient(EventBridgeClient);
  sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((entry) => ({
      Id: entry.Id,
      MessageId: `m-${entry.Id}`,
      MD5OfMessageBody: 'x',
    })),
    Failed: [],
  }));
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
  return { sqs, eventBridge };
}

export function lambdaContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:111122223333:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: `req-${functionName}-0001`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/11/29/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => 900_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Runs `fn` with stdout and stderr captured (and not printed); returns what was written. */
export async function captured<T>(fn: () => Promise<T>): Promise<{ result: T; output: string }> {
  let output = '';
  const capture = (chunk: unknown) => {
    output += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  try {
    return { result: await fn(), output };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** The SQS event delivering `bodies` to the exporter (message ids `msg-0`, `msg-1`, ...). */
export function sqsEvent(bodies: string[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `msg-${i}`,
      receiptHandle: `receipt-${i}`,
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 'AIDAEXAMPLE',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: 'not-checked',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:111122223333:s3-event-export-jobs',
      awsRegion: 'us-east-1',
    })),
  };
}

/** Parsed log lines; fails the test on any line that is not a JSON object. */
export function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new Error(`log line is not JSON: ${line.slice(0, 200)}`);
      }
      expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)).toBe(true);
      return parsed as Record<string, unknown>;
    });
}
