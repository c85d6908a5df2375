/**
 * Each connection's current rate each way (sampled once a second), for /connections, /stats and
 * the dashboard.
 */
import type { Chore, Housekeeping } from '../housekeeping.js';

/** What the sampler needs of a connection. */
export interface Metered {
  readonly startedAt: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

interface Sample {
  at: number;
  up: number;
  down: number;
  rateUp: number;
  rateDown: number;
}

/**
 * Each connection's bytes per second each way, from the byte counters' change between two
 * samples. One housekeeping chore for all connections; samples live in a WeakMap, so a closed
 * connection's go with it.
 */
export class RateSampler {
  readonly #samples = new WeakMap<Metered, Sample>();
  #chore: Chore | undefined;

  constructor(
    /** forEach, not for-of: iterating a Set made an object per connection per sample. */
    private readonly items: { forEach(visit: (c: Metered) => void): void },
    private readonly intervalMs = 1000,
  ) {}

  /** Samples on the housekeeping's timer; times are wall-clock ms, as the connections' startedAt (display data). */
  start(housekeeping: Housekeeping): void {
    this.#chore ??= housekeeping.add('rate sampler', this.intervalMs, () => this.sample());
  }

  stop(): void {
    this.#chore?.cancel();
    this.#chore = undefined;
  }

  /**
   * Each connection's sample is one object, updated in place: with ten thousand connections a new
   * one per connection per second was most of the garbage an idle proxy made.
   */
  sample(now = Date.now()): void {
    this.items.forEach((c) => {
      let s = this.#samples.get(c);
      if (!s) {
        s = { at: c.startedAt, up: 0, down: 0, rateUp: 0, rateDown: 0 };
        this.#samples.set(c, s);
      }
      const ms = now - s.at;
      if (ms <= 0) return;
      const up = c.bytesUp;
      const down = c.bytesDown;
      s.rateUp = ((up - s.up) * 1000) / ms;
      s.rateDown = ((down - s.down) * 1000) / ms;
      s.at = now;
      s.up = up;
      s.down = down;
    });
  }

  /** The last sample's rates; before the first one, the average since the connection started. */
  rates(c: Metered, now = Date.now()): { up: number; down: number } {
    const s = this.#samples.get(c);
    // A sample made at the connection's start has no rate yet.
    if (s && s.at !== c.startedAt) return { up: s.rateUp, down: s.rateDown };
    const ms = now - c.startedAt;
    return ms > 0 ? { up: (c.bytesUp * 1000) / ms, down: (c.bytesDown * 1000) / ms } : { up: 0, down: 0 };
  }
}
