/**
 * "Test connection" (docs/product.md#test-connection): check a connection the way the exporter will use it and
 * report each check with a fix. Validates the row, the PGP key and the KMS allowlist,
 * optionally describes the KMS key, then writes a small probe object (gzipped one-line
 * JSON, PGP-encrypted when a key is set) at `probeObjectKey` with the connection's exact
 * write settings (prefix, ExpectedBucketOwner, SSE-KMS, ACL, credentials).
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { type Connection, validateConnection } from '../domain/connection.ts';
import { type DiagnosisCode, explain, kmsKeyDisabled } from '../domain/diagnosis.ts';
import { checkKmsKey } from '../domain/kms-allowlist.ts';
import { probeObjectKey } from '../domain/object-keys.ts';
import type {
  Clock,
  ConnectionDiagnosis,
  ConnectionRepository,
  ExportSink,
  ExportStateStore,
  KmsKeyInspector,
  PayloadEncryption,
  SinkTarget,
} from '../ports/index.ts';
import { sinkTargetOf } from './export-window.ts';

export type CheckName = 'connection' | 'pgpPublicKey' | 'kmsKeyAllowlist' | 'kmsKey' | 'write';

export interface ConnectionCheck {
  name: CheckName;
  ok: boolean;
  /** A passed check with a caveat (e.g. the KMS key could not be described with our permissions). */
  warning?: boolean;
  /** Not run because an earlier check failed. */
  skipped?: boolean;
  /** Stable code of a failure, as stored on the connection's state. */
  code?: DiagnosisCode;
  message: string;
  fix?: string;
}

export interface ConnectionTestReport {
  connectionId: string | undefined;
  ok: boolean;
  testedAt: string;
  /** Key of the probe object, when one was written. */
  probeKey?: string;
  checks: ConnectionCheck[];
}

export interface TestConnectionDeps<K = unknown> {
  sink: ExportSink;
  pgp: PayloadEncryption<K>;
  kmsKeyAllowlist: readonly string[];
  /** Optional: describe the KMS key before writing. AccessDenied there is only a warning. */
  kmsKeys?: KmsKeyInspector | undefined;
  clock: Clock;
  /** The stable exporter role, for the policy statements printed in fixes. */
  exporterRoleArn?: string | undefined;
}

/** The diagnosis stored on the connection's state for a failing report: its first failed check, with the fix. */
export function diagnosisOf(report: ConnectionTestReport): ConnectionDiagnosis | undefined {
  const failed = report.checks.find((c) => !c.ok && !c.skipped);
  if (!failed) return undefined;
  return {
    code: failed.code ?? 'UNKNOWN',
    message: `test connection: ${failed.message}${failed.fix ? `: ${failed.fix}` : ''}`,
    at: report.testedAt,
  };
}

/** Where a stored connection's test reads its row and records its outcome. */
export interface StoredConnectionTestDeps<K = unknown> {
  connections: Pick<ConnectionRepository, 'getRaw'>;
  state: Pick<ExportStateStore, 'recordError' | 'recordPassedTest'>;
  test: TestConnectionDeps<K>;
}

/**
 * Record a stored connection's report on its export state (lastError), where the CLI and the
 * dashboard show it: a failing report's first failed check, or, for a passing one, that it passed
 * (which clears the error recorded before it). Returns the diagnosis recorded, if any.
 */
export async function recordTestOutcome(
  connectionId: string,
  report: ConnectionTestReport,
  state: StoredConnectionTestDeps['state'],
): Promise<ConnectionDiagnosis | undefined> {
  const diagnosis = diagnosisOf(report);
  if (diagnosis) await state.recordError(connectionId, diagnosis);
  else if (report.ok) await state.recordPassedTest(connectionId, new Date(report.testedAt));
  return diagnosis;
}

/**
 * "Test connection" of a stored row: the row → testConnection → the report, recorded on the
 * connection's state (recordTestOutcome). An unknown id is a failed report, not an exception.
 */
export async function testStoredConnection<K>(
  connectionId: string,
  deps: StoredConnectionTestDeps<K>,
): Promise<ConnectionTestReport> {
  const row = await deps.connections.getRaw(connectionId);
  if (!row) {
    return {
      connectionId,
      ok: false,
      testedAt: deps.test.clock.now().toISOString(),
      checks: [
        {
          name: 'connection',
          ok: false,
          message: `there is no connection ${connectionId}`,
          fix: 'check the connection id (s3-event-export connections list)',
        },
      ],
    };
  }
  const report = await testConnection(row, deps.test);
  await recordTestOutcome(connectionId, report, deps.state);
  return report;
}

function probeBody(connectionId: string, at: Date): Buffer {
  const line = `${JSON.stringify({
    probe: 'connection-test',
    connectionId,
    at: at.toISOString(),
    note: 'written by "test connection" of the event export; safe to delete',
  })}\n`;
  return gzipSync(Buffer.from(line, 'utf8'));
}

function describeWrite(connection: Connection, encrypted: boolean): string {
  const parts = [`region ${connection.bucketRegion}`];
  if (connection.bucketOwnerAccountId) parts.push(`ExpectedBucketOwner ${connection.bucketOwnerAccountId}`);
  parts.push(
    connection.kmsKeyArn ? `SSE-KMS with ${connection.kmsKeyArn}` : "the bucket's default encryption",
  );
  if (encrypted) parts.push('PGP-encrypted');
  if (connection.assumeRoleArn) parts.push(`as role ${connection.assumeRoleArn}`);
  return parts.join(', ');
}

/**
 * Run every check for one connection row (raw or validated). Never throws for a customer
 * problem: each one is a failed check with a message and, where there is one, a fix.
 */
