/**
 * Byte-level JSON scanning of staged lines (no UTF-8 decoding, no strings): string tokens, their
 * escapes, and lookups of JSON-encoded names by their bytes. Pure: no I/O.
 */

export const QUOTE = 0x22;
export const SLASH = 0x2f;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;
export const LBRACKET = 0x5b;
export const RBRACKET = 0x5d;
export const MINUS = 0x2d;
export const ZERO = 0x30;
export const NINE = 0x39;
export const NEWLINE = 0x0a;

/**
 * End of the JSON string whose opening quote is at `i` (the index after its closing quote), or -1
 * when it is unterminated, holds a raw control character or an invalid escape (RFC 8259 §7).
 * Every valid escape is accepted: staged events keep the producer's bytes, so `\/`, `\u0041` or a
 * lone `\ud83d` are as they were received, and are copied as they are.
 */
export function scanString(b: Uint8Array, i: number, end: number): number {
  for (let j = i + 1; j < end; j++) {
    const c = b[j]!;
    if (c === QUOTE) return j + 1;
    if (c < 0x20) return -1;
    if (c === BACKSLASH) {
      const n = b[j + 1];
      // The short escapes: \" \\ \/ \b \f \n \r \t
      if (
        n === QUOTE ||
        n === BACKSLASH ||
        n === SLASH ||
        n === 0x62 ||
        n === 0x66 ||
        n === 0x6e ||
        n === 0x72 ||
        n === 0x74
      ) {
        j++;
        continue;
      }
      if (
        n === 0x75 &&
        j + 5 < end &&
        isHex(b[j + 2]!) &&
        isHex(b[j + 3]!) &&
        isHex(b[j + 4]!) &&
        isHex(b[j + 5]!)
      ) {
        j += 5;
        continue;
      }
      return -1;
    }
  }
  return -1;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hasBackslash(b: Uint8Array, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (b[k] === BACKSLASH) return true;
  return false;
}

/** The value of the JSON string token [start, end) of `b` (scanned already), decoding its escapes. */
export function decodeString(b: Uint8Array, start: number, end: number): string {
  return JSON.parse(Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8')) as string;
}

/** JSON-encoded strings (with their quotes, as JSON.stringify writes them), looked up by byte length. */
export class EncodedNames {
  private readonly byLength = new Map<number, Uint8Array[]>();
  private readonly byName = new Map<string, Uint8Array>();
  constructor(names: Iterable<string>) {
    for (const name of names) {
      const encoded = Buffer.from(JSON.stringify(name), 'utf8');
      const list = this.byLength.get(encoded.length) ?? [];
      list.push(encoded);
      this.byLength.set(encoded.length, list);
      this.byName.set(name, encoded);
    }
  }

  /**
   * The encoded name whose value equals the string token [start, end) of `b`, or undefined. A token
   * written with other escapes than JSON.stringify's (`"\u0041ge"` for "Age") is decoded first.
   */
  find(b: Uint8Array, start: number, end: number): Uint8Array | undefined {
    const candidates = this.byLength.get(end - start);
    if (candidates) for (const candidate of candidates) if (bytesEqual(b, start, candidate)) return candidate;
    return hasBackslash(b, start + 1, end - 1) ? this.byName.get(decodeString(b, start, end)) : undefined;
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && bytesEqual(a, 0, b);
}

export function bytesEqual(b: Uint8Array, start: number, expected: Uint8Array): boolean {
  for (let k = 0; k < expected.length; k++) if (b[start + k] !== expected[k]) return false;
  return true;
}
