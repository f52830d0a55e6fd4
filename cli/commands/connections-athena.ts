import { validateConnection } from '../../lambdas/domain/connection.ts';
import { type CliCommand, CliError, onePositional, stringOption, UsageError } from '../command.ts';
import {
  athenaStatements,
  checkGlueName,
  connectionLocation,
  duckdbQuery,
  duckdbStatements,
  tableNameOf,
} from '../query-kit.ts';

function glueName(value: string | undefined, flag: string, fallback: string): string {
  try {
    return checkGlueName(value ?? fallback, flag);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export const connectionsAthena: CliCommand = {
  name: 'connections athena',
  summary: "Print the Athena table and the DuckDB query that read a connection's files in place",
  usage: 'ID [--database DB] [--table NAME]',
  description:
    'For the customer who receives the files: an Athena/Glue CREATE EXTERNAL TABLE over the\n' +
    "connection's prefix (OpenX JSON SerDe, the record's columns, export_day as a partition with\n" +
    'projection in the dd-MM-yyyy format of the keys) with a view that reads the data files only\n' +
    '(no manifest, no connection-test probe), and the equivalent DuckDB query, with the manifests\n' +
    'query to check completeness. See docs/reading-exports.md. PGP-encrypted files (.gpg) cannot be\n' +
    'read in place: decrypt them first (the statements then apply to the decrypted copy).',
  options: {
    database: { type: 'string', valueName: 'DB', description: 'Glue database (default default)' },
    table: {
      type: 'string',
      valueName: 'NAME',
      description: 'table name (default: the connection name in lower case)',
    },
  },
  async run(args, ctx) {
    const connectionId = onePositional(args, 'ID (a connectionId, conn_...)');
    const raw = await (await ctx.connectionRepository()).getRaw(connectionId);
    if (!raw) throw new CliError(`connection ${connectionId} not found`);
    const checked = validateConnection(raw);
    if (!checked.ok)
      throw new CliError(
        `connection ${connectionId} is invalid (${checked.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}); fix the row first`,
      );
    const connection = checked.connection;
    const database = glueName(stringOption(args, 'database'), '--database', 'default');
    const table = glueName(stringOption(args, 'table'), '--table', tableNameOf(connection));
    const athena = athenaStatements(connection, { database, table });
    if (ctx.settings.json) {
      ctx.print(
        JSON.stringify(
          {
            connectionId,
            location: connectionLocation(connection),
            encrypted: connection.pgpPublicKey !== undefined,
            athena,
            duckdb: duckdbQuery(connection),
          },
          null,
          2,
        ),
      );
      return 0;
    }
    if (connection.pgpPublicKey)
      ctx.warn(
        `connection ${connectionId} writes PGP-encrypted files (.json.gz.gpg): neither Athena nor DuckDB reads them in place; decrypt them first`,
      );
    ctx.print(athena);
    ctx.print(duckdbStatements(connection));
    return 0;
  },
};
