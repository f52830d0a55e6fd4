import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CorruptStagedLineError,
  type RecordFrame,
  recordFrame,
  type Selection,
} from '../../lambdas/domain/export-record.ts';
import { compressObjectRecords, objectRecordBytes } from '../../lambdas/domain/record-codec/gzip-members.ts';
import { RecordBytes } from '../../lambdas/domain/record-codec/record-bytes.ts';
import {
  compileRecordBytesWriter,
  compileRecordWriter,
} from '../../lambdas/domain/record-codec/record-writer.ts';
import { inThreadCompressor, RecordWorkerPool } from '../../lambdas/usecases/record-worker-pool.ts';
import { createEventGenerator } from '../../local/events.ts';
import { objectRecords } from '../support/reference-records.ts';

const frame: RecordFrame = recordFrame(
  { appName: 'App "Name"', dbName: 'MoEngage ✓' },
  new Date('2026-11-02T10:15:00Z'),
);

const SELECTIONS: Record<string, Selection> = {
  passThrough: { events: { mode: 'ALL' }, userAttributes: 'ALL', deviceAttributes: 'ALL' },
  selectedNames: {
    events: {
      mode: 'SELECTED',
      names: ['VIEW_RADAR', 'Email Sent', 'NOTIFICATION_CLICKED_MOE', 'é"\\', 'a'],
    },
    userAttributes: 'ALL',
    deviceAttributes: 'ALL',
  },
  projected: {
    events: { mode: 'ALL' },
    userAttributes: ['first_name', 'city', '__proto__', 'a', ''],
    deviceAttributes: ['os'],
  },
  selectedAndProjected: {
    events: { mode: 'SELECTED', names: ['PURCHASE', 'MOE_EMAIL_OPEN', 'a'] },
    userAttributes: ['plan', 'b'],
    deviceAttributes: 'ALL',
  },
};

/** What the parse path gives for one line: its record text, or the error. */
function viaParse(selection: Selection, line: string): string | Error {
  try {
    return compileRecordWriter(selection, frame)('k', 7, [line]).text;
  } catch (error) {
    return error as Error;
  }
}

function viaBytes(selection: Selection, line: string): string | Error {
  const out = new RecordBytes(64);
  const bytes = Buffer.from(`xx${line}yy`, 'utf8');
  try {
    compileRecordBytesWriter(selection, frame)(out, 'k', 7, bytes, 2, bytes.length - 2);
  } catch (error) {
    return error as Error;
  }
  return out.take().toString('utf8');
}

function expectSameRecord(selection: Selection, line: string): void {
  const expected = viaParse(selection, line);
  const actual = viaBytes(selection, line);
  if (expected instanceof Error) {
    expect(actual).toBeInstanceOf(CorruptStagedLineError);
    expect((actual as Error).message).toBe(expected.message);
  } else {
    expect(actual).toBe(expected);
  }
}

const attributes = fc.dictionary(
  fc.oneof(fc.string(), fc.constantFrom('first_name', 'city', 'plan', 'os', '__proto__', 'moengage_user_id')),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 6 },
);
const event = fc.record(
  {
    uid: fc.string(),
    event_code: fc.oneof(fc.constantFrom('PURCHASE', 'VIEW_RADAR', 'a'), fc.jsonValue({ maxDepth: 1 })),
    event_name: fc.oneof(
      fc.constantFrom('VIEW_RADAR', 'Email Sent', 'é"\\', 'a'),
      fc.string({ minLength: 1 }),
    ),
    user_attributes: fc.oneof(attributes, fc.jsonValue({ maxDepth: 1 })),
    event_attributes: fc.jsonValue({ maxDepth: 4 }),
    event_uuid: fc.string({ minLength: 1 }),
    event_time: fc.oneof(
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    ),
    device_attributes: attributes,
  },
  { requiredKeys: ['event_uuid', 'event_name', 'event_time'] },
);

