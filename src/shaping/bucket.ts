import { TokenBucket } from 'limiter';
import type { Clock } from '../clock.js';

/**
 * One token bucket: `rate` bytes/s, holding at most `burst` bytes.
 *
 * The state and arithmetic are limiter's TokenBucket (bucketSize, content,
 * tokensPerInterval, drip). Two things are ours: drip() reads the injected
 * clock instead of performance.now(), so tests move time by hand; and nobody
 * calls removeTokens(), whose waits poll per caller and are not fair across
 * the children of a shared parent. The scheduler decides who may take tokens.
 */
export class Bucket extends TokenBucket {
  readonly #clock: Clock;
  /** bytes per millisecond, kept alongside tokensPerInterval for the hot path */
  #perMs: number;

  constructor(rate: number, burst: number, clock: Clock) {
    super({ bucketSize: Math.ceil(burst), tokensPerInterval: rate, interval: 1000 });
    this.#clock = clock;
    this.#perMs = rate / 1000;
    this.lastDrip = clock.now();
    this.content = this.bucketSize; // a new bucket starts full: its first burst is the burst
  }

  get rate(): number {
    return this.tokensPerInterval;
  }

  override drip(): boolean {
    const now = this.#clock.now();
    const delta = now - this.lastDrip;
    if (delta <= 0) return false;
    this.lastDrip = now;
    const before = this.content;
    this.content = Math.min(this.content + delta * this.#perMs, this.bucketSize);
    return this.content > before;
  }

  /** Tokens available now. */
  available(): number {
    this.drip();
    return this.content;
  }

  take(n: number): void {
    this.content -= n;
  }

  /** Milliseconds until `n` tokens are there (0 if they are now). */
  msUntil(n: number): number {
    const missing = n - this.content;
    return missing <= 0 ? 0 : missing / this.#perMs;
  }

  /** Change rate and size in place; tokens already earned are kept up to the new size. */
  reconfigure(rate: number, burst: number): void {
    this.drip();
    this.tokensPerInterval = rate;
    this.#perMs = rate / 1000;
    this.bucketSize = Math.ceil(burst);
    if (this.content > this.bucketSize) this.content = this.bucketSize;
  }
}

/** `bucket` set to `rate` and `size`, or a new one. */
export function reuse(bucket: Bucket | null, rate: number, size: number, clock: Clock): Bucket {
  if (!bucket) return new Bucket(rate, size, clock);
  bucket.reconfigure(rate, size);
  return bucket;
}
