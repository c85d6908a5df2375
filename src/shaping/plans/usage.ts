/**
 * Usage accounting: the bytes each customer moved up and down in the current accounting period.
 * The bytes are counted where they pass, by the scheduler, in the customer's two nodes
 * (SchedNode.bytes: every byte of every connection of the customer, whatever its data plane); a
 * customer's record takes what its nodes passed since it last looked (`fold`). Records live in
 * memory while their customer has connections and for EVICT_MS after, and in the usage store
 * (usage-store.ts) for the rest of the period: a customer coming back is read back from it. Each
 * closed period goes to the usage log as one JSON line, before the record is reset.
 */
import type { Span } from '../../config/calendar.js';
import type { SchedNode } from '../scheduler.js';
import type { ClosedPeriod, StoredUsage, UsageStore } from './usage-store.js';

/** How long a customer's record stays in memory after its last connection closed. */
export const EVICT_MS = 60_000;

interface Nodes {
  readonly up: SchedNode;
  readonly down: SchedNode;
}

/** One customer's usage in memory. */
export class Usage {
  /** bytes of the current period folded in so far (see UsageBook.fold) */
  up = 0;
  down = 0;
  last: ClosedPeriod | null = null;
  /** the customer's scheduler nodes, and their `bytes` when last folded */
  nodes: Nodes | null = null;
  seenUp = 0;
  seenDown = 0;
  /** the stored record has been read (and added in) */
  loaded = false;
  /** changed since it was last written to the store */
  dirty = false;
  /** over its quota in this period */
  exceeded = false;
  /** clock time it was last seen with an open connection */
  activeAt = 0;
  constructor(
    readonly id: string,
    /** the customer's own tier (not the quota's `then`), as last seen */
    public tier: string,
    public start: number,
    public end: number,
  ) {}
}

/** The closed period as its usage log line. */
export type LogLine = (id: string, closed: ClosedPeriod) => string;

export interface BookDeps {
  /** null: memory only (a proxy with no state file); records are then never evicted */
  store: UsageStore | null;
  /** appends lines (each ending in "\n") to the usage log */
  append: (text: string) => Promise<void>;
  line: LogLine;
}

export class UsageBook {
  readonly records = new Map<string, Usage>();
  readonly #loads = new Map<string, Promise<Usage>>();
  readonly #deps: BookDeps;
  period: Span;

  constructor(period: Span, deps: BookDeps) {
    this.period = period;
    this.#deps = deps;
  }

  get store(): UsageStore | null {
    return this.#deps.store;
  }

  /**
   * The state file moved: records are written to `store` from now on, those in memory at the next
   * flush; what the old store holds of customers not in memory stays there.
   */
  moveTo(store: UsageStore | null): void {
    this.#deps.store = store;
    for (const u of this.records.values()) {
      u.dirty = true;
      u.loaded = true;
    }
  }

