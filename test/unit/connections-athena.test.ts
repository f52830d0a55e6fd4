/**
 * `connections athena ID`: the Athena table and view and the DuckDB statements for the
 * connection's own bucket and prefix (the DuckDB queries themselves run against real files in
 * test/integration/reading-exports.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { duckdbQuery } from '../../cli/query-kit.ts';
import { parseConnection } from '../../lambdas/domain/connection.ts';
import { InMemoryConnectionRepository } from '../support/in-memory-connection-repository.ts';

const ROW = {
  connectionId: 'conn_01KXATHENA0000000000000000',
  appId: 'acme-shop',
  appName: 'Acme Shop',
  dbName: 'Acme Shop',
  connectionName: 'Campaign-Events',
  folderPath: 'moengage/raw',
  bucketName: 'acme-marketing',
  bucketRegion: 'eu-west-1',
  events: { mode: 'ALL' },
  userAttributes: 'ALL',
  deviceAttributes: 'ALL',
  frequency: 'DAILY',
  status: 'ACTIVE',
  createdAt: '2026-11-01T00:00:00.000Z',
};

/** A row-valid armored key (the Connections row checks its armor, the exporter the key itself). */
const PUBLIC_KEY = `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${'xsBNBGU'.padEnd(64, 'A')}\n=wxyz\n-----END PGP PUBLIC KEY BLOCK-----\n`;

async function athena(argv: string[], rows: Record<string, unknown>[] = [ROW]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['connections', 'athena', ...argv], {
    env: { AWS_REGION: 'us-east-1' },
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    overrides: { connectionRepository: async () => new InMemoryConnectionRepository(rows) },
  });
  return { code, stdout, stderr };
}

describe('connections athena', () => {
  it("prints a table over the connection's prefix, partitioned by export_day with dd-MM-yyyy projection, and a view of the data files", async () => {
    const { code, stdout } = await athena([ROW.connectionId]);
    expect(code).toBe(0);
    const location = 's3://acme-marketing/moengage/raw_Campaign-Events/';
    expect(stdout).toContain('CREATE EXTERNAL TABLE IF NOT EXISTS `default`.`campaign_events` (');
    expect(stdout).toContain(`LOCATION '${location}'`);
    expect(stdout).toContain("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'");
    expect(stdout).toContain('PARTITIONED BY (export_day string)');
    expect(stdout).toContain("'projection.export_day.format' = 'dd-MM-yyyy'");
    expect(stdout).toContain(`'storage.location.template' = '${location}export_day=\${export_day}/'`);
    for (const column of ['app_name string', 'export_hour string', 'db_name string', 'event struct<'])
      expect(stdout).toContain(column);
    // The record's export_day is the partition, never also a column.
    expect(stdout.match(/^\s*export_day\s+string,?$/m)).toBeNull();
    expect(stdout).toContain('CREATE OR REPLACE VIEW `default`.`campaign_events_records` AS');
    expect(stdout).toContain(`WHERE "$path" LIKE '%/event_exports_%.json.gz';`);
    // The DuckDB part: the same query the integration test runs, over the S3 location.
    expect(stdout).toContain(duckdbQuery(parseConnection(ROW)));
    expect(stdout).toContain(`${location}export_day=*/event_exports_*.json.gz`);
    expect(stdout).toContain(`${location}export_day=*/event_exports_*.manifest.json`);
    expect(stdout).toContain("REGION 'eu-west-1'");
  });

  it('takes --database and --table, refusing names Glue would not accept', async () => {
    const ok = await athena([ROW.connectionId, '--database', 'exports', '--table', 'acme_events']);
    expect(ok.stdout).toContain('CREATE EXTERNAL TABLE IF NOT EXISTS `exports`.`acme_events` (');
    const bad = await athena([ROW.connectionId, '--table', 'Acme Events']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--table "Acme Events" must be 1-255 lower-case letters, digits or "_"');
  });

  it('warns that PGP-encrypted files must be decrypted first; a missing connection is an error', async () => {
    const pgp = await athena([ROW.connectionId], [{ ...ROW, pgpPublicKey: PUBLIC_KEY }]);
    expect(pgp.code).toBe(0);
    expect(pgp.stderr).toContain('writes PGP-encrypted files (.json.gz.gpg)');
    expect(pgp.stderr).toContain('decrypt them first');
    const missing = await athena(['conn_01KXNOPE00000000000000000']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('connection conn_01KXNOPE00000000000000000 not found');
  });

  it('--json gives the location, the Athena statements and the DuckDB query as fields', async () => {
    const { stdout } = await athena([ROW.connectionId, '--json']);
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out.location).toBe('s3://acme-marketing/moengage/raw_Campaign-Events/');
    expect(out.encrypted).toBe(false);
    expect(String(out.athena)).toContain('CREATE EXTERNAL TABLE');
    expect(out.duckdb).toBe(duckdbQuery(parseConnection(ROW)));
  });
});
