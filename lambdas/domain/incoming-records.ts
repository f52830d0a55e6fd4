/**
 * Interim decoder (replaced by the byte-exact NDJSON/KPL decoder): one JSON record per Kinesis
 * record, validated; refused records are quarantined with their bytes.
 */
import { eventDefect } from './export-record.ts';

export interface DecodedEvent {
  appId: string;
  event: Buffer;
}

export interface QuarantinedItem {
  reason: string;
  data: Buffer;
  position?: { line?: number; userRecord?: number };
}

export function decodeRecordData(data: Uint8Array): {
  events: DecodedEvent[];
  quarantined: QuarantinedItem[];
} {
  const bytes = Buffer.from(data);
  const refuse = (reason: string) => ({ events: [], quarantined: [{ reason, data: bytes }] });
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return refuse('record data is not valid UTF-8 JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return refuse('record data is not a JSON object {"app_id": ..., "event": {...}}');
  const { app_id: appId, event } = body as { app_id?: unknown; event?: unknown };
  if (typeof appId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(appId))
    return refuse('app_id is missing or not 1-64 characters of letters, digits, "_", "." or "-"');
  const defect = eventDefect(event);
  if (defect) return refuse(defect);
  return { events: [{ appId, event: Buffer.from(JSON.stringify(event)) }], quarantined: [] };
}
