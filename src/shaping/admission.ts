import { createRequire } from 'node:module';
import type BottleneckType from 'bottleneck';
import type { TierConfig } from '../config/types.js';

// Loaded on first use: a proxy whose tiers set no admission limits does not
// pay bottleneck's ~6 MB of resident memory.
let BottleneckClass: typeof BottleneckType | undefined;
function bottleneck(): typeof BottleneckType {
  return (BottleneckClass ??= createRequire(import.meta.url)('bottleneck') as typeof BottleneckType);
}

/** What the shaper asks of a customer's admission limits (local, or fleet-wide in src/cluster/). */
export interface AdmissionGate {
  /** Resolves to the release of an admitted connection, or null when a limit refuses it. */
  admit(): Promise<(() => void) | null>;
  /** Same limits as `tier`? (then a tier change keeps the counts) */
  matches(tier: TierConfig): boolean;
  stop(): void;
}

/** Same admission limits? */
export function sameLimits(a: Pick<TierConfig, 'maxConnections' | 'connectionRate'>, b: Pick<TierConfig, 'maxConnections' | 'connectionRate'>): boolean {
  return a.maxConnections === b.maxConnections && a.connectionRate?.count === b.connectionRate?.count && a.connectionRate?.per === b.connectionRate?.per;
}

/**
 * A customer's admission limits — concurrent connections (maxConnections) and
 * new connections per interval (connectionRate) — on a bottleneck limiter.
 * Each admitted connection is a bottleneck job that runs until the connection
 * closes; with highWater 0 and the OVERFLOW strategy, a connection that would
 * have to wait is refused at once instead of queued.
 */
export class Admission implements AdmissionGate {
  readonly #limiter: BottleneckType;
  readonly maxConnections: number | undefined;
  readonly connectionRate: TierConfig['connectionRate'];

  private constructor(tier: TierConfig) {
    this.maxConnections = tier.maxConnections;
    this.connectionRate = tier.connectionRate;
    const rate = tier.connectionRate;
    const Bottleneck = bottleneck();
    this.#limiter = new Bottleneck({
      maxConcurrent: tier.maxConnections ?? null,
      highWater: 0,
      strategy: Bottleneck.strategy.OVERFLOW,
      ...(rate ? { reservoir: rate.count, reservoirRefreshAmount: rate.count, reservoirRefreshInterval: rate.per } : {}),
    });
  }

  /** An Admission for the tier's limits, or null when it has none. */
  static for(tier: TierConfig): Admission | null {
    return tier.maxConnections !== undefined || tier.connectionRate !== undefined ? new Admission(tier) : null;
  }

  /** Same limits as `tier`? (then a tier change keeps the counts) */
  matches(tier: TierConfig): boolean {
    return sameLimits(this, tier);
  }

  /**
   * Try to admit one connection. Resolves to a release function, or null when
   * a limit refuses it.
   */
  admit(): Promise<(() => void) | null> {
    return new Promise((resolve) => {
      let release!: () => void;
      const done = new Promise<void>((r) => (release = r));
      this.#limiter
        .schedule(() => {
          resolve(release);
          return done;
        })
        .catch(() => resolve(null));
    });
  }

  stop(): void {
    void this.#limiter.stop({ dropWaitingJobs: true }).catch(() => {});
    this.#limiter.disconnect();
  }
}
