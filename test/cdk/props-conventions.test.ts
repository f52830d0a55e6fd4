/**
 * The CDK props of lib/ follow the AWS CDK design guidelines (docs/contributing.md#cdk-props):
 * every member readonly and documented, every optional member's default in a `@default` tag,
 * flat (no nested object types). ExportStackConfig is the stack's props too, all optional there,
 * so each of its members carries its `@default`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const lib = fileURLToPath(new URL('../../lib/', import.meta.url));

/** Every breach of the conventions in the props interfaces of one source file. */
function propsProblems(fileName: string, sourceText: string): string[] {
  const source = ts.createSourceFile(fileName, sourceText, ts.ScriptTarget.ES2022, true);
  const problems: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isInterfaceDeclaration(statement)) continue;
    const name = statement.name.text;
    const allOptional = name === 'ExportStackConfig';
    if (!name.endsWith('Props') && !allOptional) continue;
    for (const member of statement.members) {
      if (!ts.isPropertySignature(member)) continue;
      const where = `${fileName} ${name}.${member.name.getText(source)}`;
      const docs = ts.getJSDocCommentsAndTags(member).filter(ts.isJSDoc);
      const readonly = member.modifiers?.some((m) => m.kind === ts.SyntaxKind.ReadonlyKeyword);
      if (!readonly) problems.push(`${where} is not readonly`);
      if (docs.length === 0 || !docs.some((d) => d.comment)) problems.push(`${where} has no doc comment`);
      const hasDefault = docs.some((d) => d.tags?.some((t) => t.tagName.text === 'default'));
      if ((member.questionToken || allOptional) && !hasDefault) problems.push(`${where} has no @default`);
      if (member.type && ts.isTypeLiteralNode(member.type)) problems.push(`${where} nests an object type`);
    }
  }
  return problems;
}

describe('CDK props conventions', () => {
  it('hold for every props interface under lib/', () => {
    const files = readdirSync(lib).filter((f) => f.endsWith('.ts'));
    const checked = files.flatMap((f) => propsProblems(`lib/${f}`, readFileSync(join(lib, f), 'utf8')));
    expect(checked).toEqual([]);
  });

  it('are checked: a mutable, undocumented, nested or default-less member is reported', () => {
    const source = [
      'export interface BadProps {',
      '  size: number;',
      '  /** Documented and readonly, but optional without a default. */',
      '  readonly retries?: number;',
      '  /** Nested. */',
      '  readonly memory: { exporter: number };',
      '  /**',
      '   * Fine.',
      '   * @default 5',
      '   */',
      '  readonly attempts?: number;',
      '}',
    ].join('\n');
    expect(propsProblems('bad.ts', source)).toEqual([
      'bad.ts BadProps.size is not readonly',
      'bad.ts BadProps.size has no doc comment',
      'bad.ts BadProps.retries has no @default',
      'bad.ts BadProps.memory nests an object type',
    ]);
  });
});
