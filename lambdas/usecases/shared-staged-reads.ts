/**
 * Read-once fan-out: the connections of one app that a group job exports together read each
 * staged object from the staging bucket once, not once each. `join()` gives a member (one
 * `exportWindow` call) a StagingStore whose `openObject` is shared; the member calls `leave()`
 * when its export ends, however it ends. Bytes are kept until every active member has read or
 * passed them, and a fast member runs at most `lookAhead` objects ahead of the slowest. The
 * ordering this relies on, the memory bound and why it cannot deadlock:
 * docs/exactly-once.md#7-group-jobs-shared-reads-unchanged-guarantees.
 */
import { Readable } from 'node:stream';
import { stageTimeOfRefKey } from '../domain/staged-segment.ts';
import { compareStagedObjects } from '../domain/staging-layout.ts';
import { readAll } from '../domain/stream-bytes.ts';
import type { StagingStore } from '../ports/index.ts';
import { withOpenObject } from './staged-read-stats.ts';

/** K: how many objects a member may run ahead of the slowest member of its group. */
export const DEFAULT_LOOK_AHEAD_OBJECTS = 8;

interface Position {
  key: string;
  stageTime: Date;
}

interface Entry extends Position {
  body: Promise<Buffer>;
}

interface Member {
  active: boolean;
  /** The last key it asked for; undefined before its first open. */
  at?: Position;
  /** Keys it asked for and has not been handed yet (a member may read a few objects ahead). */
  pending: Set<string>;
}

export interface SharedReadStats {
  /** GETs of the underlying store made for shared opens. */
  fetched: number;
  /** Opens served by a GET another member made (or was making). */
  shared: number;
  /** Opens out of order (or of a key with no stage time), served straight from the store. */
  unshared: number;
  /** Times a member waited because it was K objects ahead of a slower one. */
  waits: number;
  /** Most objects kept in memory at once. */
  peakHeld: number;
}

/** A member's view of the staging store. */
export interface SharedReadMember extends StagingStore {
  /** The member's export has ended: it holds nothing back any more. Idempotent. */
  leave(): void;
}

export class SharedStagedReads {
  readonly stats: SharedReadStats = { fetched: 0, shared: 0, unshared: 0, waits: 0, peakHeld: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly members = new Set<Member>();
  private wakeUps: (() => void)[] = [];

  constructor(
    private readonly store: StagingStore,
    readonly lookAhead = DEFAULT_LOOK_AHEAD_OBJECTS,
  ) {
    if (!Number.isInteger(lookAhead) || lookAhead < 1)
      throw new Error('lookAhead must be a whole number >= 1');
  }

  /** Objects kept in memory now. */
  get held(): number {
    return this.entries.size;
  }

  /** A member's view. Join every member before any of them starts, so none misses an object. */
  join(): SharedReadMember {
    const member: Member = { active: true, pending: new Set() };
    this.members.add(member);
    const store = this.store;
    return { ...withOpenObject(store, (key) => this.open(member, key)), leave: () => this.leave(member) };
  }

  private leave(member: Member): void {
    if (!member.active) return;
    member.active = false;
    member.pending.clear();
    this.members.delete(member);
    this.release();
    this.wake();
  }

  private async open(member: Member, key: string): Promise<Readable> {
    const stageTime = stageTimeOfRefKey(key);
    const position = stageTime && { key, stageTime };
    if (
      !member.active ||
      !position ||
      (member.at !== undefined && compareStagedObjects(position, member.at) <= 0)
    ) {
      this.stats.unshared += 1;
      return this.store.openObject(key);
    }
    member.at = position;
    member.pending.add(key);
    // Everything before `key` that it is not still waiting for is passed: what only it needed goes.
    this.release();
    try {
      for (;;) {
        // Its export ended while this read waited (a read-ahead it will never take).
        if (!member.active) throw new Error(`staged object ${key}: the reader left its group`);
        let entry = this.entries.get(key);
        if (entry) {
          this.stats.shared += 1;
        } else if (this.heldBefore(position) < this.lookAhead) {
          entry = this.fetch(position);
        } else {
          this.stats.waits += 1;
          await this.changed();
          continue;
        }
        member.pending.delete(key);
        this.release();
        // A copy of its own: a member may hand its bytes on (to a worker thread) without the others noticing.
        return Readable.from([Buffer.from(await entry.body)], { objectMode: false });
      }
    } finally {
      member.pending.delete(key);
    }
  }

  private fetch(position: Position): Entry {
    this.stats.fetched += 1;
    const entry: Entry = { ...position, body: this.store.openObject(position.key).then(readAll) };
    this.entries.set(position.key, entry);
    this.stats.peakHeld = Math.max(this.stats.peakHeld, this.entries.size);
    entry.body.catch(() => {
      // Not cached: whoever asks for the key later gets a fresh GET.
      if (this.entries.get(position.key) === entry) this.entries.delete(position.key);
      this.wake();
    });
    this.wake();
    return entry;
  }

  /** Objects before `position` still kept for slower members: how far ahead a member is. */
  private heldBefore(position: Position): number {
    let n = 0;
    for (const entry of this.entries.values()) if (compareStagedObjects(entry, position) < 0) n += 1;
    return n;
  }

  /** Drop every object that no active member will read any more. */
  private release(): void {
    let dropped = false;
    for (const [key, entry] of this.entries) {
      if (![...this.members].some((m) => needs(m, entry))) {
        this.entries.delete(key);
        dropped = true;
      }
    }
    if (dropped) this.wake();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.wakeUps.push(resolve));
  }

  private wake(): void {
    const wakeUps = this.wakeUps;
    this.wakeUps = [];
    for (const wakeUp of wakeUps) wakeUp();
  }
}

/** True while `member` may still read `entry`: it has not asked for anything after it, or waits for it. */
function needs(member: Member, entry: Position): boolean {
  if (!member.active) return false;
  if (!member.at) return true;
  return compareStagedObjects(entry, member.at) > 0 || member.pending.has(entry.key);
}
