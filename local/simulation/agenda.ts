/** What happens in a simulated world, and when: actions ordered by time, then by insertion. */
import type { Frequency } from '../../lambdas/definitions.ts';
import type { ExportJob } from '../../lambdas/ports/index.ts';
import type { IncomingRecord } from '../../lambdas/usecases/stage-batch.ts';
import type { GeneratedEvent } from '../events.ts';
import type { DrillStep, OperatorDrill } from '../operator-drills.ts';

export type Action =
  | { kind: 'arrival'; shard: number; events: GeneratedEvent[] }
  | { kind: 'stage'; shard: string }
  | { kind: 'redeliver'; shard: string; records: IncomingRecord[] }
  | { kind: 'late-write'; key: string }
  | { kind: 'cli-stage'; run: number; rerun: boolean }
  | { kind: 'stager-runbook'; shard: string }
  | { kind: 'tick'; frequency: Frequency; scheduledTime: Date; duplicate: boolean }
  | { kind: 'job'; job: ExportJob; failures: number }
  | { kind: 'create'; connectionId: string }
  | { kind: 'change-frequency'; connectionId: string; step: 1 | 2 }
  | { kind: 'pause'; connectionId: string }
  | { kind: 'resume'; connectionId: string }
  | { kind: 'operator'; drill: OperatorDrill; step: DrillStep }
  | { kind: 'compact'; slotStart: Date; duplicate: boolean };

export interface Scheduled {
  at: number;
  order: number;
  action: Action;
}

export class Agenda {
  private readonly items: Scheduled[] = [];
  private order = 0;

  add(at: number, action: Action): void {
    const item = { at, order: this.order++, action };
    // Binary search for the insertion point: (at, order) ascending.
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = this.items[mid]!;
      if (other.at < at || (other.at === at && other.order < item.order)) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, item);
  }

  next(): Scheduled | undefined {
    return this.items.shift();
  }

  get size(): number {
    return this.items.length;
  }
}
