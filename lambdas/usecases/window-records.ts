/**
 * Streaming of one window's records: staged objects → gunzip → lines →
 * (pass-through | parse → select → project → serialize) → record lines.
 * Output is produced as large string chunks; nothing holds a whole object.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import {
  CorruptStagedLineError,
  compileShaper,
  eventDefect,
  isPassThrough,
  type ReceivedEvent,
  type RecordFrame,
  type Selection,
} from '../domain/export-record.ts';

/** Output chunks are flushed at about this many characters. */
const CHUNK_CHARS = 256 * 1024;

/** The lines of one gzipped staged object, without newlines, empty lines skipped. */
export async function* stagedLines(gzipped: Readable): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  const gunzip = gzipped.pipe(createGunzip());
  gzipped.on('error', (err) => gunzip.destroy(err));
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    const text = rest + decoder.write(chunk);
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    yield lines.filter((l) => l.length > 0);
  }
  const last = rest + decoder.end();
  if (last.length > 0) yield [last];
}

export interface RecordWriterStats {
  records: number;
}

/**
 * Turns staged lines into output record lines for one connection and window.
 * Returns, per batch of lines, the output text (may be empty) and how many records it holds.
 */
export function compileRecordWriter(
  selection: Selection,
  frame: RecordFrame,
): (stagedKey: string, firstLineNumber: number, lines: string[]) => { text: string; records: number } {
  if (isPassThrough(selection)) {
    // Staged lines are our own JSON.stringify output of validated events: copy them verbatim.
    return (_key, _first, lines) => {
      if (lines.length === 0) return { text: '', records: 0 };
      const joiner = `${frame.tail}\n${frame.head}`;
      return { text: `${frame.head}${lines.join(joiner)}${frame.tail}\n`, records: lines.length };
    };
  }
  const shaper = compileShaper(selection);
  return (stagedKey, firstLineNumber, lines) => {
    let text = '';
    let records = 0;
    for (let i = 0; i < lines.length; i++) {
      let event: unknown;
      try {
        event = JSON.parse(lines[i]!);
      } catch {
        throw new CorruptStagedLineError(stagedKey, firstLineNumber + i, 'not valid JSON');
      }
      const defect = eventDefect(event);
      if (defect) throw new CorruptStagedLineError(stagedKey, firstLineNumber + i, defect);
      const shaped = shaper.shape(event as ReceivedEvent);
      if (!shaped) continue;
      text += `${frame.head}${JSON.stringify(shaped)}${frame.tail}\n`;
      records++;
    }
    return { text, records };
  };
}

/** Yields output text of one staged object in chunks of about CHUNK_CHARS. */
export async function* objectRecords(
  stagedKey: string,
  gzipped: Readable,
  write: ReturnType<typeof compileRecordWriter>,
  stats: RecordWriterStats,
): AsyncGenerator<string> {
  let buffer = '';
  let lineNumber = 1;
  for await (const lines of stagedLines(gzipped)) {
    const { text, records } = write(stagedKey, lineNumber, lines);
    lineNumber += lines.length;
    stats.records += records;
    buffer += text;
    if (buffer.length >= CHUNK_CHARS) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer.length > 0) yield buffer;
}
