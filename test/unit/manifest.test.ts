import { describe, expect, it } from 'vitest';
import { buildManifest, MANIFEST_FORMAT_VERSION, serializeManifest } from '../../lambdas/domain/manifest.ts';

const windowStart = new Date('2022-05-20T09:45:00Z');
const windowEnd = new Date('2022-05-20T10:00:00Z');

describe('window manifest', () => {
  it('totals the records and bytes of every part and lists each part with its checksum', () => {
    const parts = [
      {
        key: 'c/export_day=20-05-2022/event_exports_1653040800.json.gz',
        records: 1000,
        bytes: 52_001,
        sha256: 'a'.repeat(64),
      },
      {
        key: 'c/export_day=20-05-2022/event_exports_1653040800_2.json.gz',
        records: 250,
        bytes: 13_010,
        sha256: 'b'.repeat(64),
      },
      {
        key: 'c/export_day=20-05-2022/event_exports_1653040800_3.json.gz',
        records: 1,
        bytes: 70,
        sha256: 'c'.repeat(64),
      },
    ];
    const manifest = buildManifest({
      connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
      sequence: 42,
      windowStart,
      windowEnd,
      parts,
    });
    expect(manifest.totalRecords).toBe(1251);
    expect(manifest.totalBytes).toBe(65_081);
    expect(manifest.files).toEqual(parts);
    expect(manifest).toMatchObject({
      formatVersion: MANIFEST_FORMAT_VERSION,
      connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
      sequence: 42,
      windowStart: '2022-05-20T09:45:00.000Z',
      windowEnd: '2022-05-20T10:00:00.000Z',
      windowStartEpoch: 1653039900,
      windowEndEpoch: 1653040800,
    });
  });

  it('an empty window has a manifest with no files and zero totals', () => {
    const manifest = buildManifest({
      connectionId: 'conn_x0000000000',
      sequence: 1,
      windowStart,
      windowEnd,
      parts: [],
    });
    expect(manifest.files).toEqual([]);
    expect(manifest.totalRecords).toBe(0);
    expect(manifest.totalBytes).toBe(0);
  });

  it('serializes to JSON that parses back to the same manifest, ending with a newline', () => {
    const manifest = buildManifest({
      connectionId: 'conn_x0000000000',
      sequence: 7,
      windowStart,
      windowEnd,
      parts: [{ key: 'k', records: 3, bytes: 9, sha256: 'd'.repeat(64) }],
    });
    const text = serializeManifest(manifest);
    expect(text.endsWith('}\n')).toBe(true);
    expect(JSON.parse(text)).toEqual(manifest);
  });
});
