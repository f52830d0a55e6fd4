/**
 * The dependency rule of docs/contributing.md#dependency-direction as code: which layer a file
 * belongs to, which layers and packages it may import, and the import graph of the repository's
 * own TypeScript (parsed with the TypeScript compiler's import scanner: static, type-only,
 * re-export and dynamic imports alike).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import ts from 'typescript';

export type Layer =
  | 'domain'
  | 'ports'
  | 'usecases'
  | 'adapters'
  | 'lambdas'
  | 'local'
  | 'cli'
  | 'lib'
  | 'bin';

/** The layers each layer may import (its own included). Everything else is a wrong-way import. */
export const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  domain: ['domain'],
  ports: ['domain', 'ports'],
  usecases: ['domain', 'ports', 'usecases'],
  adapters: ['domain', 'ports', 'adapters'],
  lambdas: ['domain', 'ports', 'usecases', 'adapters', 'lambdas'],
  local: ['domain', 'ports', 'usecases', 'adapters', 'lambdas', 'local'],
  cli: ['domain', 'ports', 'usecases', 'adapters', 'lambdas', 'local', 'cli'],
  lib: ['domain', 'lib'],
  bin: ['cli', 'lib', 'bin'],
};

/** Layers that hold the product's rules: they import no SDK, only Node built-ins and these packages. */
const INNER_LAYERS: ReadonlySet<Layer> = new Set(['domain', 'ports', 'usecases']);
const INNER_PACKAGES: ReadonlySet<string> = new Set(['zod']);
/**
 * Packages single inner files may import besides. record-worker-pool.ts bundles its worker script with
 * esbuild when it runs from the TypeScript sources (tests, CLI); the Lambda bundle never loads it.
 */
const INNER_PACKAGE_EXCEPTIONS: Readonly<Record<string, readonly string[]>> = {
  'lambdas/usecases/record-worker-pool.ts': ['esbuild'],
};

/** The directories whose .ts files the rule covers. */
export const SOURCE_DIRS = ['lambdas', 'cli', 'lib', 'local', 'bin'] as const;

/** The layer of a repository path (posix, relative to the root), or undefined when none applies. */
export function layerOf(path: string): Layer | undefined {
  if (path === 'lambdas/definitions.ts' || path.startsWith('lambdas/domain/')) return 'domain';
  if (path.startsWith('lambdas/ports/')) return 'ports';
  if (path.startsWith('lambdas/usecases/')) return 'usecases';
  if (path.startsWith('lambdas/adapters/')) return 'adapters';
  // Handlers (lambdas/<function>/) and the composition root (runtime, config, observability).
  if (path.startsWith('lambdas/')) return 'lambdas';
  const top = path.split('/')[0];
  return top === 'local' || top === 'cli' || top === 'lib' || top === 'bin' ? top : undefined;
}

/** One import: `from` imports `to`, a repository path (posix, from the root) or a package specifier. */
export interface ImportEdge {
  from: string;
  to: string;
  package?: boolean;
}

/** The module specifiers a source text imports, in order (static, type-only, `export … from`, `import()`). */
export function importsOf(sourceText: string): string[] {
  return ts.preProcessFile(sourceText, true, true).importedFiles.map((f) => f.fileName);
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`), or `node:` for built-ins. */
function packageOf(specifier: string): string {
  if (specifier.startsWith('node:')) return 'node:';
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

function tsFilesUnder(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) tsFilesUnder(path, out);
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The imports of every .ts file under {@link SOURCE_DIRS}, relative ones resolved to repository paths. */
export function importGraph(root: string): { files: string[]; edges: ImportEdge[] } {
  const files = SOURCE_DIRS.flatMap((dir) => tsFilesUnder(join(root, dir))).map((f) =>
    relative(root, f).split('\\').join('/'),
  );
  const edges: ImportEdge[] = [];
  for (const from of files) {
    for (const specifier of importsOf(readFileSync(join(root, from), 'utf8'))) {
      if (specifier.startsWith('.'))
        edges.push({ from, to: posix.normalize(posix.join(dirname(from), specifier)) });
      else edges.push({ from, to: specifier, package: true });
    }
  }
  return { files, edges };
}

/** Every import that breaks the rule, as a sentence naming both files and what the importer may import. */
export function wrongWayImports(edges: readonly ImportEdge[]): string[] {
  const problems: string[] = [];
  for (const edge of edges) {
    const { from, to } = edge;
    const fromLayer = layerOf(from);
    if (!fromLayer) {
      problems.push(`${from} belongs to no layer: place it in one (docs/contributing.md)`);
      continue;
    }
    if (!edge.package) {
      const toLayer = layerOf(to);
      if (!toLayer || !MAY_IMPORT[fromLayer].includes(toLayer)) {
        problems.push(
          `${from} (${fromLayer}) imports ${to} (${toLayer ?? 'no layer'}); ` +
            `${fromLayer} may import only ${MAY_IMPORT[fromLayer].join(', ')}`,
        );
      }
    } else if (INNER_LAYERS.has(fromLayer)) {
      const pkg = packageOf(to);
      const allowed =
        pkg === 'node:' || INNER_PACKAGES.has(pkg) || INNER_PACKAGE_EXCEPTIONS[from]?.includes(pkg);
      if (!allowed) {
        problems.push(
          `${from} (${fromLayer}) imports the package ${to}; ${fromLayer} imports only Node built-ins and ` +
            `${[...INNER_PACKAGES].join(', ')}: put the I/O behind a port in lambdas/ports and an adapter`,
        );
      }
    }
  }
  return problems;
}

/** The import cycles among repository files (strongly connected components of more than one file, or a self-import). */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to, package: isPackage } of edges) {
    if (isPackage) continue;
    next.set(from, [...(next.get(from) ?? []), to]);
  }
  // Tarjan's algorithm.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || next.get(v)?.includes(v)) cycles.push(component.sort());
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return cycles;
}
