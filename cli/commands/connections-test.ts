import type { S3Client } from '@aws-sdk/client-s3';
import { ENV } from '../../lambdas/definitions.ts';
import { InvalidKmsKeyAllowlistError, parseKmsKeyAllowlist } from '../../lambdas/domain/kms-allowlist.ts';
import type { SinkTarget } from '../../lambdas/ports/index.ts';
import type { ConnectionCheck, ConnectionTestReport } from '../../lambdas/usecases/test-connection.ts';
import { type CliCommand, CliError, EXIT_FAILURE, onePositional } from '../command.ts';
import { rowFromIdOrFile, toJsonText } from '../connection-rows.ts';
import type { CliContext } from '../context.ts';
import { EXPORTER_ROLE_OPTION, exporterRoleArnOf } from './connections-policy.ts';

function allowlistOf(ctx: CliContext): string[] {
  try {
    return parseKmsKeyAllowlist(ctx.env[ENV.kmsKeyAllowlist]);
  } catch (error) {
    if (error instanceof InvalidKmsKeyAllowlistError) throw new CliError(error.message);
    throw error;
  }
}

function verdict(check: ConnectionCheck): string {
  if (check.skipped) return 'SKIP';
  if (!check.ok) return 'FAIL';
  return check.warning ? 'WARN' : 'PASS';
}

function printReport(ctx: CliContext, report: ConnectionTestReport, recorded: string | undefined): void {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  for (const check of report.checks) {
    ctx.print(`${verdict(check)}  ${check.name.padEnd(width)}  ${check.message}`);
    if (check.fix && (!check.ok || check.warning)) ctx.print(`      fix: ${check.fix}`);
  }
  const failed = report.checks.filter((c) => !c.ok && !c.skipped).length;
  if (report.ok) {
    ctx.print(`connection ${report.connectionId}: all ${report.checks.length} checks passed`);
  } else {
    ctx.print(
      `connection ${report.connectionId}: ${failed} check(s) failed${recorded ? `; diagnosis ${recorded} recorded on the connection's export state` : ''}`,
    );
  }
}

export const connectionsTest: CliCommand = {
  name: 'connections test',
  summary: "Write a probe object with the connection's exact settings and report each check with its fix",
  usage: 'ID|FILE [--exporter-role-arn ARN]',
  description:
    'Runs "test connection" (docs/product.md#test-connection): validates the row, the PGP key and the KMS key allowlist\n' +
    `(${ENV.kmsKeyAllowlist}), then writes a small gzipped probe (PGP-encrypted when the connection\n` +
    'has a key) under <prefix>_connection_test/ with ExpectedBucketOwner, bucket-owner-full-control\n' +
    'and SSE-KMS as an export would. With --exporter-role-arn the probe is written by a session of\n' +
    'the exporter role tagged with the connection id, exactly as the exporter writes; without it,\n' +
    "with your own credentials. A failing report of a stored row is recorded as the connection's\n" +
    'last error; a passing one clears the error recorded before it. FILE tests a row before it is\n' +
    'stored (connections new > row.json; test row.json; then connections put row.json --activate).\n' +
    'Exit 1 if any check fails.',
  options: { 'exporter-role-arn': EXPORTER_ROLE_OPTION },
  async run(args, ctx) {
    const source = await rowFromIdOrFile(
      onePositional(args, 'ID (a connectionId, conn_...) or FILE (a row not stored yet)'),
      () => ctx.connectionRepository(),
    );
    const { connectionId, raw: row } = source;
    const exporterRoleArn = exporterRoleArnOf(args, ctx);
    const kmsKeyAllowlist = allowlistOf(ctx);

    // Loaded here, not at the top: other commands start without the SDK and openpgp.
    const [
      { endpointFromEnv },
      { createS3ClientProvider },
      { S3ExportSink },
      { createKmsKeyInspector },
      pgp,
    ] = await Promise.all([
      import('../../lambdas/adapters/aws-clients.ts'),
      import('../../lambdas/adapters/s3-client-provider.ts'),
      import('../../lambdas/adapters/s3-export-sink.ts'),
      import('../../lambdas/adapters/kms-key-inspector.ts'),
      import('../../lambdas/adapters/pgp.ts'),
    ]);
    const { recordTestOutcome, testConnection } = await import('../../lambdas/usecases/test-connection.ts');

    const endpoint = ctx.settings.endpointUrl ?? endpointFromEnv('S3', ctx.env);
    if (!exporterRoleArn && !endpoint) {
      ctx.warn(
        `note: no --exporter-role-arn (or ${ENV.exporterRoleArn}): the probe is written with your own credentials, so a pass does not show that the bucket policy allows the exporter role`,
      );
    }
    const provider = createS3ClientProvider({
      region: ctx.requireRegion(),
      exporterRoleArn,
      endpoint,
      clock: ctx.clock,
    });
    const clients = new Set<S3Client>();
    const clientFor = async (target: SinkTarget) => {
      const client = await provider.clientFor(target);
      clients.add(client);
      return client;
    };
    try {
      const report = await testConnection(row as Record<string, unknown>, {
        sink: new S3ExportSink(clientFor),
        pgp: { loadEncryptionKey: pgp.loadEncryptionKey, encryptStream: pgp.encryptStream },
        kmsKeyAllowlist,
        // Same identity as the write; without the exporter role there is no session to describe the key as.
        kmsKeys: exporterRoleArn
          ? createKmsKeyInspector({ credentialsFor: (target) => provider.credentialsFor(target) })
          : undefined,
        clock: ctx.clock,
        exporterRoleArn,
      });
      const diagnosis = source.stored
        ? await recordTestOutcome(connectionId, report, await ctx.exportStateStore())
        : undefined;
      if (ctx.settings.json) {
        ctx.print(toJsonText({ ...report, ...(diagnosis ? { recordedDiagnosis: diagnosis } : {}) }));
      } else {
        printReport(ctx, report, diagnosis?.code);
      }
      return report.ok ? 0 : EXIT_FAILURE;
    } finally {
      for (const client of clients) client.destroy();
    }
  },
};
