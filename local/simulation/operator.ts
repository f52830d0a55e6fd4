/**
 * The operator of the simulated platform: creates the connections, changes their frequency,
 * pauses and resumes them, and runs the operator drills (local/operator-drills.ts) — each field
 * that can be wrong made wrong on one connection for a while, then fixed.
 */
import { FREQUENCIES } from '../../lambdas/definitions.ts';
import { type Connection, type ConnectionInput, parseConnection } from '../../lambdas/domain/connection.ts';
import type { ConnectionRepository } from '../../lambdas/ports/index.ts';
import { seededRandom } from '../events.ts';
import {
  type DrillCandidate,
  type DrillField,
  drillTarget,
  type OperatorDrill,
  planOperatorDrills,
} from '../operator-drills.ts';
import type { Agenda } from './agenda.ts';
import type { SimContext } from './context.ts';
import { bucketOf } from './options.ts';
import type { SimConnection } from './world.ts';

export class SimulatedOperator {
  /** Connections paused by the operator and not resumed yet. */
  readonly paused = new Set<string>();
  /** The connections running operator drills have made wrong, with the field. */
  private readonly drilled = new Map<string, DrillField>();
  private readonly drillRandom: () => number;
  private readonly repository: ConnectionRepository;

  constructor(
    private readonly ctx: SimContext,
    private readonly connections: readonly SimConnection[],
  ) {
    this.drillRandom = seededRandom(ctx.settings.seed * 6151 + 5);
    this.repository = ctx.driver.runtime.connections;
  }

  /** Put the drills on the agenda, one field after the other over the run. */
  async planDrills(agenda: Agenda): Promise<void> {
    const { start, end, runId } = this.ctx.settings;
    const drills = await planOperatorDrills({
      random: this.drillRandom,
      bucketName: bucketOf(runId),
      start,
      end,
    });
    for (const drill of drills) {
      agenda.add(drill.from, { kind: 'operator', drill, wrong: true });
      agenda.add(drill.until, { kind: 'operator', drill, wrong: false });
    }
  }

  /** The field a running drill has made wrong on `connectionId`. */
  drilledField(connectionId: string): DrillField | undefined {
    return this.drilled.get(connectionId);
  }

  async create(connectionId: string): Promise<void> {
    const c = this.connections.find((x) => x.input.connectionId === connectionId)!;
    await this.repository.put(parseConnection(c.input));
  }

  /** The next frequency (`step` 1) or the one after (`step` 2), in FREQUENCIES order. */
  async changeFrequency(connectionId: string, step: 1 | 2): Promise<void> {
    const next = await this.update(connectionId, (c) => ({
      frequency: FREQUENCIES[(FREQUENCIES.indexOf(c.frequency) + step) % FREQUENCIES.length]!,
    }));
    if (next) this.ctx.tally.fired('frequency-change');
  }

  async pause(connectionId: string): Promise<void> {
    this.paused.add(connectionId);
    this.ctx.tally.fired('pause');
    await this.update(connectionId, () => ({ status: 'PAUSED' }));
  }

  async resume(connectionId: string): Promise<void> {
    if (!this.paused.delete(connectionId)) return;
    await this.update(connectionId, () => ({ status: 'ACTIVE' }));
  }

  /** Every connection still paused is resumed (the end of the run). */
  async resumeAll(): Promise<void> {
    for (const id of [...this.paused]) await this.resume(id);
  }

  /** A drill makes its field wrong on a connection picked now (see drillTarget), or fixes it. */
  async drill(drill: OperatorDrill, wrong: boolean): Promise<void> {
    if (!wrong) {
      const target = [...this.drilled].find(([, field]) => field === drill.field)?.[0];
      if (!target) return;
      this.drilled.delete(target);
      this.ctx.tally.fired(`drill-${drill.field}-fixed`);
      await this.update(target, () => drill.fixed);
      return;
    }
    const target = drillTarget(this.drillRandom, await this.drillCandidates());
    if (!target) return;
    this.drilled.set(target, drill.field);
    this.ctx.tally.fired(`drill-${drill.field}-wrong`);
    await this.update(target, () => drill.wrong);
  }

  private async drillCandidates(): Promise<DrillCandidate[]> {
    const candidates: DrillCandidate[] = [];
    for (const c of this.connections) {
      const raw = await this.repository.getRaw(c.input.connectionId);
      if (raw && !this.paused.has(c.input.connectionId))
        candidates.push({ connectionId: c.input.connectionId, frequency: parseConnection(raw).frequency });
    }
    return candidates;
  }

  /** Read the row, apply `change`, write it back (as `connections put` would). */
  private async update(
    connectionId: string,
    change: (c: Connection) => Partial<ConnectionInput>,
  ): Promise<Connection | undefined> {
    const raw = await this.repository.getRaw(connectionId);
    if (!raw) return undefined;
    const current = parseConnection(raw);
    const next = parseConnection({
      ...current,
      ...change(current),
      updatedAt: this.ctx.clock.now().toISOString(),
    });
    await this.repository.put(next);
    return next;
  }
}
