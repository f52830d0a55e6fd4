/**
 * The dependency direction of docs/contributing.md#dependency-direction: domain ← ports ← use
 * cases ← adapters, handlers, CLI, local engines, CDK. Checks every .ts file under lambdas/,
 * cli/, lib/, local/ and bin/, and checks the rule itself against graphs that break it.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type ImportEdge,
  importCycles,
  importGraph,
  importsOf,
  layerOf,
  wrongWayImports,
} from '../support/architecture.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('dependency direction of the repository', () => {
  const graph = importGraph(root);

  it('reads the imports of every source file', () => {
    expect(graph.files).toContain('lambdas/domain/manifest.ts');
    expect(graph.files).toContain('lib/stack.ts');
    expect(graph.files.every((f) => layerOf(f) !== undefined)).toBe(true);
    expect(graph.edges).toContainEqual({
      from: 'lambdas/usecases/preflight.ts',
      to: 'lambdas/ports/index.ts',
    });
  });

  it('has no wrong-way import', () => {
    expect(wrongWayImports(graph.edges)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(importCycles(graph.edges)).toEqual([]);
  });
});

describe('the dependency rule', () => {
  const edge = (from: string, to: string): ImportEdge => ({ from, to });

  it('refuses an inner layer importing an outer one, and adapters and use cases importing each other', () => {
    const problems = wrongWayImports([
      edge('lambdas/domain/manifest.ts', 'lambdas/ports/index.ts'),
      edge('lambdas/ports/index.ts', 'lambdas/usecases/export-window.ts'),
      edge('lambdas/usecases/preflight.ts', 'lambdas/adapters/pgp.ts'),
      edge('lambdas/adapters/eventbridge-notifier.ts', 'lambdas/usecases/export-window.ts'),
      edge('lambdas/exporter/handler.ts', 'cli/context.ts'),
      edge('lib/stack.ts', 'lambdas/adapters/pgp.ts'),
      edge('local/harness.ts', 'cli/context.ts'),
      edge('lambdas/usecases/x.ts', 'test/support/fixtures.ts'),
    ]);
    expect(problems).toHaveLength(8);
    expect(problems[0]).toBe(
      'lambdas/domain/manifest.ts (domain) imports lambdas/ports/index.ts (ports); domain may import only domain',
    );
    expect(problems[7]).toContain('test/support/fixtures.ts (no layer)');
  });

  it('allows imports that point inward or stay in their layer', () => {
    expect(
      wrongWayImports([
        edge('lambdas/ports/index.ts', 'lambdas/domain/manifest.ts'),
        edge('lambdas/usecases/preflight.ts', 'lambdas/ports/index.ts'),
        edge('lambdas/adapters/pgp.ts', 'lambdas/ports/index.ts'),
        edge('lambdas/runtime.ts', 'lambdas/usecases/preflight.ts'),
        edge('lambdas/exporter/handler.ts', 'lambdas/lambda-runtime.ts'),
        edge('cli/commands/demo.ts', 'local/demo.ts'),
        edge('lib/config.ts', 'lambdas/definitions.ts'),
        edge('bin/app.ts', 'lib/stack.ts'),
        { from: 'lambdas/usecases/x.ts', to: 'node:stream', package: true },
        { from: 'lambdas/domain/connection.ts', to: 'zod', package: true },
        { from: 'lambdas/adapters/pgp.ts', to: 'openpgp', package: true },
      ]),
    ).toEqual([]);
  });

  it('refuses an SDK in the domain, the ports and the use cases', () => {
    const problems = wrongWayImports([
      { from: 'lambdas/usecases/x.ts', to: '@aws-sdk/client-s3', package: true },
      { from: 'lambdas/domain/x.ts', to: 'openpgp/lightweight', package: true },
    ]);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain('imports the package @aws-sdk/client-s3');
  });

  it('finds cycles, of two files or more, and leaves chains alone', () => {
    expect(
      importCycles([
        edge('cli/command.ts', 'cli/context.ts'),
        edge('cli/context.ts', 'cli/command.ts'),
        edge('cli/a.ts', 'cli/b.ts'),
        edge('cli/b.ts', 'cli/c.ts'),
        edge('cli/c.ts', 'cli/a.ts'),
        edge('cli/main.ts', 'cli/command.ts'),
        edge('cli/main.ts', 'cli/errors.ts'),
      ]),
    ).toEqual([
      ['cli/command.ts', 'cli/context.ts'],
      ['cli/a.ts', 'cli/b.ts', 'cli/c.ts'],
    ]);
    expect(importCycles([edge('cli/a.ts', 'cli/b.ts'), edge('cli/b.ts', 'cli/c.ts')])).toEqual([]);
  });

  it('reads static, type-only, re-export and dynamic imports', () => {
    const source = [
      "import type { A } from './a.ts';",
      "import { b } from '../b.ts';",
      "export { c } from './c.ts';",
      "type D = import('./d.ts').D;",
      "const e = await import('./e.ts');",
    ].join('\n');
    expect(importsOf(source)).toEqual(['./a.ts', '../b.ts', './c.ts', './d.ts', './e.ts']);
  });
});
