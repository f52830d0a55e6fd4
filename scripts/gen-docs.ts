/**
 * Writes the published connection docs from the one schema in
 * lambdas/domain/connection.ts:
 *   docs/connection.schema.json           JSON Schema of a Connections row
 *   docs/connection.example.json          a complete valid row
 *   docs/connection.example.dynamodb.json the same row as DynamoDB JSON, for
 *     aws dynamodb put-item --table-name <Connections> --item file://docs/connection.example.dynamodb.json
 * Run: npm run docs:gen. A unit test fails when the committed files differ.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { toDynamoDbJson } from '../cli/connection-rows.ts';
import { type Connection, connectionJsonSchema, parseConnection } from '../lambdas/domain/connection.ts';

/** The example row: selected events, attribute projection, a folder path, daily files, SSE-KMS. */
export const EXAMPLE_CONNECTION: Connection = parseConnection({
  connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop Production',
  connectionName: 'daily_purchases',
  bucketName: 'acme-analytics-events',
  bucketRegion: 'ap-south-1',
  bucketOwnerAccountId: '123456789012',
  folderPath: 'moengage/exports',
  events: { mode: 'SELECTED', names: ['PURCHASE', 'ADD_TO_CART', 'MOE_EMAIL_SENT'] },
  userAttributes: ['first_name', 'city'],
  deviceAttributes: ['os', 'app_version'],
  frequency: 'DAILY',
  kmsKeyArn: 'arn:aws:kms:ap-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  status: 'ACTIVE',
  createdAt: '2026-11-01T00:00:00.000Z',
});

export interface GeneratedDoc {
  /** Path relative to the repository root. */
  path: string;
  content: string;
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export function generatedDocs(): GeneratedDoc[] {
  return [
    { path: 'docs/connection.schema.json', content: json(connectionJsonSchema()) },
    { path: 'docs/connection.example.json', content: json(EXAMPLE_CONNECTION) },
    {
      path: 'docs/connection.example.dynamodb.json',
      content: json(toDynamoDbJson({ ...EXAMPLE_CONNECTION })),
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = new URL('../', import.meta.url);
  for (const doc of generatedDocs()) {
    writeFileSync(new URL(doc.path, root), doc.content);
    console.log(`wrote ${doc.path}`);
  }
}
