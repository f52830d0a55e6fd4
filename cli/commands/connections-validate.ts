import { type CliCommand, EXIT_FAILURE, onePositional } from '../command.ts';
import {
  checkRows,
  deploymentValidator,
  formatRowError,
  readRowFile,
  redactConnection,
  toJsonText,
} from '../connection-rows.ts';

export const connectionsValidate: CliCommand = {
  name: 'connections validate',
  summary: 'Check connection row(s) in a JSON or DynamoDB JSON file; print them normalized',
  usage: 'FILE',
  description:
    'FILE (or - for stdin) holds one row or an array of rows, as plain JSON or as the DynamoDB JSON of\n' +
    '`aws dynamodb put-item --item file://FILE` (also the output of get-item / scan). Valid: prints the\n' +
    'normalized row(s) (defaults filled in, PGP key shown as its length) and exits 0. A row is checked\n' +
    'as the exporter checks it: the schema, the PGP key as of now (parsed, not expired or revoked,\n' +
    'strong enough) and the KMS key against KMS_KEY_ALLOWLIST. Invalid: prints\n' +
    '`connection <id|#n>: <field>: <message>` for every error and exits 1.',
  async run(args, ctx) {
    const file = await readRowFile(
      onePositional(args, 'FILE (a JSON file with one connection row or an array)'),
    );
    const checked = await checkRows(file.rows, await deploymentValidator(ctx));
    if (!checked.ok) {
      if (ctx.settings.json) ctx.print(toJsonText({ valid: false, errors: checked.errors }));
      else for (const error of checked.errors) ctx.warn(formatRowError(error));
      return EXIT_FAILURE;
    }
    const rows = checked.connections.map(redactConnection);
    ctx.print(toJsonText(file.isList ? rows : rows[0]));
    return 0;
  },
};