describe('the byte-level record writer', () => {
  for (const [name, selection] of Object.entries(SELECTIONS)) {
    it(`writes the same record as the parse path for stager-written lines (${name})`, () => {
      const generate = createEventGenerator({ appId: 'a', seed: 3, offlineShare: 0.2 });
      for (let i = 0; i < 300; i++)
        expectSameRecord(selection, JSON.stringify(generate(new Date(1.7e12)).event));
      fc.assert(
        fc.property(event, (e) => expectSameRecord(selection, JSON.stringify(e))),
        { numRuns: 400 },
      );
    });
  }

  const base =
    '{"event_name":"a","event_code":"PURCHASE","user_attributes":{"first_name":"x","plan":1,"a":2},' +
    '"device_attributes":{"os":"iOS","moengage_device_id":"d"},"event_uuid":"u","event_time":1}';

  it('gives the parse path’s record or error for a line that shows it is not the stager’s', () => {
    const variants = [
      base,
      base.replace('{"event_name"', '{ "event_name"'),
      base.replace('"plan":1', '"plan" : 1'),
      `${base}\r`,
      base.replace('"x"', '"a\tb"'),
      base.replace('"a":2', '"__proto__":{"b":1}'),
      base.replace('"event_name":"a"', '"event_name":"a","event_name":"b"'),
      base.replace('"event_time":1', '"event_time":"1"'),
      base.replace('"event_uuid":"u",', ''),
      base.replace('"event_name":"a"', '"event_name":""'),
      base.replace('"event_name":"a"', '"event_name":7'),
      base.replace('"user_attributes"', '"user_attributes":{},"user_attributes"'),
      base.slice(0, -1),
      `${base} `,
      `${base}x`,
      `${base}}`,
      `{${base.slice(1, -1)}]`,
      '[]',
      'null',
      '{}',
      'not json',
      '{"event_name":"a"',
    ];
    for (const selection of Object.values(SELECTIONS)) {
      for (const line of variants) expectSameRecord(selection, line);
    }
  });

  it('copies a value it does not act on as staged, as pass-through does', () => {
    // Forms JSON.stringify never writes, inside values that are copied: the record means the same.
    const variants = [
      base.replace('"plan":1', '"plan":1.0'),
      base.replace('"plan":1', '"plan":1e2'),
      base.replace('"plan":1', '"plan":-0'),
      base.replace('"a":2', '"a":{"b":1,"b":2}'),
      // Escapes JSON.stringify does not write: kept as received (the events are the producer's bytes).
      base.replace('"x"', '"\\u0041\\/"'),
      base.replace('"x"', '"\\ud83d"'),
      // A duplicated attribute: only where the selection keeps it does the line take the parse path.
      base.replace('"a":2', '"a":2,"a":3'),
    ];
    const meaning = (text: string) => JSON.stringify(JSON.parse(text));
    for (const selection of Object.values(SELECTIONS)) {
      for (const line of variants) {
        const expected = viaParse(selection, line) as string;
        const actual = viaBytes(selection, line) as string;
        expect(typeof actual).toBe('string');
        expect(meaning(actual)).toBe(meaning(expected));
      }
    }
  });

  it('numbers the lines of a staged object like the parse path, across chunk boundaries', async () => {
    const generate = createEventGenerator({ appId: 'a', seed: 5 });
    const lines = Array.from({ length: 3000 }, () => JSON.stringify(generate(new Date(1.7e12)).event));
    lines.splice(2500, 0, '', '{"broken":');
    const staged = gzipSync(`${lines.join('\n')}\n`);
    for (const selection of [SELECTIONS.projected!, SELECTIONS.selectedNames!]) {
      const byText = async () => {
        for await (const _ of objectRecords(
          'k',
          Readable.from([staged]),
          compileRecordWriter(selection, frame),
          {
            records: 0,
          },
        ));
      };
      const byBytes = async () => {
        const writer = compileRecordBytesWriter(selection, frame);
        for await (const _ of objectRecordBytes('k', Readable.from([staged]), writer, { records: 0 }));
      };
      const expected = await byText().catch((e: Error) => e);
      const actual = await byBytes().catch((e: Error) => e);
      expect(expected).toBeInstanceOf(CorruptStagedLineError);
      expect((actual as Error).message).toBe((expected as Error).message);
    }
  });

  it('streams a staged object into the same bytes and record count as the text path', async () => {
    const generate = createEventGenerator({ appId: 'a', seed: 9 });
    // Lines of up to ~200 KB straddle the 64 KiB gunzip chunks.
    const lines = Array.from({ length: 4000 }, (_, i) => {
      const e = generate(new Date(1.7e12)).event;
      if (i % 500 === 1) (e.event_attributes as Record<string, unknown>).blob = 'x'.repeat(200_000);
      return JSON.stringify(e);
    });
    const staged = gzipSync(`${lines.join('\n')}`); // no final newline
    for (const selection of Object.values(SELECTIONS)) {
      const textStats = { records: 0 };
      let text = '';
      for await (const t of objectRecords(
        'k',
        Readable.from([staged]),
        compileRecordWriter(selection, frame),
        textStats,
      ))
        text += t;
      const byteStats = { records: 0 };
      const chunks: Buffer[] = [];
      const writer = compileRecordBytesWriter(selection, frame);
      for await (const c of objectRecordBytes('k', Readable.from([staged]), writer, byteStats))
        chunks.push(c);
      expect(byteStats.records).toBe(textStats.records);
      expect(Buffer.concat(chunks).toString('utf8')).toBe(text);
      // Chunks hold whole records.
      for (const c of chunks) expect(c[c.length - 1]).toBe(0x0a);
    }
  });
});

