import type { Clock } from '../clock.js';

/**
 * Events per second over a moving window, kept as a ring of fixed-width
 * buckets (100 ms by default: 10 buckets for 1 s, 100 for 10 s).
 *
 * add() and rate() cost O(1) and allocate nothing. The ring moves forward
 * lazily when either is called; clearing the buckets skipped during a quiet
 * spell costs at most one pass over the ring, however long the spell was.
 *
 * The window is the current (partial) bucket plus the bucketCount - 1 before
 * it, so the last 1 s means between 0.9 s and 1 s of history. An event at
 * t = 0 still counts at t = 999 ms and is gone at t = 1000 ms.
 *
 * Before a whole window has passed since creation, rate() divides by the time
 * elapsed since creation (at least 1 s) rather than the window length. The
 * buckets then hold every event since creation, so this gives the true average
 * so far instead of reading 10x too low in the first second of a 10 s window.
 * The 1 s floor stops the very first events from reading as huge rates (one
 * event after 10 ms is not 100/s).
 */
export class MovingRate {
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly #clock: Clock;
  readonly #buckets: Float64Array;
  readonly #start: number;
  /** Ring index of the bucket that holds the current tick. */
  #head = 0;
  /** Bucket number (since #start) that #head holds. */
  #headTick = 0;
  /** Sum of every bucket in the ring. */
  #sum = 0;

  constructor(clock: Clock, windowMs: number, bucketMs = 100) {
    if (!(bucketMs > 0) || !Number.isFinite(bucketMs)) {
      throw new RangeError(`MovingRate: bucketMs must be a positive number, got ${bucketMs}`);
    }
    const count = windowMs / bucketMs;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(
        `MovingRate: windowMs (${windowMs}) must be a positive whole multiple of bucketMs (${bucketMs})`,
      );
    }
    this.#clock = clock;
    this.windowMs = windowMs;
    this.bucketMs = bucketMs;
    this.#buckets = new Float64Array(count);
    this.#start = clock.now();
  }

  /** Record `count` events now. */
  add(count = 1): void {
    this.#advance();
    this.#buckets[this.#head] += count;
    this.#sum += count;
  }

  /** Events in the window. */
  count(): number {
    this.#advance();
    return this.#sum;
  }

  /** Events per second over the window (see the class comment for the first window). */
  rate(): number {
    this.#advance();
    const elapsed = this.#clock.now() - this.#start;
    const seconds = Math.min(this.windowMs, Math.max(1000, elapsed)) / 1000;
    return this.#sum / seconds;
  }

  #advance(): void {
    const tick = Math.floor((this.#clock.now() - this.#start) / this.bucketMs);
    // A clock that steps back (it should not) leaves the ring where it is.
    if (tick <= this.#headTick) return;
    const buckets = this.#buckets;
    const n = buckets.length;
    if (tick - this.#headTick >= n) {
      buckets.fill(0);
      this.#sum = 0;
      this.#head = tick % n;
    } else {
      for (let t = this.#headTick; t < tick; t++) {
        this.#head = this.#head + 1 === n ? 0 : this.#head + 1;
        this.#sum -= buckets[this.#head]!;
        buckets[this.#head] = 0;
      }
    }
    this.#headTick = tick;
  }
}

/** A rate rounded to 2 decimals, as the stats output shows it. */
export function roundRate(rate: number): number {
  return Math.round(rate * 100) / 100;
}

/** The current rate of each named MovingRate, rounded to 2 decimals. */
export function snapshot<K extends string>(rates: Readonly<Record<K, MovingRate>>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const key of Object.keys(rates) as K[]) out[key] = roundRate(rates[key].rate());
  return out;
}