  /** The record of `id` in memory, created unloaded when absent (the stored counts are added when read). */
  touch(id: string, tier: string): Usage {
    let u = this.records.get(id);
    if (!u) {
      u = new Usage(id, tier, this.period.start, this.period.end);
      this.records.set(id, u);
      if (!this.#deps.store) u.loaded = true;
    }
    u.tier = tier;
    return u;
  }

  /** The record of `id`, read from the store first if it is not in memory yet. */
  load(id: string, tier: string): Usage | Promise<Usage> {
    const u = this.touch(id, tier);
    if (u.loaded) return u;
    let pending = this.#loads.get(id);
    if (!pending) {
      pending = this.#read(u).finally(() => this.#loads.delete(id));
      this.#loads.set(id, pending);
    }
    return pending;
  }

  /** Waits for every read under way. */
  async loading(): Promise<void> {
    await Promise.all(this.#loads.values());
  }

  async #read(u: Usage): Promise<Usage> {
    const stored = await this.#deps.store!.get(u.id).catch(() => undefined);
    if (stored && isStored(stored)) {
      if (stored.start === u.start) {
        u.up += stored.up;
        u.down += stored.down;
        u.last = stored.last;
      } else if (stored.start < u.start) {
        // Its period ended while it was stored (or the proxy was down): close it now.
        const closed = closedOf(stored);
        if (closed.up + closed.down > 0) await this.#deps.append(this.#deps.line(u.id, closed));
        u.last = closed;
        u.dirty = true;
      }
    }
    u.loaded = true;
    return u;
  }

  /** Count from `nodes` on (the customer's nodes; a new customer object has new ones). */
  bind(u: Usage, nodes: Nodes | null): void {
    if (u.nodes === nodes) return;
    this.fold(u);
    u.nodes = nodes;
    u.seenUp = nodes ? nodes.up.bytes : 0;
    u.seenDown = nodes ? nodes.down.bytes : 0;
  }

  /** Takes in what the customer's nodes passed since the last fold. */
  fold(u: Usage): void {
    const nodes = u.nodes;
    if (!nodes) return;
    const up = nodes.up.bytes - u.seenUp;
    const down = nodes.down.bytes - u.seenDown;
    if (up === 0 && down === 0) return;
    u.up += up;
    u.down += down;
    u.seenUp = nodes.up.bytes;
    u.seenDown = nodes.down.bytes;
    u.dirty = true;
  }

  /** Bytes up and down in the period so far, without folding. */
  static upNow(u: Usage): number {
    return u.up + (u.nodes ? u.nodes.up.bytes - u.seenUp : 0);
  }

  static downNow(u: Usage): number {
    return u.down + (u.nodes ? u.nodes.down.bytes - u.seenDown : 0);
  }

  /** Writes the records that changed; then forgets those `idle` says may go (not while a write or read of theirs is pending). */
  async flush(idle: (u: Usage) => boolean): Promise<void> {
    const store = this.#deps.store;
    const changed = new Map<string, StoredUsage>();
    for (const u of this.records.values()) {
      this.fold(u);
      if (u.dirty && u.loaded) {
        changed.set(u.id, storedOf(u));
        u.dirty = false;
      }
    }
    if (store && changed.size > 0) {
      try {
        await store.write(changed);
      } catch (err) {
        for (const id of changed.keys()) {
          const u = this.records.get(id);
          if (u) u.dirty = true;
        }
        throw err;
      }
    }
    if (!store) return;
    for (const u of this.records.values()) {
      if (!u.dirty && u.loaded && !this.#loads.has(u.id) && idle(u)) this.records.delete(u.id);
    }
  }

  /**
   * The period ended: each record in memory closes its period (one usage log line, when it moved
   * anything) and starts `next` from zero; then the stored records of customers not in memory.
   * The lines are appended before any record is reset or written, so a crash in between may
   * repeat a line (keyed by customer and start), never lose one.
   */
  async roll(next: Span): Promise<string[]> {
    await this.loading();
    const lines: string[] = [];
    const reset: string[] = [];
    for (const u of this.records.values()) {
      this.fold(u);
      if (u.start >= next.start) continue;
      // A period cut short (the accounting period was changed) ends where the next begins.
      const closed: ClosedPeriod = { tier: u.tier, start: u.start, end: Math.min(u.end, next.start), up: u.up, down: u.down };
      if (closed.up + closed.down > 0) lines.push(this.#deps.line(u.id, closed));
      u.last = closed;
      u.up = u.down = 0;
      u.start = next.start;
      u.end = next.end;
      u.exceeded = false;
      u.dirty = true;
      reset.push(u.id);
    }
    this.period = next;
    if (lines.length > 0) await this.#deps.append(lines.join(''));
    await this.closeStored();
    return reset;
  }

  /** Closes the stored periods that ended, of customers not in memory (at start, and after a roll). */
  async closeStored(): Promise<void> {
    const store = this.#deps.store;
    if (!store) return;
    const { start, end } = this.period;
    const lines: string[] = [];
    await store.sweep((id, rec) => {
      if (!isStored(rec)) return null; // a broken record (a file edited by hand) goes
      if (this.records.has(id) || rec.start >= start) return rec; // in memory: its record there closes it
      const closed = closedOf(rec);
      if (closed.up + closed.down === 0) return null; // nothing in the closed period: forgotten
      lines.push(this.#deps.line(id, closed));
      return { tier: rec.tier, start, end, up: 0, down: 0, last: closed };
    });
    if (lines.length > 0) await this.#deps.append(lines.join(''));
  }
}

function storedOf(u: Usage): StoredUsage {
  return { tier: u.tier, start: u.start, end: u.end, up: u.up, down: u.down, last: u.last };
}

function closedOf(rec: StoredUsage): ClosedPeriod {
  return { tier: rec.tier, start: rec.start, end: rec.end, up: rec.up, down: rec.down };
}

/** A stored record with the fields it needs (a file edited by hand may have anything). */
function isStored(rec: StoredUsage): boolean {
  return (
    typeof rec === 'object' && rec !== null && typeof rec.tier === 'string' &&
    Number.isFinite(rec.start) && Number.isFinite(rec.end) && Number.isFinite(rec.up) && Number.isFinite(rec.down)
  );
}
