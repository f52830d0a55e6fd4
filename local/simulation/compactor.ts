/**
 * The compaction schedule, simulated (docs/simulation.md, "Compactor"): a run per slot shortly
 * after it may start, with faults drawn per run — skipped (the schedule failed: the exporter
 * compacts on demand), run twice at once, or crashed after the slot's data and before its index.
 */
import { COMPACTION_DELAY_SECONDS } from '../../lambdas/definitions.ts';
import { SLOT_MS, slotsOfWindow } from '../../lambdas/domain/staging-layout.ts';
import type { StagingStore } from '../../lambdas/ports/index.ts';
import { compactSlot } from '../../lambdas/usecases/compact-slot.ts';
import { withOpenObject } from '../../lambdas/usecases/staged-read-stats.ts';
import type { Agenda } from './agenda.ts';
import type { SimContext } from './context.ts';
import { SimulatedCrash } from './injected-errors.ts';
import type { SimulationSettings } from './options.ts';
import { between } from './random.ts';
import type { Tally } from './tally.ts';

/** A compaction run per slot of the run; some skipped, some doubled (from their own generator). */
export function planCompactions(
  agenda: Agenda,
  settings: SimulationSettings,
  random: () => number,
  tally: Tally,
): void {
  for (const slotStart of slotsOfWindow(new Date(settings.start), new Date(settings.end))) {
    const at = slotStart.getTime() + SLOT_MS + COMPACTION_DELAY_SECONDS * 1000 + between(random, 0, 60_000);
    if (random() < settings.faultRate / 3) {
      tally.fired('compaction-skipped');
      continue;
    }
    agenda.add(at, { kind: 'compact', slotStart, duplicate: random() < settings.faultRate / 3 });
  }
}

export class SimulatedCompactor {
  attempts = 0;

  constructor(private readonly ctx: SimContext) {}

  /** One scheduled run (two at once when `duplicate`), each maybe crashing after the data object. */
  async compact(slotStart: Date, duplicate: boolean): Promise<void> {
    if (duplicate) this.ctx.tally.fired('compaction-run-twice');
    await Promise.all((duplicate ? [1, 2] : [1]).map(() => this.run(slotStart)));
  }

  private async run(slotStart: Date): Promise<void> {
    const { faults, random, tally, driver, clock } = this.ctx;
    this.attempts += 1;
    const crash = faults.enabled && random() < this.ctx.settings.faultRate / 2;
    const store = crash ? crashAfterData(driver.runtime.staging, tally) : driver.runtime.staging;
    try {
      await compactSlot(slotStart, { store, clock });
    } catch (error) {
      if (!(error instanceof SimulatedCrash))
        tally.problem(`compaction of the slot at ${slotStart.toISOString()} failed: ${String(error)}`);
    }
  }
}

/** `store`, crashing right after the slot's data object is written (before its index, the commit). */
function crashAfterData(store: StagingStore, tally: Tally): StagingStore {
  return {
    ...withOpenObject(store, (key) => store.openObject(key)),
    async writeStream(key, body) {
      await store.writeStream(key, body);
      tally.fired('compactor-crash-after-data');
      throw new SimulatedCrash('compactor crashed after the slot data, before its index');
    },
  };
}
