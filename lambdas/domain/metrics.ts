/**
 * The custom CloudWatch metrics of the product, named once: the Lambdas emit
 * exactly these (Powertools Metrics, EMF — no IAM needed) and the stack's alarms
 * and dashboard watch exactly these. Pure: no SDK or CDK import.
 *
 * Powertools adds the dimension `service` (= the function's service name) to
 * every metric, so an alarm must name it too: `metricDimensions(...)`.
 */
import type { Frequency } from '../definitions.ts';

export { METRIC_NAMESPACE } from '../definitions.ts';

/** Powertools service names, one per function (also `POWERTOOLS_SERVICE_NAME`). */
export const SERVICE_NAMES = {
  stager: 'stager',
  compactor: 'compactor',
  dispatcher: 'dispatcher',
  exporter: 'exporter',
  connectionTest: 'connection-test',
  connectionSweep: 'connection-sweep',
} as const;
export type ServiceName = (typeof SERVICE_NAMES)[keyof typeof SERVICE_NAMES];

export const DIMENSIONS = {
  /** Added by Powertools to every metric. */
  service: 'service',
  /** Dispatcher metrics are per schedule frequency. */
  frequency: 'Frequency',
} as const;

export const METRICS = {
  // stager (dimensions: service)
  eventsStaged: 'EventsStaged',
  recordsQuarantined: 'RecordsQuarantined',
  /** Records of a unit the event source gave up on before it was staged (see the failure-queue runbook). */
  stagingRangesAbandoned: 'StagingRangesAbandoned',
  // compactor (dimensions: service)
  slotsCompacted: 'SlotsCompacted',
  eventsCompacted: 'EventsCompacted',
  /** Shard batches the stager could not stage (reported as batch item failures, so Errors stays 0). */
  stagingFailures: 'StagingFailures',
  // dispatcher (dimensions: service, Frequency)
  exportJobsEnqueued: 'ExportJobsEnqueued',
  /**
   * Rows refused: by the dispatcher per frequency (rows of its index query), and by the hourly
   * connection sweep (service connection-sweep, no Frequency) over every row of the table.
   */
  invalidConnections: 'InvalidConnections',
  /** Largest lag (watermark → latest boundary) over the frequency's active connections, seconds. */
  exportLagSeconds: 'ExportLagSeconds',
  /**
   * Age of the oldest unexported staged data over every connection of the frequency (active,
   * paused, invalid, never exported), seconds; the data-at-risk alarm watches it.
   */
  unexportedDataAgeSeconds: 'UnexportedDataAgeSeconds',
  /** Connections whose unexported data is past the data-at-risk age. */
  dataAtRiskConnections: 'DataAtRiskConnections',
  // exporter (dimensions: service)
  eventsExported: 'EventsExported',
  filesExported: 'FilesExported',
  bytesExported: 'BytesExported',
  connectionsRefused: 'ConnectionsRefused',
  exportFailures: 'ExportFailures',
  /**
   * Windows committed with a gap: part of the window was older than the staging retention when it
   * was exported, so its events may be missing. How many events is unknown once they expired.
   */
  expiredDataWindows: 'ExpiredDataWindows',
  /** Seconds of window time committed as a gap (staged data that may have expired unexported). */
  expiredDataSeconds: 'ExpiredDataSeconds',
  /** Stored bytes GET from the staging bucket: a group job reads each staged object once. */
  stagedBytesRead: 'StagedBytesRead',
  // connection-test (dimensions: service)
  /** "Test connection" runs whose report failed (0 or 1 per run). */
  connectionTestsFailed: 'ConnectionTestsFailed',
} as const;
export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** The dimensions a metric of `service` carries (with `Frequency` for the dispatcher's per-frequency metrics). */
export function metricDimensions(service: ServiceName, frequency?: Frequency): Record<string, string> {
  return frequency
    ? { [DIMENSIONS.service]: service, [DIMENSIONS.frequency]: frequency }
    : { [DIMENSIONS.service]: service };
}
