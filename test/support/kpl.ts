/**
 * A KPL aggregated record encoder for tests, written from the published format
 * (https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md):
 * magic 0xF3 0x89 0x9A 0xC2, protobuf `AggregatedRecord`, MD5 of the protobuf bytes.
 */
import { createHash } from 'node:crypto';

export const KPL_MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2]);

export function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

export function field(number: number, wireType: number, payload: Buffer): Buffer {
  const key = varint(number * 8 + wireType);
  if (wireType === 2) return Buffer.concat([key, varint(payload.length), payload]);
  return Buffer.concat([key, payload]);
}

export interface UserRecord {
  data: Uint8Array;
  partitionKeyIndex?: number;
  explicitHashKeyIndex?: number;
  tags?: { key: string; value?: string }[];
}

/** The protobuf `AggregatedRecord` bytes (no magic, no MD5). */
export function aggregatedProtobuf(
  records: UserRecord[],
  partitionKeys: string[] = ['pk'],
  explicitHashKeys: string[] = [],
): Buffer {
  const parts: Buffer[] = [];
  for (const key of partitionKeys) parts.push(field(1, 2, Buffer.from(key)));
  for (const key of explicitHashKeys) parts.push(field(2, 2, Buffer.from(key)));
  for (const record of records) {
    const inner: Buffer[] = [field(1, 0, varint(record.partitionKeyIndex ?? 0))];
    if (record.explicitHashKeyIndex !== undefined)
      inner.push(field(2, 0, varint(record.explicitHashKeyIndex)));
    inner.push(field(3, 2, Buffer.from(record.data)));
    for (const tag of record.tags ?? []) {
      const tagParts = [field(1, 2, Buffer.from(tag.key))];
      if (tag.value !== undefined) tagParts.push(field(2, 2, Buffer.from(tag.value)));
      inner.push(field(4, 2, Buffer.concat(tagParts)));
    }
    parts.push(field(3, 2, Buffer.concat(inner)));
  }
  return Buffer.concat(parts);
}

/** Magic + protobuf + MD5 of the protobuf. */
export function sealAggregated(protobuf: Buffer): Buffer {
  return Buffer.concat([KPL_MAGIC, protobuf, createHash('md5').update(protobuf).digest()]);
}

export function kplAggregate(records: (Uint8Array | UserRecord)[], partitionKeys?: string[]): Buffer {
  const userRecords = records.map((r) => (r instanceof Uint8Array ? { data: r } : r));
  return sealAggregated(aggregatedProtobuf(userRecords, partitionKeys));
}
