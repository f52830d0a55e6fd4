/**
 * The subset of DynamoDB expressions the project's adapters send, evaluated on plain items (for
 * the request-counting fake of bench/scale/fake-aws.ts): conditions with `=`, `<`, `<=`, `>`,
 * `>=`, `<>`, `AND`, `OR`, `NOT`, parentheses, `attribute_exists`, `attribute_not_exists`,
 * `begins_with`; updates with `SET a = v | if_not_exists(a, v)`, `REMOVE a, b`, `ADD a v`.
 * Anything else throws, so a new expression in an adapter fails the bench instead of being
 * miscounted.
 */

export type Item = Record<string, unknown>;

export interface ExpressionContext {
  names?: Record<string, string> | undefined;
  values?: Record<string, unknown> | undefined;
}

export class UnsupportedExpressionError extends Error {
  override readonly name = 'UnsupportedExpressionError';
}

type Token = { kind: 'word' | 'name' | 'value' | 'op' | 'punct'; text: string };

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  const pattern =
    /\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|(<=|>=|<>|=|<|>)|([(),])|([A-Za-z_][A-Za-z0-9_.]*))/y;
  let at = 0;
  while (at < expression.length) {
    if (/^\s*$/.test(expression.slice(at))) break;
    pattern.lastIndex = at;
    const match = pattern.exec(expression);
    if (!match) throw new UnsupportedExpressionError(`cannot parse "${expression}" at ${at}`);
    at = pattern.lastIndex;
    if (match[1]) tokens.push({ kind: 'name', text: match[1] });
    else if (match[2]) tokens.push({ kind: 'value', text: match[2] });
    else if (match[3]) tokens.push({ kind: 'op', text: match[3] });
    else if (match[4]) tokens.push({ kind: 'punct', text: match[4] });
    else tokens.push({ kind: 'word', text: match[5]! });
  }
  return tokens;
}

class Parser {
  private at = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly context: ExpressionContext,
  ) {}

  peek(): Token | undefined {
    return this.tokens[this.at];
  }
  next(): Token {
    const token = this.tokens[this.at++];
    if (!token) throw new UnsupportedExpressionError('unexpected end of expression');
    return token;
  }
  expect(text: string): void {
    const token = this.next();
    if (token.text !== text) throw new UnsupportedExpressionError(`expected "${text}", got "${token.text}"`);
  }
  done(): boolean {
    return this.at >= this.tokens.length;
  }
  isWord(text: string): boolean {
    const token = this.peek();
    return token?.kind === 'word' && token.text.toUpperCase() === text;
  }

  /** An attribute path (a `#name` or a bare name); returns its attribute name. */
  path(): string {
    const token = this.next();
    if (token.kind === 'name') {
      const name = this.context.names?.[token.text];
      if (name === undefined)
        throw new UnsupportedExpressionError(`no ExpressionAttributeName ${token.text}`);
      return name;
    }
    if (token.kind === 'word') return token.text;
    throw new UnsupportedExpressionError(`expected an attribute, got "${token.text}"`);
  }

  /** An operand: a value placeholder, an attribute, or `if_not_exists(a, v)`. */
  operand(item: Item): unknown {
    const token = this.peek();
    if (token?.kind === 'value') {
      this.next();
      if (!(token.text in (this.context.values ?? {})))
        throw new UnsupportedExpressionError(`no ExpressionAttributeValue ${token.text}`);
      return this.context.values![token.text];
    }
    if (token?.kind === 'word' && token.text === 'if_not_exists') {
      this.next();
      this.expect('(');
      const name = this.path();
      this.expect(',');
      const fallback = this.operand(item);
      this.expect(')');
      return item[name] ?? fallback;
    }
    return item[this.path()];
  }

  /** `size(path)` (of a set, string or list), or an operand. */
  private sizeOrOperand(item: Item): unknown {
    const token = this.peek();
    if (token?.kind !== 'word' || token.text !== 'size') return this.operand(item);
    this.next();
    this.expect('(');
    const value = item[this.path()];
    this.expect(')');
    if (value instanceof Set) return value.size;
    return Array.isArray(value) || typeof value === 'string' ? value.length : undefined;
  }

  condition(item: Item): boolean {
    let value = this.conjunction(item);
    while (this.isWord('OR')) {
      this.next();
      const right = this.conjunction(item);
      value = value || right;
    }
    return value;
  }

  private conjunction(item: Item): boolean {
    let value = this.unary(item);
    while (this.isWord('AND')) {
      this.next();
      const right = this.unary(item);
      value = value && right;
    }
    return value;
  }

  private unary(item: Item): boolean {
    if (this.isWord('NOT')) {
      this.next();
      return !this.unary(item);
    }
    const token = this.peek();
    if (token?.kind === 'punct' && token.text === '(') {
      this.next();
      const value = this.condition(item);
      this.expect(')');
      return value;
    }
    if (token?.kind === 'word' && token.text === 'contains') {
      this.next();
      this.expect('(');
      const container = item[this.path()];
      this.expect(',');
      const value = this.operand(item);
      this.expect(')');
      if (container instanceof Set) return container.has(value);
      return typeof container === 'string' && typeof value === 'string' && container.includes(value);
    }
    if (token?.kind === 'word' && /^(attribute_exists|attribute_not_exists|begins_with)$/.test(token.text)) {
      this.next();
      this.expect('(');
      const name = this.path();
      if (token.text === 'begins_with') {
        this.expect(',');
        const prefix = this.operand(item);
        this.expect(')');
        const value = item[name];
        return typeof value === 'string' && typeof prefix === 'string' && value.startsWith(prefix);
      }
      this.expect(')');
      return token.text === 'attribute_exists' ? item[name] !== undefined : item[name] === undefined;
    }
    const left = this.sizeOrOperand(item);
    const op = this.next();
    if (op.kind !== 'op') throw new UnsupportedExpressionError(`expected a comparison, got "${op.text}"`);
    return compare(left, op.text, this.operand(item));
  }
}

