import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { rowsFromJson } from '../../cli/connection-rows.ts';
import { connectionSchema, validateConnection } from '../../lambdas/domain/connection.ts';
import { EXAMPLE_CONNECTION, generatedDocs } from '../../scripts/gen-docs.ts';

const root = new URL('../../', import.meta.url);
const readDoc = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** Every field of a Connections row (docs/product.md#connections, plus the timestamps). */
const SPEC_FIELDS = [
  'connectionId',
  'appId',
  'appName',
  'dbName',
  'connectionName',
  'bucketName',
  'bucketRegion',
  'bucketOwnerAccountId',
  'folderPath',
  'events',
  'userAttributes',
  'deviceAttributes',
  'frequency',
  'pgpPublicKey',
  'kmsKeyArn',
  'assumeRoleArn',
  'externalId',
  'status',
  'startFrom',
  'createdAt',
  'updatedAt',
];

interface JsonSchemaNode {
  type?: string;
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  minLength?: number;
  maxLength?: number;
  items?: JsonSchemaNode;
  minItems?: number;
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  additionalProperties?: boolean;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
}

/** A JSON Schema 2020-12 validator; the date-time pattern zod publishes decides, not the format. */
function schemaAccepts(schema: JsonSchemaNode, value: unknown): boolean {
  return new Ajv2020({ strict: false, validateFormats: false }).validate(schema, value) as boolean;
}

describe('published connection docs', () => {
  it.each(generatedDocs().map((d) => [d.path, d.content]))(
    '%s is what npm run docs:gen writes',
    (path, content) => {
      expect(readDoc(path), `${path} is stale: run npm run docs:gen and commit`).toBe(content);
    },
  );

  it('the example row is valid and already normalized', () => {
    const example = JSON.parse(readDoc('docs/connection.example.json'));
    expect(validateConnection(example)).toEqual({ ok: true, connection: example });
    expect(example.events.mode).toBe('SELECTED');
    expect(example.frequency).toBe('DAILY');
    expect(example.folderPath).toBeTruthy();
    expect(Array.isArray(example.userAttributes)).toBe(true);
    expect(Array.isArray(example.deviceAttributes)).toBe(true);
  });

  it('the DynamoDB JSON example is the same row, with lists as lists (not sets)', () => {
    const file = rowsFromJson(JSON.parse(readDoc('docs/connection.example.dynamodb.json')));
    expect(file.format).toBe('dynamodb');
    expect(file.rows).toHaveLength(1);
    expect(file.rows[0]?.raw).toEqual(EXAMPLE_CONNECTION);
    expect(readDoc('docs/connection.example.dynamodb.json')).not.toMatch(/"SS"|"NS"/);
  });

  it('the JSON Schema lists every connection field, forbids others, and requires exactly the mandatory ones', () => {
    const schema = JSON.parse(readDoc('docs/connection.schema.json')) as JsonSchemaNode;
    expect(Object.keys(schema.properties ?? {}).sort()).toEqual([...SPEC_FIELDS].sort());
    expect(Object.keys(connectionSchema.shape).sort()).toEqual([...SPEC_FIELDS].sort());
    expect(schema.additionalProperties).toBe(false);
    // A field is required when the zod schema refuses it missing (no default, not optional).
    const mandatory = Object.entries(connectionSchema.shape)
      .filter(([, field]) => !field.safeParse(undefined).success)
      .map(([name]) => name);
    expect([...(schema.required ?? [])].sort()).toEqual(mandatory.sort());
    expect(schema.required).toEqual(
      expect.arrayContaining([
        'connectionId',
        'appId',
        'connectionName',
        'bucketName',
        'events',
        'frequency',
      ]),
    );
    expect(schema.required).not.toContain('folderPath');
    expect(schema.required).not.toContain('status');
  });

  it('the JSON Schema accepts the example row and refuses rows the validator refuses', () => {
    const schema = JSON.parse(readDoc('docs/connection.schema.json')) as JsonSchemaNode;
    expect(schemaAccepts(schema, EXAMPLE_CONNECTION)).toBe(true);
    const { folderPath: _omitted, ...withoutFolder } = EXAMPLE_CONNECTION;
    expect(schemaAccepts(schema, withoutFolder)).toBe(true);
    for (const bad of [
      { ...EXAMPLE_CONNECTION, bucketName: 'Upper' },
      { ...EXAMPLE_CONNECTION, frequency: 'HOURLY' },
      { ...EXAMPLE_CONNECTION, events: { mode: 'SELECTED', names: [] } },
      { ...EXAMPLE_CONNECTION, surprise: true },
      { ...withoutFolder, connectionName: undefined },
    ]) {
      const row = JSON.parse(JSON.stringify(bad));
      expect(validateConnection(row).ok).toBe(false);
      expect(schemaAccepts(schema, row), JSON.stringify(row)).toBe(false);
    }
  });
});
