/**
 * An S3Client whose HTTP layer answers every request with one canned S3 response, so the
 * SDK's own deserializer builds the error (status, headers, XML body fields) exactly as it
 * does for AWS — e.g. the 301 PermanentRedirect with `x-amz-bucket-region`.
 */
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';

export interface CannedResponse {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

export function s3ErrorXml(code: string, message: string, extra: Record<string, string> = {}): string {
  const fields = Object.entries(extra)
    .map(([k, v]) => `<${k}>${v}</${k}>`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${fields}<RequestId>4442587FB7D0A2F9</RequestId><HostId>host-id</HostId></Error>`;
}

export function s3ClientAnswering(response: CannedResponse, region = 'ap-south-1'): S3Client {
  return new S3Client({
    region,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
    maxAttempts: 1,
    requestHandler: {
      handle: async () => ({
        response: {
          statusCode: response.statusCode,
          reason: '',
          headers: { 'content-type': 'application/xml', ...(response.headers ?? {}) },
          body: Readable.from([Buffer.from(response.body ?? '', 'utf8')]),
        },
      }),
    } as unknown as S3Client['config']['requestHandler'],
  });
}
