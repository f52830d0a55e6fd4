/**
 * The reference text path for one staged object (gunzip → string lines → compileRecordWriter),
 * which the exporter's byte-level path must match byte for byte. Test-only: production uses
 * objectRecordBytes.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type {
  compileRecordWriter,
  RecordWriterStats,
} from '../../lambdas/domain/record-codec/record-writer.ts';

/** Output chunks are flushed at about this many characters. */
const CHUNK_CHARS = 256 * 1024;

/** The lines of one gzipped staged object, without newlines, empty lines skipped. */
async function* stagedLines(gzipped: Readable): AsyncGenerator<string[]> {
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
