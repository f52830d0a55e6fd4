/**
 * The operator of the simulated platform: creates the connections, changes their frequency,
 * pauses and resumes them, and runs the operator drills (local/operator-drills.ts) — each field
 * that can be wrong made wrong on one connection for a while, then fixed; after fixing a field the
 * exporter accepts whatever its value, the operator converges with a backfill (docs/operations.md,
 * "Fixing a row").
 */
import { FREQUENCIES } from '../../lambdas/definitions.ts';
import { type Connection, type ConnectionInput, parseConnection } from '../../lambdas/domain/connection.ts';
import { connectionPrefix } from '../../lambdas/domain/object-keys.ts';
import { boundaryAtOrBefore } from '../../lambdas/domain/windows.ts';
import type { ConnectionRepository } from '../../lambdas/ports/index.ts';
import { BackfillRefusedError, backfill } from '../../lambdas/usecases/backfill.ts';
import { seededRandom } from '../events.ts';
import {
  type DrillCandidate,
  type DrillField,
  type DrillStep,
  drillTarget,
  isAcceptedField,
  type OperatorDrill,
  planOperatorDrills,
} from '../operator-drills.ts';
import type { Agenda } from './agenda.ts';
import type { SimContext } from './context.ts';
import { bucketOf, MINUTE } from './options.ts';
import { between } from './random.ts';
import type { SimConnection } from './world.ts';

/** A running drill on one connection: its field, the row before it was made wrong, and when. */
interface RunningDrill {
  field: DrillField;
  original: Connection;
  wrongAt: number;
}

/** Backfills refused because a window is in progress are retried this often, at most this many times. */
const BACKFILL_RETRY_MS = 20 * MINUTE;
const BACKFILL_ATTEMPTS = 40;

export class SimulatedOperator {
  /** Connections paused by the operator and not resumed yet. */
  readonly paused = new Set<string>();
  /** The connections running operator drills have made wrong. */
  private readonly drilled = new Map<string, RunningDrill>();
  /** Prefixes a drill moved a connection's files to (its folder or name made wrong). */
  private readonly formerPrefixes = new Map<string, Set<string>>();
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
      apps: [...new Set(this.connections.map((c) => c.input.appId))],
      start,
      end,
    });
    for (const drill of drills) {
      agenda.add(drill.from, { kind: 'operator', drill, step: { kind: 'wrong' } });
      agenda.add(drill.until, { kind: 'operator', drill, step: { kind: 'fixed' } });
    }
  }

  /** The field a running drill has made wrong on `connectionId`. */
  drilledField(connectionId: string): DrillField | undefined {
    return this.drilled.get(connectionId)?.field;
  }

  /** The prefixes (other than its own at the end) drills made a connection write under. */
  prefixesLeft(connection: Connection): string[] {
    const own = connectionPrefix(connection);
    return [...(this.formerPrefixes.get(connection.connectionId) ?? [])].filter((p) => p !== own);
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

  /** A drill's step: its field made wrong on a connection picked now (see drillTarget), fixed, or the backfill after a fix. */
  async drill(drill: OperatorDrill, step: DrillStep): Promise<void> {
    if (step.kind === 'backfill') return this.converge(drill, step);
    if (step.kind === 'fixed') {
      const [target, running] = [...this.drilled].find(([, d]) => d.field === drill.field) ?? [];
      if (!target || !running) return;
      this.drilled.delete(target);
      this.ctx.tally.fired(`drill-${drill.field}-fixed`);
      await this.update(target, () => drill.fixed(running.original));
      // A wrong value the exporter accepted was exported as written: write those windows again.
      if (isAcceptedField(drill.field))
        await this.converge(drill, {
          kind: 'backfill',
          connectionId: target,
          committedSince: running.wrongAt,
          attempt: 1,
        });
      return;
    }
    const target = drillTarget(this.drillRandom, await this.drillCandidates());
    if (!target) return;
    const raw = await this.repository.getRaw(target);
    if (!raw) return;
    const original = parseConnection(raw);
    this.drilled.set(target, { field: drill.field, original, wrongAt: this.ctx.clock.now().getTime() });
    this.ctx.tally.fired(`drill-${drill.field}-wrong`);
    const wrong = await this.update(target, () => drill.wrong(original));
    if (wrong) {
      const prefixes = this.formerPrefixes.get(target) ?? new Set<string>();
      this.formerPrefixes.set(target, prefixes.add(connectionPrefix(wrong)));
    }
  }

  /**
   * After a fix: pause (unless paused already), `backfill --committed-since` the wrong edit, resume
   * and export now (docs/operations.md, "Fixing a row"). Refused while a window is in progress:
   * resumed and exported, so that window commits, and retried later.
   */
  private async converge(
    drill: OperatorDrill,
    step: Extract<DrillStep, { kind: 'backfill' }>,
  ): Promise<void> {
    const { ctx } = this;
    const { field } = drill;
    const { connectionId, committedSince, attempt } = step;
    const pausedHere = !this.paused.has(connectionId);
    if (pausedHere) await this.update(connectionId, () => ({ status: 'PAUSED' }));
    try {
      const result = await backfill(
        { connectionId, committedSince: new Date(committedSince) },
        {
          connections: this.repository,
          state: ctx.driver.runtime.state,
          clock: ctx.clock,
          stagingRetentionDays: ctx.driver.runtime.exportDeps().settings.stagingRetentionDays,
        },
      );
      // Nothing committed since the wrong edit (e.g. its windows were still pending): nothing to write again.
      ctx.tally.fired(`drill-${field}-${result.firstCommittedSince ? 'backfilled' : 'nothing-committed'}`);
    } catch (error) {
      if (!(error instanceof BackfillRefusedError && error.code === 'WINDOW_IN_PROGRESS')) throw error;
      ctx.tally.fired('drill-backfill-window-in-progress');
      if (attempt >= BACKFILL_ATTEMPTS)
        ctx.tally.problem(
          `${connectionId}: backfill after the ${field} fix refused ${attempt} times: ${error.message}`,
        );
      else {
        const next = { ...step, attempt: attempt + 1 };
        ctx.schedule(ctx.clock.now().getTime() + BACKFILL_RETRY_MS, { kind: 'operator', drill, step: next });
      }
    } finally {
      if (pausedHere) await this.update(connectionId, () => ({ status: 'ACTIVE' }));
    }
    if (pausedHere) await this.exportNow(connectionId);
  }

  /** `export --connection ID`: a job up to the latest settled window end of its frequency, delivered shortly. */
  private async exportNow(connectionId: string): Promise<void> {
    const { ctx } = this;
    const raw = await this.repository.getRaw(connectionId);
    if (!raw) return;
    const now = ctx.clock.now().getTime();
    const windowEnd = boundaryAtOrBefore(parseConnection(raw).frequency, new Date(now - ctx.settleMs));
    const job = { connectionId, windowEnd: windowEnd.toISOString(), reason: 'manual' as const };
    ctx.schedule(now + between(this.drillRandom, 1000, 60_000), { kind: 'job', job, failures: 0 });
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
