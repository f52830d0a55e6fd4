/**
 * The lint rules docs/contributing.md#lint promises are errors in biome.json: Biome, with the
 * repository's configuration, refuses a file that breaks each of them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lint-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each line breaks one rule (the test words are split so that this file itself passes).
const FOCUS = 'on' + 'ly';
const SKIP = 'sk' + 'ip';
const BROKEN = [
  "import { readFileSync } from 'node:fs';",
  "import { it } from 'vitest';",
  'export function f(): never {',
  '  const unused = 1;',
  '  throw new Error();',
  '}',
  `it.${SKIP}('is skipped', () => {});`,
  `it.${FOCUS}('is focused', () => {});`,
].join('\n');

interface Diagnostic {
  severity: string;
  category: string;
}

describe('lint rules', () => {
  it('refuses unused imports and variables, skipped and focused tests, and errors without a message', async () => {
    const file = join(dir, 'broken.test.ts');
    writeFileSync(file, `${BROKEN}\n`);
    const biome = join(root, 'node_modules', '.bin', 'biome');
    const output = await promisify(execFile)(
      biome,
      ['lint', `--config-path=${join(root, 'biome.json')}`, '--reporter=json', file],
      { cwd: root },
    ).then(
      () => {
        throw new Error('biome lint passed a file that breaks five rules');
      },
      (error: { stdout?: string }) => error.stdout ?? '',
    );
    const { diagnostics } = JSON.parse(output) as { diagnostics: Diagnostic[] };
    const errors = diagnostics.filter((d) => d.severity === 'error').map((d) => d.category);
    expect(new Set(errors)).toEqual(
      new Set([
        'lint/correctness/noUnusedImports',
        'lint/correctness/noUnusedVariables',
        'lint/suspicious/noSkippedTests',
        'lint/suspicious/noFocusedTests',
        'lint/suspicious/useErrorMessage',
      ]),
    );
  });
});
