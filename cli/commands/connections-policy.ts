import { ENV } from '../../lambdas/definitions.ts';
import { validateConnection } from '../../lambdas/domain/connection.ts';
import {
  type ConnectionPolicies,
  connectionPolicies,
  EXTERNAL_ID_PLACEHOLDER,
} from '../../lambdas/domain/policies.ts';
import {
  type CliCommand,
  CliError,
  type CommandArgs,
  EXIT_FAILURE,
  flag,
  onePositional,
  stringOption,
} from '../command.ts';
import { formatRowError, rowFromIdOrFile, toJsonText } from '../connection-rows.ts';
import type { CliContext } from '../context.ts';

const ROLE_ARN = /^arn:aws(-cn|-us-gov)?:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

/**
 * The stable exporter role from `--exporter-role-arn` or EXPORTER_ROLE_ARN. A typo would print a
 * policy that grants nobody, so anything but a role ARN is refused.
 */
export function exporterRoleArnOf(args: CommandArgs, ctx: CliContext): string | undefined {
  const value = stringOption(args, 'exporter-role-arn') || ctx.env[ENV.exporterRoleArn] || undefined;
  if (value !== undefined && !ROLE_ARN.test(value)) {
    throw new CliError(
      `exporter role ARN ${JSON.stringify(value)} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>): use the stack output ExporterRoleArn`,
    );
  }
  return value;
}

export const EXPORTER_ROLE_OPTION = {
  type: 'string',
  valueName: 'ARN',
  description: `the stack's exporter role (stack output ExporterRoleArn; env ${ENV.exporterRoleArn})`,
} as const;

function section(ctx: CliContext, title: string, document: unknown): void {
  ctx.print('');
  ctx.print(title);
  ctx.print(toJsonText(document));
}

function printPolicies(
  ctx: CliContext,
  connectionId: string,
  bucketName: string,
  kmsKeyArn: string | undefined,
  roleArn: string,
  policies: ConnectionPolicies,
): void {
  ctx.print(
    `connection ${connectionId} (${policies.mode} mode): what the bucket owner applies so that exporter role ${roleArn} can write for this connection only`,
  );
  if (policies.bucketPolicy) {
    section(
      ctx,
      `Bucket policy of s3://${bucketName} (merge the statement into the bucket's existing policy):`,
      policies.bucketPolicy,
    );
  }
  if (policies.roleTrustPolicy) {
    section(ctx, 'Trust policy of the role the customer gave us (assumeRoleArn):', policies.roleTrustPolicy);
  }
  if (policies.rolePermissionsPolicy) {
    section(ctx, 'Permissions policy of that role:', policies.rolePermissionsPolicy);
  }
  if (policies.kmsKeyPolicyStatement && kmsKeyArn) {
    section(
      ctx,
      `KMS key policy statement for ${kmsKeyArn} (add it to the key policy's Statement list):`,
      policies.kmsKeyPolicyStatement,
    );
  }
}

export const connectionsPolicy: CliCommand = {
  name: 'connections policy',
  summary: "Print the bucket policy / KMS key policy / trust policy a connection's bucket owner applies",
  usage: 'ID|FILE [--exporter-role-arn ARN] [--show-external-id]',
  description:
    "The exact documents of lambdas/domain/policies.ts for this connection, with the exporter role's\n" +
    'ARN filled in: the bucket policy statement (writes under the connection prefix only, only from\n' +
    'a session tagged with this connection id), the KMS key policy statement when kmsKeyArn is set\n' +
    "(usable only via S3 in the bucket's region), and in assume-role mode the role's trust and\n" +
    'permissions policies. The external id is shown as a placeholder unless --show-external-id.\n' +
    'FILE prints them for a row not stored yet, to send to the customer before the first export.',
  options: {
    'exporter-role-arn': EXPORTER_ROLE_OPTION,
    'show-external-id': {
      type: 'boolean',
      description: "print the connection's real external id in the trust policy (it is a secret)",
    },
  },
  async run(args, ctx) {
    const argument = onePositional(args, 'ID (a connectionId, conn_...) or FILE (a row not stored yet)');
    const roleArn = exporterRoleArnOf(args, ctx);
    if (!roleArn) {
      throw new CliError(
        `--exporter-role-arn is required (or set ${ENV.exporterRoleArn}): the policies name the stack's exporter role (stack output ExporterRoleArn)`,
      );
    }
    const { connectionId, raw } = await rowFromIdOrFile(argument, () => ctx.connectionRepository());
    const result = validateConnection(raw);
    if (!result.ok) {
      for (const e of result.errors) ctx.warn(formatRowError({ label: `connection ${connectionId}`, ...e }));
      ctx.warn(`connection ${connectionId}: fix the row first; no policy printed`);
      return EXIT_FAILURE;
    }
    const connection = result.connection;
    const externalId =
      flag(args, 'show-external-id') && connection.externalId
        ? connection.externalId
        : EXTERNAL_ID_PLACEHOLDER;
    const policies = connectionPolicies(connection, roleArn, externalId);
    if (ctx.settings.json) {
      ctx.print(toJsonText({ connectionId, exporterRoleArn: roleArn, ...policies }));
    } else {
      printPolicies(ctx, connectionId, connection.bucketName, connection.kmsKeyArn, roleArn, policies);
    }
    return 0;
  },
};