function compare(left: unknown, op: string, right: unknown): boolean {
  if (left === undefined || right === undefined) return op === '<>' ? left !== right : false;
  const l = left as string | number;
  const r = right as string | number;
  switch (op) {
    case '=':
      return JSON.stringify(left) === JSON.stringify(right);
    case '<>':
      return JSON.stringify(left) !== JSON.stringify(right);
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
    default:
      throw new UnsupportedExpressionError(`operator ${op}`);
  }
}

export function evaluateCondition(expression: string | undefined, item: Item, context: ExpressionContext) {
  if (!expression) return true;
  const parser = new Parser(tokenize(expression), context);
  const value = parser.condition(item);
  if (!parser.done()) throw new UnsupportedExpressionError(`trailing tokens in "${expression}"`);
  return value;
}

/** The item after `expression` (a new object; `item` is not changed). */
export function applyUpdate(expression: string, item: Item, context: ExpressionContext): Item {
  const next: Item = { ...item };
  const parser = new Parser(tokenize(expression), context);
  while (!parser.done()) {
    const clause = parser.next().text.toUpperCase();
    for (let more = true; more; ) {
      const name = parser.path();
      if (clause === 'SET') {
        parser.expect('=');
        next[name] = parser.operand(item);
      } else if (clause === 'REMOVE') {
        delete next[name];
      } else if (clause === 'ADD') {
        const delta = parser.operand(item);
        // ADD is a number increment, or a set union (string sets of the namespace claims).
        next[name] =
          delta instanceof Set
            ? new Set([...((next[name] as Set<unknown> | undefined) ?? []), ...delta])
            : Number(next[name] ?? 0) + Number(delta);
      } else if (clause === 'DELETE') {
        const removed = parser.operand(item) as Set<unknown>;
        const left = new Set(
          [...((next[name] as Set<unknown> | undefined) ?? [])].filter((v) => !removed.has(v)),
        );
        if (left.size > 0) next[name] = left;
        else delete next[name];
      } else throw new UnsupportedExpressionError(`update clause ${clause}`);
      more = parser.peek()?.text === ',';
      if (more) parser.next();
    }
  }
  return next;
}
