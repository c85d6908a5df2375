/**
 * The open connections of a proxy: a connection joins at accept and leaves in its close(). The
 * idle sweep (one housekeeping chore for all of them, instead of a timer per socket: ~0.4 KB a
 * connection) and the drain at shutdown live here.
 */
import type { Housekeeping, Chore } from '../housekeeping.js';
import type { AppConfig } from '../config/types.js';
import type { Connection } from './connection.js';

export class OpenConnections {
  readonly #set = new Set<Connection>();
  readonly #idleChore: Chore;
  #drained: (() => void) | undefined;

  constructor(housekeeping: Housekeeping) {
    // forEach: a for-of over the Set made an iterator result per connection per sweep.
    this.#idleChore = housekeeping.add('idle sweep', 0, (now) => this.#set.forEach((c) => c.sweepIdle(now)));
  }

  get size(): number {
    return this.#set.size;
  }

  add(conn: Connection): void {
    this.#set.add(conn);
  }

  delete(conn: Connection): void {
    if (this.#set.delete(conn) && this.#set.size === 0) this.#drained?.();
  }

  forEach(visit: (conn: Connection) => void): void {
    this.#set.forEach(visit);
  }

  [Symbol.iterator](): IterableIterator<Connection> {
    return this.#set.values();
  }

  /** Sweep for idleness every quarter of the shortest idleTimeout, between 10 ms and 1 s (none: no sweep). */
  configure(apps: readonly AppConfig[]): void {
    const timeouts = apps.map((a) => a.idleTimeout).filter((ms) => ms > 0);
    this.#idleChore.every(timeouts.length > 0 ? Math.min(1000, Math.max(10, Math.floor(Math.min(...timeouts) / 4))) : 0);
  }

  /** Resolves once every connection has closed, or after `ms` (then returns how many are left). */
  async drain(ms: number): Promise<number> {
    if (this.#set.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#drained = undefined;
    }
    return this.#set.size;
  }

  /** Close every connection left (with `reason`). */
  closeAll(reason: 'shutdown'): void {
    for (const c of [...this.#set]) c.close(reason);
  }

  stop(): void {
    this.#idleChore.cancel();
  }
}
