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
  // dispatcher (dimensions: service, Frequency)
  exportJobsEnqueued: 'ExportJobsEnqueued',
  /**
   * Rows refused: by the dispatcher per frequency (rows of its index query), and by the hourly
   * connection sweep (service connection-sweep, no Frequency) over every row of the table.
   */
  invalidConnections: 'InvalidConnections',
  /** Largest lag (watermark → latest boundary) over the frequency's active connections, seconds. */
  exportLagSeconds: 'ExportLagSeconds',
  // exporter (dimensions: service)
  eventsExported: 'EventsExported',
  filesExported: 'FilesExported',
  bytesExported: 'BytesExported',
  connectionsRefused: 'ConnectionsRefused',
  exportFailures: 'ExportFailures',
  /** Stored bytes GET from the staging bucket: a group job reads each staged object once. */
  stagedBytesRead: 'StagedBytesRead',
} as const;
export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** The dimensions a metric of `service` carries (with `Frequency` for the dispatcher's per-frequency metrics). */
export function metricDimensions(service: ServiceName, frequency?: Frequency): Record<string, string> {
  return frequency
    ? { [DIMENSIONS.service]: service, [DIMENSIONS.frequency]: frequency }
    : { [DIMENSIONS.service]: service };
}