/** One staged object's records through compressObjectRecords, in this thread. */
async function compressed(input: Buffer, blockBytes: number, selection = SELECTIONS.passThrough!) {
  return compressObjectRecords(
    'k',
    Readable.from([gzipSync(input)]),
    compileRecordBytesWriter(selection, frame),
    { level: 6, blockBytes },
  );
}

describe('compressed records of a staged object (gzip members)', () => {
  const generate = createEventGenerator({ appId: 'a', seed: 11 });
  const input = Buffer.from(
    Array.from({ length: 6000 }, () => `${JSON.stringify(generate(new Date(1.7e12)).event)}\n`).join(''),
  );
  const expectedRecords = async (selection: Selection) => {
    const chunks: Buffer[] = [];
    const writer = compileRecordBytesWriter(selection, frame);
    for await (const c of objectRecordBytes('k', Readable.from([gzipSync(input)]), writer, { records: 0 }))
      chunks.push(c);
    return Buffer.concat(chunks);
  };

  it('gunzips to the records, in order, as several members (one per block)', async () => {
    const out = await compressed(input, 256 * 1024);
    const records = await expectedRecords(SELECTIONS.passThrough!);
    expect(gunzipSync(out.gzip).equals(records)).toBe(true);
    expect(out.records).toBe(6000);
    expect(out.bytes).toBe(records.length);
    // A member ends after the record that fills its 256 KiB block.
    const members = Math.floor(records.length / (257 * 1024));
    expect(members).toBeGreaterThan(4);
    let found = 0;
    const magic = Buffer.from([0x1f, 0x8b, 0x08]);
    const gz = Buffer.from(out.gzip);
    for (let i = gz.indexOf(magic); i >= 0; i = gz.indexOf(magic, i + 1)) found++;
    expect(found).toBeGreaterThanOrEqual(members);
  });

  it('cuts members where the records say, not where the staged bytes arrived', async () => {
    const staged = gzipSync(input);
    const writer = compileRecordBytesWriter(SELECTIONS.projected!, frame);
    const whole = await compressObjectRecords('k', Readable.from([staged]), writer, {
      level: 6,
      blockBytes: 100_000,
    });
    for (const size of [97, 977, 65_536, 70_001]) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < staged.length; i += size) pieces.push(staged.subarray(i, i + size));
      const chunked = await compressObjectRecords('k', Readable.from(pieces), writer, {
        level: 6,
        blockBytes: 100_000,
      });
      expect(Buffer.from(chunked.gzip).equals(Buffer.from(whole.gzip))).toBe(true);
    }
  });

  it('gives the same bytes for the same object on a worker thread and in this thread', async () => {
    // One worker holding two jobs at once (JOBS_PER_WORKER): their records must not mix.
    const pool = new RecordWorkerPool(1);
    try {
      for (const selection of [SELECTIONS.passThrough!, SELECTIONS.projected!]) {
        const here = await compressed(input, 256 * 1024, selection);
        const half = input.subarray(0, input.indexOf(0x0a, input.length >> 1) + 1);
        const other = await compressed(half, 256 * 1024, selection);
        const job = { stagedKey: 'k', writer: { selection, frame }, level: 6, blockBytes: 256 * 1024 };
        const [a, b, c] = await Promise.all([
          pool.compress({ ...job, body: gzipSync(input) }),
          pool.compress({ ...job, body: gzipSync(half) }),
          pool.compress({ ...job, body: gzipSync(input) }),
        ]);
        expect(Buffer.from(a.gzip).equals(Buffer.from(here.gzip))).toBe(true);
        expect(Buffer.from(b.gzip).equals(Buffer.from(other.gzip))).toBe(true);
        expect(Buffer.from(c.gzip).equals(Buffer.from(here.gzip))).toBe(true);
        expect([a.records, a.bytes, b.records]).toEqual([here.records, here.bytes, other.records]);
      }
    } finally {
      await pool.close();
    }
  });

  it('brings a corrupt line back from a worker as the same CorruptStagedLineError', async () => {
    const lines = input.toString('utf8').split('\n');
    lines.splice(10, 0, '{"broken":');
    const body = gzipSync(lines.join('\n'));
    const writer = { selection: SELECTIONS.projected!, frame };
    const inThread = await inThreadCompressor()({ stagedKey: 'staging/x.gz', body, writer, level: 6 }).catch(
      (e: Error) => e,
    );
    const pool = new RecordWorkerPool(1);
    try {
      const onWorker = await pool
        .compress({ stagedKey: 'staging/x.gz', body, writer, level: 6 })
        .catch((e: Error) => e);
      expect(inThread).toBeInstanceOf(CorruptStagedLineError);
      expect(onWorker).toBeInstanceOf(CorruptStagedLineError);
      expect((onWorker as CorruptStagedLineError).lineNumber).toBe(11);
      expect((onWorker as Error).message).toBe((inThread as Error).message);
      // A gzip error keeps its zlib code; the worker goes on with the next job.
      const bad = await pool
        .compress({ stagedKey: 'staging/y.gz', body: Buffer.from('not gzip'), writer, level: 6 })
        .catch((e: Error & { code?: string }) => e);
      expect((bad as { code?: string }).code).toBe('Z_DATA_ERROR');
      const ok = await pool.compress({ stagedKey: 'k', body: gzipSync(input), writer, level: 6 });
      expect(ok.records).toBe(6000);
    } finally {
      await pool.close();
    }
  });

  it('fails the job of a worker that dies, and runs the next job on a new worker', async () => {
    const pool = new RecordWorkerPool(1);
    const job = {
      stagedKey: 'k',
      body: gzipSync(input),
      writer: { selection: SELECTIONS.projected!, frame },
      level: 6,
    };
    try {
      await pool.warm();
      const running = pool.compress(job);
      // The worker thread dies while it runs the job (as on an out-of-memory abort).
      const workers = (pool as unknown as { workers: { worker: { terminate(): Promise<number> } }[] })
        .workers;
      await workers[0]!.worker.terminate();
      await expect(running).rejects.toThrow(/a record worker thread failed/);
      const next = await pool.compress({ ...job, body: gzipSync(input) });
      expect(next.records).toBe(6000);
      // A job that cannot be sent fails alone; the worker stays usable.
      const unsendable = { ...job, body: gzipSync(input), writer: { ...job.writer, extra: () => 1 } };
      await expect(pool.compress(unsendable as typeof job)).rejects.toThrow();
      expect((await pool.compress({ ...job, body: gzipSync(input) })).records).toBe(6000);
    } finally {
      await pool.close();
    }
  });

  it('gives an empty result (no member) for an object with no selected record', async () => {
    const none: Selection = {
      events: { mode: 'SELECTED', names: ['nothing-has-this-name'] },
      userAttributes: 'ALL',
      deviceAttributes: 'ALL',
    };
    const out = await compressed(input, 256 * 1024, none);
    expect([out.gzip.length, out.records, out.bytes]).toEqual([0, 0, 0]);
  });

  const tools =
    spawnSync('gzip', ['--version']).status === 0 && spawnSync('python3', ['--version']).status === 0;
  it.skipIf(!tools)(
    'is read whole by gzip -t, zcat and Python’s gzip module, appended after another object',
    async () => {
      const a = await compressed(input, 200 * 1024);
      const b = await compressed(input.subarray(0, input.indexOf(0x0a, 100_000) + 1), 200 * 1024);
      const records = Buffer.concat([await expectedRecords(SELECTIONS.passThrough!), gunzipSync(b.gzip)]);
      const dir = mkdtempSync(join(tmpdir(), 'mmgz-'));
      try {
        const file = join(dir, 'part.json.gz');
        writeFileSync(file, Buffer.concat([a.gzip, b.gzip]));
        expect(spawnSync('gzip', ['-t', file]).status).toBe(0);
        const zcat = execFileSync('gzip', ['-dc', file], { maxBuffer: 64 << 20 });
        expect(zcat.equals(records)).toBe(true);
        const python = execFileSync(
          'python3',
          ['-c', 'import gzip,sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())', file],
          { maxBuffer: 64 << 20 },
        );
        expect(python.equals(records)).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
