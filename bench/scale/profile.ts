/**
 * The platform-scale profile (issue 10): 20,000 events/s of 600-byte events over 20 shards,
 * app shares Zipf(1.0) over A apps, the Lambda event source batching of the stager
 * (lambdas/definitions.ts), and the apps sampled for export, stratified by Zipf rank.
 */
import { STAGER_BATCH_SIZE, STAGER_MAX_BATCHING_WINDOW_SECONDS } from '../../lambdas/definitions.ts';
import { createEventGenerator, seededRandom } from '../../local/events.ts';

export const PROFILE = {
  eventsPerSecond: 20_000,
  eventBytes: 600,
  shards: 20,
  /** A shard's write maximum (Kinesis): 1,000 records/s and 1 MB/s. */
  shardMaxRecordsPerSecond: 1_000,
  shardMaxBytesPerSecond: 1_000_000,
  windowMinutes: 15,
} as const;

/** GB received per day: the denominator of every $/GB (raw event bytes). */
export const GB_PER_DAY = (PROFILE.eventsPerSecond * PROFILE.eventBytes * 86_400) / 1e9;

/** Lambda's invocation payload limit (synchronous invocation of an event source batch). */
const INVOCATION_PAYLOAD_BYTES = 6 * 1024 * 1024;

export function appId(rank: number): string {
  return `app-${String(rank).padStart(6, '0')}`;
}

/** Kinesis record data as producers send it: `{"app_id":...,"event":{...}}`. */
export function recordData(app: string, event: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`{"app_id":"${app}","event":`), event, Buffer.from('}')]);
}

const PADDING_WORDS = [
  'checkout',
  'product',
  'category',
  'banner',
  'android',
  'campaign',
  'discount',
  'wishlist',
  'search',
  'results',
  'premium',
  'monthly',
  'renewal',
  'shipping',
  'express',
  'voucher',
  'referral',
  'onboarding',
  'tutorial',
  'settings',
  'language',
  'english',
  'hindi',
  'japanese',
  'notification',
  'inbox',
  'profile',
  'rating',
  'review',
  'cart',
  'payment',
  'wallet',
  'upi',
  'card',
  'netbanking',
  'loyalty',
  'points',
  'tier',
  'gold',
  'silver',
  'platinum',
  'session',
  'deeplink',
  'utm_source',
  'utm_medium',
  'organic',
  'paid',
  'social',
  'email',
  'push',
  'sms',
  'whatsapp',
  'inapp',
  'web',
  'ios',
  'tablet',
  'mobile',
  'desktop',
  'home',
  'offers',
  'sale',
  'festive',
  'clearance',
];

/**
 * A pool of distinct events of exactly `bytes` bytes of JSON (the local generator plus the bench's
 * attributes, padded in one attribute). Records reuse them: generating 20,000 events/s is not
 * what is measured.
 */
export function eventPool(size: number, bytes = PROFILE.eventBytes, seed = 7): Buffer[] {
  const generate = createEventGenerator({ appId: 'pool', seed, users: 50_000 });
  const random = seededRandom(seed + 1);
  const pool: Buffer[] = [];
  for (let tries = 0; pool.length < size; tries++) {
    if (tries > size * 10) throw new RangeError(`the generator's events do not fit in ${bytes} bytes`);
    const event = generate(new Date('2026-11-02T10:00:00Z')).event as Record<string, unknown> & {
      uid: string;
      user_attributes: Record<string, unknown>;
    };
    event.user_attributes.note = '';
    const base = Buffer.byteLength(JSON.stringify(event));
    // Campaign events are longer than the profile's size: those are drawn again.
    if (base > bytes) continue;
    // Padding that compresses like the attributes of real events (words of a small vocabulary,
    // some numbers), neither like a run of one character nor like random bytes.
    let note = '';
    while (note.length < bytes - base)
      note +=
        random() < 0.8
          ? `${PADDING_WORDS[Math.floor(random() * PADDING_WORDS.length)]} `
          : `${Math.floor(random() * 10_000)} `;
    event.user_attributes.note = note.slice(0, bytes - base);
    pool.push(Buffer.from(JSON.stringify(event)));
  }
  return pool;
}

