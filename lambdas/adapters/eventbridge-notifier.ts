import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { ExportNotifier } from '../ports/index.ts';

export const EVENT_SOURCE = 's3-event-export';

/**
 * Publishes export outcomes on the default event bus so operators can route them
 * (e-mail, a customer webhook): ExportSucceeded, ExportFailed, ConnectionRecovered.
 * Details carry ids, windows, counts and diagnoses — never event data or secrets.
 */
export class EventBridgeNotifier implements ExportNotifier {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly eventBusName = 'default',
  ) {}

  private async put(detailType: string, detail: Record<string, unknown>): Promise<void> {
    const response = await this.client.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: EVENT_SOURCE,
            DetailType: detailType,
            Detail: JSON.stringify(detail),
            EventBusName: this.eventBusName,
          },
        ],
      }),
    );
    if (response.FailedEntryCount) {
      throw new Error(
        `EventBridge refused ${detailType}: ${response.Entries?.[0]?.ErrorCode ?? 'unknown error'}`,
      );
    }
  }

  async windowCommitted(event: Parameters<ExportNotifier['windowCommitted']>[0]): Promise<void> {
    const detail = {
      connectionId: event.connectionId,
      windowStart: event.windowStart.toISOString(),
      windowEnd: event.windowEnd.toISOString(),
      sequence: event.sequence,
      records: event.records,
      bytes: event.bytes,
      files: event.files,
    };
    await this.put('ExportSucceeded', detail);
    if (event.recovered) await this.put('ConnectionRecovered', detail);
  }

  async exportFailed(event: Parameters<ExportNotifier['exportFailed']>[0]): Promise<void> {
    await this.put('ExportFailed', {
      connectionId: event.connectionId,
      windowEnd: event.windowEnd.toISOString(),
      diagnosis: event.diagnosis,
    });
  }
}
