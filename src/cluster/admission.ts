import type { TierConfig } from '../config/types.js';
import { sameLimits, type AdmissionGate } from '../shaping/admission.js';
import type { RedisLink } from './link.js';
import { ADMIT, RELEASE } from './scripts.js';

/** What a customer's fleet admission needs from the fleet. */
export interface AdmissionContext {
  link: RedisLink;
  instance: string;
  memberTimeout: number;
  keys: { members: string; admission(customer: string): string; rate(customer: string): string };
  /** The customer's connections admitted here and not yet released (one counter per customer, whatever its gate). */
  held(customer: string): HeldCount;
  /** Fraction of a limit this instance uses on its own while Redis is away. */
  fallbackShare(): number;
  now(): number;
}

/** A customer's connections admitted here, and its ADMIT/RELEASE scripts still on their way. */
export interface HeldCount {
  count: number;
  /**
   * While one is, the heartbeat leaves this customer's count in Redis alone: its snapshot could
   * otherwise land after the script and undo it (the fleet would briefly admit one too many).
   */
  inflight: number;
}

/** What the next heartbeat writes of the customers' held counts (see HeldCounts.snapshot). */
export interface HeldSnapshot {
  /** customer, count: the counts to write (0 once, then the customer is forgotten) */
  counts: [string, number][];
  /** customers with a script on its way: their count waits for the next heartbeat */
  waiting: string[];
}

/**
 * The customers' connections admitted here, which every heartbeat writes to Redis (so a lost
 * RELEASE or a Redis restart heals within a tick).
 */
export class HeldCounts {
  readonly #held = new Map<string, HeldCount>();
  /** customers whose count was last reported above 0 */
  #reported = new Set<string>();

  /** A customer's count (made at 0). */
  get(customer: string): HeldCount {
    let held = this.#held.get(customer);
    if (!held) this.#held.set(customer, (held = { count: 0, inflight: 0 }));
    return held;
  }

  customers(): IterableIterator<string> {
    return this.#held.keys();
  }

  /** The counts for the next heartbeat; a customer at 0 already reported at 0 is forgotten here. */
  snapshot(): HeldSnapshot {
    const counts: [string, number][] = [];
    const waiting: string[] = [];
    for (const [customer, held] of this.#held) {
      if (held.inflight > 0) {
        waiting.push(customer); // see HeldCount.inflight; the next heartbeat writes it
        continue;
      }
      if (held.count > 0 || this.#reported.has(customer)) counts.push([customer, held.count]);
      else this.#held.delete(customer);
    }
    return { counts, waiting };
  }

  /** The heartbeat wrote `snap`. */
  reported(snap: HeldSnapshot): void {
    this.#reported = new Set([...snap.counts.filter(([, n]) => n > 0).map(([c]) => c), ...snap.waiting.filter((c) => this.#reported.has(c))]);
  }
}

/**
 * A customer's maxConnections and connectionRate across the fleet: each admission is one
 * ADMIT script run in Redis (counts of the live instances, one rate window), each close one
 * RELEASE. The fleet's heartbeat rewrites this instance's count every tick, so a lost release
 * or a Redis restart heals within a tick.
 *
 * While Redis is away (or slower than redisTimeout), the instance admits on its own up to its
 * fallback share of each limit (at least one connection), counting the connections it holds.
 */
export class FleetAdmission implements AdmissionGate {
  readonly maxConnections: number | undefined;
  readonly connectionRate: TierConfig['connectionRate'];
  #windowStart = 0;
  #windowCount = 0;

  constructor(
    readonly customer: string,
    tier: TierConfig,
    private readonly ctx: AdmissionContext,
  ) {
    this.maxConnections = tier.maxConnections;
    this.connectionRate = tier.connectionRate;
  }

  matches(tier: TierConfig): boolean {
    return sameLimits(this, tier);
  }

  async admit(): Promise<(() => void) | null> {
    const { link, keys, instance, memberTimeout } = this.ctx;
    const rate = this.connectionRate;
    // Asked for each time: the fleet forgets a customer's counter once it has stood at 0.
    const held = this.ctx.held(this.customer);
    let verdict: unknown;
    if (link.up) {
      held.inflight++;
      try {
        verdict = await link.eval(ADMIT, [keys.members, keys.admission(this.customer), keys.rate(this.customer)], [
          instance,
          memberTimeout,
          this.maxConnections ?? -1,
          rate ? rate.count : -1,
          rate ? rate.per : 0,
        ]);
      } finally {
        held.inflight--;
      }
    }
    let fleet: boolean;
    if (verdict === undefined) {
      if (!this.#admitAlone(held)) return null;
      fleet = false;
    } else {
      if (verdict !== 1) return null;
      fleet = true;
    }
    held.count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held.count--;
      if (fleet && link.up) {
        held.inflight++;
        void link.eval(RELEASE, [keys.admission(this.customer)], [instance]).finally(() => held.inflight--);
      }
    };
  }

  /** Redis is away: this instance's fallback share of each limit, counted here. */
  #admitAlone(held: HeldCount): boolean {
    const share = this.ctx.fallbackShare();
    if (this.maxConnections !== undefined && held.count >= Math.max(1, Math.floor(this.maxConnections * share))) return false;
    const rate = this.connectionRate;
    if (rate) {
      const now = this.ctx.now();
      if (now - this.#windowStart >= rate.per) {
        this.#windowStart = now;
        this.#windowCount = 0;
      }
      if (this.#windowCount >= Math.max(1, Math.floor(rate.count * share))) return false;
      this.#windowCount++;
    }
    return true;
  }

  stop(): void {
    // Nothing runs here; connections admitted under these limits keep their release.
  }
}
