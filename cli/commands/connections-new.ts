import { ulid } from 'ulid';
import type { ConnectionInput } from '../../lambdas/domain/connection.ts';
import { type CliCommand, EXIT_FAILURE, flag, noPositionals, stringOption } from '../command.ts';
import { checkRows, formatRowError, schemaOnly, toDynamoDbJson, toJsonText } from '../connection-rows.ts';

function list(value: string | undefined): string[] | undefined {
  return value
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export const connectionsNew: CliCommand = {
  name: 'connections new',
  summary: 'Print a new connection row (fresh conn_<ULID> id, createdAt now) to edit and put',
  usage: '[--app-id ID] [--name NAME] [--bucket BUCKET] [--bucket-region REGION] [--dynamodb] ...',
  description:
    'Every value not given by an option is a placeholder (my-app, my-export, my-export-bucket, ...).\n' +
    'The row is validated before it is printed. Typical use:\n' +
    '  s3-event-export connections new --app-id app1 --name daily_export --bucket acme-events > row.json\n' +
    '  s3-event-export connections policy row.json     # send to the customer\n' +
    '  s3-event-export connections test row.json       # once the customer applied it\n' +
    '  s3-event-export connections put row.json --activate\n' +
    'The row is PAUSED; put stores a new row PAUSED unless --activate.',
  options: {
    'app-id': { type: 'string', valueName: 'ID', description: 'app whose events are exported' },
    'app-name': { type: 'string', valueName: 'NAME', description: 'app_name written into every record' },
    'db-name': { type: 'string', valueName: 'NAME', description: 'db_name written into every record' },
    name: { type: 'string', valueName: 'NAME', description: 'connectionName (a folder of the object key)' },
    bucket: { type: 'string', valueName: 'BUCKET', description: 'customer bucket name' },
    'bucket-region': {
      type: 'string',
      valueName: 'REGION',
      description: 'bucket region (default: --region)',
    },
    'folder-path': {
      type: 'string',
      valueName: 'PATH',
      description: 'optional folder path, e.g. my_folder/sub',
    },
    frequency: {
      type: 'string',
      valueName: 'FREQ',
      description: 'FIFTEEN_MINUTES (default), DAILY or WEEKLY',
    },
    events: {
      type: 'string',
      valueName: 'A,B,...',
      description: 'export only these event names/codes (default: all events)',
    },
    dynamodb: { type: 'boolean', description: 'print DynamoDB JSON, for aws dynamodb put-item --item' },
  },
  async run(args, ctx) {
    noPositionals(args);
    const appId = stringOption(args, 'app-id') ?? 'my-app';
    const appName = stringOption(args, 'app-name') ?? (appId === 'my-app' ? 'My App' : appId);
    const folderPath = stringOption(args, 'folder-path');
    const names = list(stringOption(args, 'events'));
    const row: ConnectionInput = {
      connectionId: `conn_${ulid(ctx.clock.now().getTime())}`,
      appId,
      appName,
      dbName: stringOption(args, 'db-name') ?? appName,
      connectionName: stringOption(args, 'name') ?? 'my-export',
      bucketName: stringOption(args, 'bucket') ?? 'my-export-bucket',
      bucketRegion: stringOption(args, 'bucket-region') ?? ctx.settings.region ?? 'us-east-1',
      ...(folderPath !== undefined ? { folderPath } : {}),
      events: names ? { mode: 'SELECTED', names } : { mode: 'ALL' },
      userAttributes: 'ALL',
      deviceAttributes: 'ALL',
      frequency: (stringOption(args, 'frequency') ?? 'FIFTEEN_MINUTES') as ConnectionInput['frequency'],
      // Stored rows start paused until a test passes (connections put --activate).
      status: 'PAUSED',
      createdAt: ctx.clock.now().toISOString(),
    };
    const checked = await checkRows([{ label: `connection ${row.connectionId}`, raw: row }], schemaOnly);
    if (!checked.ok) {
      for (const error of checked.errors) ctx.warn(formatRowError(error));
      return EXIT_FAILURE;
    }
    const [connection] = checked.connections;
    ctx.print(toJsonText(flag(args, 'dynamodb') ? toDynamoDbJson({ ...connection }) : connection));
    return 0;
  },
};
