/**
 * Code, tests and docs cite only this repository's files or public URLs (docs/contributing.md#citations):
 * no reference to the product's source documents outside the repository, and every
 * `<doc>.md#<anchor>` reference names a heading that exists.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Tracked and new (not ignored) text files of the worktree. */
function repositoryFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  });
  return listed
    .split('\n')
    .filter((f) => /\.(ts|mts|mjs|js|md|json|sh)$/.test(f) && f !== 'package-lock.json')
    .filter((f) => existsSync(join(root, f)));
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens. */
function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const anchor = headingAnchor(heading ?? '');
    const n = seen.get(anchor) ?? 0;
    seen.set(anchor, n + 1);
    anchors.add(n === 0 ? anchor : `${anchor}-${n}`);
  }
  return anchors;
}

// Split so that this file does not match itself.
const FORBIDDEN = [`SPEC ${'§'}`, `DESIGN${'-'}NOTES`, `../${'shared'}/`];

describe('references', () => {
  const files = repositoryFiles();

  it('cite no document outside the repository', () => {
    const found = files.flatMap((file) => {
      const text = readFileSync(join(root, file), 'utf8');
      return FORBIDDEN.filter((s) => text.includes(s)).map((s) => `${file}: ${s}`);
    });
    expect(found).toEqual([]);
  });

  it('name headings that exist when they link to a section of a doc', () => {
    const broken: string[] = [];
    for (const file of files) {
      const text = readFileSync(join(root, file), 'utf8');
      for (const [, doc, anchor] of text.matchAll(/([\w./-]*?[\w-]+\.md)#([\w-]+)/g)) {
        const target = join(root, 'docs', basename(doc!));
        const path = existsSync(target) ? target : join(root, basename(doc!));
        if (!existsSync(path)) continue; // another repository's document
        if (!anchorsOf(readFileSync(path, 'utf8')).has(anchor!)) broken.push(`${file}: ${doc}#${anchor}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('turn headings into the anchors GitHub makes', () => {
    expect(headingAnchor('Dispatcher (bench/dispatch.ts)')).toBe('dispatcher-benchdispatchts');
    expect(headingAnchor('3. Watermark and window')).toBe('3-watermark-and-window');
    expect(headingAnchor('`ExportLag-<FREQUENCY>`')).toBe('exportlag-frequency');
    expect(anchorsOf('# A\n```\n# not a heading\n```\n## Output keys\n## Output keys\n')).toEqual(
      new Set(['a', 'output-keys', 'output-keys-1']),
    );
  });
});
