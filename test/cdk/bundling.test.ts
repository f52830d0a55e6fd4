/**
 * The one test that really bundles: esbuild from node_modules (no Docker, no
 * network) turns each handler into an ESM bundle with a source map.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFrame } from '../../lambdas/domain/export-record.ts';
import type { WorkerJob, WorkerReply } from '../../lambdas/usecases/record-worker-pool.ts';
import { type Synthesized, synthesize } from './synth.ts';

let outdir: string;
let s: Synthesized;
beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'cdk-bundling-'));
  s = synthesize({}, { bundle: true, outdir });
}, 300_000); // five functions bundled with esbuild: minutes on a loaded two-core machine
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

function assetDirOf(
  name: 'stager' | 'dispatcher' | 'exporter' | 'connectionTest' | 'connectionSweep',
): string {
  const fn = name === 'stager' ? s.stack.ingest.stager : s.stack.export[name];
  const code = s.template.toJSON().Resources[s.logicalId(fn.function)].Properties.Code;
  return join(outdir, `asset.${(code.S3Key as string).replace(/\.zip$/, '')}`);
}

describe('function bundles (esbuild, offline)', () => {
  it.each(['stager', 'dispatcher', 'exporter', 'connectionTest', 'connectionSweep'] as const)(
    '%s is bundled to an ESM index.mjs with its source map and a handler export',
    (name) => {
      const assetDir = assetDirOf(name);
      expect(existsSync(join(assetDir, 'index.mjs')), assetDir).toBe(true);
      expect(statSync(join(assetDir, 'index.mjs.map')).size).toBeGreaterThan(0);
      const bundle = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
      expect(bundle.startsWith("import { createRequire } from 'node:module';")).toBe(true);
      expect(bundle).toMatch(/export\s*\{[^}]*\bas handler\b|export\s*\{[^}]*\bhandler\b/);
      expect(bundle).toContain('sourceMappingURL=index.mjs.map');
    },
  );

  it('ships the record worker beside the exporter bundle, and it runs a job from there', async () => {
    const assetDir = assetDirOf('exporter');
    // The handler looks for it next to its own module (record-worker-pool.ts, workerScript()).
    expect(readFileSync(join(assetDir, 'index.mjs'), 'utf8')).toContain('record-worker-thread.mjs');
    const worker = new Worker(join(assetDir, 'record-worker-thread.mjs'));
    try {
      const replies: WorkerReply[] = [];
      const next = () =>
        new Promise<WorkerReply>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        });
      replies.push(await next());
      const lines = [
        '{"event_uuid":"u1","event_name":"A","event_time":1}',
        '{"event_uuid":"u2","event_name":"B","event_time":2}',
      ];
      const job: WorkerJob = {
        id: 7,
        stagedKey: 'staging/k.ndjson.gz',
        body: gzipSync(`${lines.join('\n')}\n`),
        writer: {
          selection: {
            events: { mode: 'SELECTED', names: ['B'] },
            userAttributes: 'ALL',
            deviceAttributes: 'ALL',
          },
          frame: recordFrame({ appName: 'App', dbName: 'Db' }, new Date('2026-11-02T10:00:00Z')),
        },
        level: 6,
      };
      const reply = next();
      worker.postMessage(job);
      replies.push(await reply);
      expect(replies[0]).toEqual({ ready: true });
      const result = replies[1] as Extract<WorkerReply, { ok: true }>;
      expect([result.ok, result.id]).toEqual([true, 7]);
      expect(result.result.records).toBe(1);
      expect(Buffer.from(gunzipSync(result.result.gzip)).toString('utf8')).toContain('"event_uuid":"u2"');
    } finally {
      await worker.terminate();
    }
  });
});
