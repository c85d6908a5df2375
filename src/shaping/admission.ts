import type { TierConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { Bucket } from './bucket.js';

/** What the shaper asks of a customer's admission limits (local, or fleet-wide in src/cluster/). */
export interface AdmissionGate {
  /** The release of an admitted connection (call it once, at close), or null when a limit refuses it. */
  admit(): (() => void) | null | Promise<(() => void) | null>;
  /** Same limits as `tier`? (then a tier change keeps the counts) */
  matches(tier: TierConfig): boolean;
  stop(): void;
}

/** Same admission limits? */
export function sameLimits(a: Pick<TierConfig, 'maxConnections' | 'connectionRate'>, b: Pick<TierConfig, 'maxConnections' | 'connectionRate'>): boolean {
  return a.maxConnections === b.maxConnections && a.connectionRate?.count === b.connectionRate?.count && a.connectionRate?.per === b.connectionRate?.per;
}

/**
 * A customer's admission limits on this instance: concurrent connections (maxConnections, a
 * count) and new connections per interval (connectionRate, a token bucket holding `count`
 * tokens and refilling `count` per `per` on the injected clock). A connection over either is
 * refused at once, never queued.
 *
 * Not bottleneck (the design card's package, which this used to be): with a customer per source
 * address (defaultTier) a proxy meets millions of customers, and a Bottleneck limiter costs about
 * 5 KB each plus a job, promises and events per connection, and refills its reservoir on a real
 * interval timer of its own that the injected clock cannot drive. This is a counter and a
 * limiter token bucket (src/shaping/bucket.ts), about 0.2 KB.
 */
export class Admission implements AdmissionGate {
  readonly maxConnections: number | undefined;
  readonly connectionRate: TierConfig['connectionRate'];
  readonly #rate: Bucket | null;
  #open = 0;

  private constructor(tier: TierConfig, clock: Clock) {
    this.maxConnections = tier.maxConnections;
    this.connectionRate = tier.connectionRate;
    const rate = tier.connectionRate;
    this.#rate = rate ? new Bucket((rate.count * 1000) / rate.per, rate.count, clock) : null;
  }

  /** An Admission for the tier's limits, or null when it has none. */
  static for(tier: TierConfig, clock: Clock): Admission | null {
    return tier.maxConnections !== undefined || tier.connectionRate !== undefined ? new Admission(tier, clock) : null;
  }

  matches(tier: TierConfig): boolean {
    return sameLimits(this, tier);
  }

  /** Connections admitted and not yet released. */
  get open(): number {
    return this.#open;
  }

  admit(): (() => void) | null {
    if (this.maxConnections !== undefined && this.#open >= this.maxConnections) return null;
    if (this.#rate) {
      if (this.#rate.available() < 1) return null;
      this.#rate.take(1);
    }
    this.#open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#open--;
    };
  }

  stop(): void {}
}
