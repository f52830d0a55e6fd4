/** What the simulated platform's actors share (local/simulation/run.ts makes it). */
import type { ManualClock } from '../clock.ts';
import type { LocalDriver } from '../driver.ts';
import type { Action } from './agenda.ts';
import type { FaultInjector } from './faults.ts';
import type { SimulationSettings } from './options.ts';
import type { Tally } from './tally.ts';

export interface SimContext {
  readonly settings: SimulationSettings;
  readonly tally: Tally;
  readonly faults: FaultInjector;
  readonly clock: ManualClock;
  /** The fault generator: fault draws, and the delays of retries and deliveries. */
  readonly random: () => number;
  readonly driver: LocalDriver;
  /** The settle delay of the deployment, in ms. */
  readonly settleMs: number;
  /** Put an action on the agenda, never before now. */
  schedule(at: number, action: Action): void;
}