export async function testConnection<K>(
  row: Connection | Record<string, unknown>,
  deps: TestConnectionDeps<K>,
): Promise<ConnectionTestReport> {
  const now = deps.clock.now();
  const rawId = (row as { connectionId?: unknown }).connectionId;
  const report = (checks: ConnectionCheck[], probeKey?: string): ConnectionTestReport => ({
    connectionId: typeof rawId === 'string' ? rawId : undefined,
    ok: checks.every((c) => c.ok),
    testedAt: now.toISOString(),
    ...(probeKey ? { probeKey } : {}),
    checks,
  });

  const validation = validateConnection(row);
  if (!validation.ok) {
    return report([
      {
        name: 'connection',
        ok: false,
        code: 'INVALID_CONNECTION',
        message: validation.errors.map((e) => `${e.field}: ${e.message}`).join('; '),
        fix: 'correct the fields named above (see docs/connection.schema.json)',
      },
    ]);
  }
  const connection = validation.connection;
  const checks: ConnectionCheck[] = [
    { name: 'connection', ok: true, message: 'the connection row is valid' },
  ];
  const context = { connection, exporterRoleArn: deps.exporterRoleArn, at: now };
  const target = sinkTargetOf(connection);

  let encryptionKey: K | undefined;
  if (connection.pgpPublicKey) {
    try {
      encryptionKey = await deps.pgp.loadEncryptionKey(connection.pgpPublicKey, now);
      const summary = encryptionKey as { fingerprint?: string; algorithm?: string; expiresAt?: Date };
      const expires = summary.expiresAt ? `, expires ${summary.expiresAt.toISOString()}` : '';
      checks.push({
        name: 'pgpPublicKey',
        ok: true,
        message: `files are encrypted to ${summary.fingerprint ?? 'the key'}${summary.algorithm ? ` (${summary.algorithm})` : ''}${expires}`,
      });
    } catch (error) {
      const e = explain(error, context);
      checks.push({
        name: 'pgpPublicKey',
        ok: false,
        code: e.code === 'UNKNOWN' ? 'INVALID_PGP_KEY' : e.code,
        message: e.code === 'INVALID_PGP_KEY' ? e.problem : 'pgpPublicKey could not be read',
        ...(e.fix ? { fix: e.fix } : {}),
      });
    }
  }

  if (connection.kmsKeyArn) {
    const refusal = checkKmsKey(connection.kmsKeyArn, deps.kmsKeyAllowlist);
    checks.push(
      refusal
        ? { name: 'kmsKeyAllowlist', ok: false, code: 'KMS_KEY_NOT_ALLOWLISTED', message: refusal.message }
        : { name: 'kmsKeyAllowlist', ok: true, message: `${connection.kmsKeyArn} is on the allowlist` },
    );
    if (!refusal && deps.kmsKeys) checks.push(await checkKmsKeyState(connection, target, deps, context));
  }

  const blocked = checks.some((c) => !c.ok);
  if (blocked) {
    checks.push({
      name: 'write',
      ok: false,
      skipped: true,
      message: 'the probe object was not written: fix the failed checks above first',
    });
    return report(checks);
  }

  const key = probeObjectKey(connection, now);
  try {
    const gzipped = Readable.from([probeBody(connection.connectionId, now)]);
    const body = encryptionKey === undefined ? gzipped : deps.pgp.encryptStream(encryptionKey, gzipped);
    const stored = await deps.sink.putObject(
      target,
      key,
      body,
      encryptionKey === undefined ? 'application/gzip' : 'application/pgp-encrypted',
    );
    checks.push({
      name: 'write',
      ok: true,
      message: `wrote s3://${connection.bucketName}/${key} (${stored.bytes} bytes; ${describeWrite(connection, encryptionKey !== undefined)})`,
    });
    return report(checks, key);
  } catch (error) {
    const e = explain(error, context);
    checks.push({
      name: 'write',
      ok: false,
      code: e.code,
      message: `could not write s3://${connection.bucketName}/${key}: ${e.problem}`,
      ...(e.fix ? { fix: e.fix } : {}),
    });
    return report(checks);
  }
}

async function checkKmsKeyState<K>(
  connection: Connection,
  target: SinkTarget,
  deps: TestConnectionDeps<K>,
  context: Parameters<typeof explain>[1],
): Promise<ConnectionCheck> {
  const keyArn = connection.kmsKeyArn as string;
  try {
    const key = await (deps.kmsKeys as KmsKeyInspector).describeKey(target, keyArn);
    if (key.enabled) return { name: 'kmsKey', ok: true, message: `${keyArn} is enabled` };
    const e = kmsKeyDisabled(context);
    return {
      name: 'kmsKey',
      ok: false,
      code: 'KMS_KEY_DISABLED',
      message: `${e.problem} (state ${key.keyState})`,
      ...(e.fix ? { fix: e.fix } : {}),
    };
  } catch (error) {
    const e = explain(error, context);
    if (e.code === 'KMS_ACCESS_DENIED') {
      // The documented key policy allows our role only via S3, so a direct DescribeKey may well be
      // refused; the probe write below is the real test of the key.
      return {
        name: 'kmsKey',
        ok: true,
        warning: true,
        message: `could not describe ${keyArn} directly (access denied; expected when the key policy allows our role only via S3): the probe write tests the key`,
        ...(e.fix ? { fix: `if the probe write fails too: ${e.fix}` } : {}),
      };
    }
    if (e.transient) {
      return {
        name: 'kmsKey',
        ok: true,
        warning: true,
        message: `could not describe ${keyArn} now (${e.problem}); the probe write tests the key`,
      };
    }
    return { name: 'kmsKey', ok: false, code: e.code, message: e.problem, ...(e.fix ? { fix: e.fix } : {}) };
  }
}
