/**
 * AWS list prices used by `npm run bench:scale` (bench/scale.ts), us-east-1, in USD. The one
 * place they live: change a price here and every figure of the bench follows.
 *
 * As of 2026-11-29 (the public pricing pages below; DynamoDB on-demand after its November 2024
 * reduction). Free tiers are ignored (a platform at this volume is far beyond them).
 */
export const PRICES = {
  asOf: '2026-11-29',
  region: 'us-east-1',
  s3: {
    source: 'https://aws.amazon.com/s3/pricing/',
    /** PUT, COPY, POST, LIST requests (S3 Standard), per 1,000. */
    putCopyPostListPer1000: 0.005,
    /** GET, SELECT and all other requests (HEAD included), per 1,000. */
    getPer1000: 0.0004,
    /** Storage, S3 Standard, first 50 TB, per GB-month. */
    storagePerGbMonth: 0.023,
  },
  dynamodb: {
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    /** On-demand write request units, per million (1 WRU = one write of up to 1 KB; transactional x2). */
    writePerMillion: 0.625,
    /** On-demand read request units, per million (1 RRU = a strongly consistent read of up to 4 KB). */
    readPerMillion: 0.125,
  },
  sqs: {
    source: 'https://aws.amazon.com/sqs/pricing/',
    /** Standard queue requests, per million (each 64 KB chunk of a payload is one request). */
    requestsPerMillion: 0.4,
  },
  lambda: {
    source: 'https://aws.amazon.com/lambda/pricing/',
    /** The stack's functions run on arm64 (lib/function.ts), first 7.5 billion GB-s a month. */
    architecture: 'arm64',
    gbSecondArm64: 0.0000133334,
    gbSecondX86: 0.0000166667,
    requestsPerMillion: 0.2,
  },
  kinesis: {
    source: 'https://aws.amazon.com/kinesis/data-streams/pricing/',
    provisioned: {
      shardHour: 0.015,
      /** PUT payload units (each record rounded up to 25 KB), per million. */
      putPayloadUnitsPerMillion: 0.014,
      putPayloadUnitBytes: 25 * 1024,
    },
    onDemand: {
      streamHour: 0.04,
      /** Data in per GB, each record rounded up to 1 KB. */
      ingestPerGb: 0.08,
      recordRoundingBytes: 1024,
      /** Data out per GB (shared-throughput consumers), also rounded up to 1 KB per record. */
      retrievalPerGb: 0.04,
    },
  },
  firehose: {
    source: 'https://aws.amazon.com/firehose/pricing/',
    /** Direct PUT ingestion, first 500 TB a month, per GB; each record rounded up to 5 KB. */
    ingestPerGb: 0.029,
    recordRoundingBytes: 5 * 1024,
    /** Dynamic partitioning, per GB processed. */
    dynamicPartitioningPerGb: 0.02,
    /** Dynamic partitioning, per 1,000 objects delivered to S3. */
    dynamicPartitioningPer1000Objects: 0.005,
    /** JQ processing per hour (inline parsing of app_id); not in the bench: its hours are unknown. */
    jqProcessingHour: 0.07,
    /** Buffer per partition (dynamic partitioning: 64–128 MiB, 60–900 s). */
    bufferBytes: 128 * 1024 * 1024,
    bufferSeconds: 900,
    /** Active partitions of one stream before the quota must be raised. */
    activePartitionQuota: 500,
  },
  eventBridge: {
    source: 'https://aws.amazon.com/eventbridge/pricing/',
    /** Custom events published (PutEvents), per million 64 KB chunks. */
    customEventsPerMillion: 1.0,
  },
  cloudWatchLogs: {
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
    /** Logs ingested (standard class), per GB. */
    ingestPerGb: 0.5,
  },
} as const;

/** S3 server access log records (one per request to the staging bucket), bytes each. */
export const ACCESS_LOG_RECORD_BYTES = 400;
