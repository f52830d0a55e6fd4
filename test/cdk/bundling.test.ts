/**
 * The one test that really bundles: esbuild from node_modules (no Docker, no
 * network) turns each handler into an ESM bundle with a source map.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Synthesized, synthesize } from './synth.ts';

let outdir: string;
let s: Synthesized;
beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'cdk-bundling-'));
  s = synthesize({}, { bundle: true, outdir });
}, 120_000);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('function bundles (esbuild, offline)', () => {
  it.each(['stager', 'dispatcher', 'exporter', 'connectionTest'] as const)(
    '%s is bundled to an ESM index.mjs with its source map and a handler export',
    (name) => {
      const fn = name === 'stager' ? s.stack.ingest.stager : s.stack.export[name];
      const code = s.template.toJSON().Resources[s.logicalId(fn.function)].Properties.Code;
      const assetDir = join(outdir, `asset.${(code.S3Key as string).replace(/\.zip$/, '')}`);
      expect(existsSync(join(assetDir, 'index.mjs')), assetDir).toBe(true);
      expect(statSync(join(assetDir, 'index.mjs.map')).size).toBeGreaterThan(0);
      const bundle = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
      expect(bundle.startsWith("import { createRequire } from 'node:module';")).toBe(true);
      expect(bundle).toMatch(/export\s*\{[^}]*\bas handler\b|export\s*\{[^}]*\bhandler\b/);
      expect(bundle).toContain('sourceMappingURL=index.mjs.map');
    },
  );
});