/** Bytes one record takes in the event source's invocation payload (Lambda's Kinesis event JSON). */
export function invocationRecordBytes(dataBytes: number): number {
  const record = {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: 'app-000001-3f2a9c',
      sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
      data: 'x'.repeat(Math.ceil(dataBytes / 3) * 4),
      approximateArrivalTimestamp: 1_764_412_345.678,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: 'shardId-000000000000:49590338271490256608559692538361571095921575989136588898',
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/s3-event-export-StagerServiceRole-ABCDEFGHIJKL',
    awsRegion: 'us-east-1',
    eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/s3-event-export-IngestStream-ABCDEFGHIJKL',
  };
  return Buffer.byteLength(JSON.stringify(record)) + 1;
}

export interface EventSourceBatching {
  /** Records per stager invocation at the profile's per-shard rate. */
  recordsPerBatch: number;
  /** Seconds of one shard's stream in one batch. */
  secondsPerBatch: number;
  /** What ends a batch: the batch size, the batching window, or the 6 MB payload. */
  limitedBy: 'batch size' | 'batching window' | 'payload';
  invocationBytesPerRecord: number;
}

/**
 * The event source's batches for one shard delivering `recordsPerSecond` records of `dataBytes`:
 * it invokes when the batch size is reached, the batching window elapses, or the payload is full.
 */
export function eventSourceBatching(recordsPerSecond: number, dataBytes: number): EventSourceBatching {
  const invocationBytesPerRecord = invocationRecordBytes(dataBytes);
  const limits = [
    { limitedBy: 'batch size' as const, records: STAGER_BATCH_SIZE },
    {
      limitedBy: 'batching window' as const,
      records: Math.floor(recordsPerSecond * STAGER_MAX_BATCHING_WINDOW_SECONDS),
    },
    {
      limitedBy: 'payload' as const,
      records: Math.floor((INVOCATION_PAYLOAD_BYTES - 1024) / invocationBytesPerRecord),
    },
  ];
  const smallest = limits.reduce((a, b) => (b.records < a.records ? b : a));
  return {
    recordsPerBatch: smallest.records,
    secondsPerBatch: smallest.records / recordsPerSecond,
    limitedBy: smallest.limitedBy,
    invocationBytesPerRecord,
  };
}

/** Zipf(1.0) over `apps` ranks: share of rank r is (1/r) / H(apps). */
export class Zipf {
  private readonly cumulative: Float64Array;
  readonly harmonic: number;

  constructor(readonly apps: number) {
    this.cumulative = new Float64Array(apps);
    let sum = 0;
    for (let r = 1; r <= apps; r++) {
      sum += 1 / r;
      this.cumulative[r - 1] = sum;
    }
    this.harmonic = sum;
  }

  share(rank: number): number {
    return 1 / rank / this.harmonic;
  }

  /** Sum of the shares of ranks [from, to]. */
  shareOf(from: number, to: number): number {
    const below = from > 1 ? this.cumulative[from - 2]! : 0;
    return (this.cumulative[to - 1]! - below) / this.harmonic;
  }

  /** A rank drawn with `u` uniform in [0, 1). */
  rank(u: number): number {
    const target = u * this.harmonic;
    let lo = 0;
    let hi = this.apps - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }
}

/** One stratum of apps by Zipf rank, exported through one sampled app of mean size. */
export interface Stratum {
  from: number;
  to: number;
  /** Apps in the stratum. */
  apps: number;
  /** The sampled app: the rank whose share is the stratum's mean share. */
  sampleRank: number;
}

const STRATA_STARTS = [1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000];

export function strata(zipf: Zipf): Stratum[] {
  const starts = STRATA_STARTS.filter((s) => s <= zipf.apps);
  return starts.map((from, i) => {
    const to = Math.min((starts[i + 1] ?? zipf.apps + 1) - 1, zipf.apps);
    const apps = to - from + 1;
    const meanShare = zipf.shareOf(from, to) / apps;
    const sampleRank = Math.min(to, Math.max(from, Math.round(1 / (meanShare * zipf.harmonic))));
    return { from, to, apps, sampleRank };
  });
}

/** Function memory (lib/config.ts defaults). */
export const MEMORY_MB = { stager: 512, compactor: 2048, exporter: 2048, dispatcher: 256 } as const;
