/**
 * The demand exchange: each heartbeat an instance reports how many of its connections want more
 * than they get on every shared cap, reads back the other live members' reports, and sets its
 * local buckets to its share of each cap (`shareFor`).
 */
import type { Demand, Scope, Wants } from '../shaping/shaper.js';

/** What the fleet asks of the local shaper: its demand on each shared cap, and the shares it sets. */
export interface SharedCaps {
  /** Clears `out` and fills it with this instance's demand, by scope key. */
  demand(out: Map<string, Demand>): void;
  setShare(scope: Scope, share: number): void;
  /** Every scope's share, and the default (Redis is away and fallbackShare is set). */
  setAllShares(share: number): void;
  /** The share of a scope with none of its own. */
  defaultShare: number;
}

export interface ShareView {
  scope: string;
  /** this instance's connections that want more than they get */
  demand: number;
  /** the same, summed over the fleet */
  fleetDemand: number;
  /** of `demand`, those held back below this cap by a cap of their own (connection, customer or tier) */
  held: number;
  fleetHeld: number;
  /** fraction of the fleet-wide cap this instance uses */
  share: number;
}

/** This instance's side of the exchange, from one heartbeat to the next. */
export class DemandExchange {
  readonly #demand = new Map<string, Demand>();
  /** scopes reported with demand by the last tick (their share is set once more when they go idle) */
  #reported = new Map<string, Demand>();
  /** the scopes of the last sample: those with demand, and those that just went idle */
  #scopes: Demand[] = [];
  #views: ShareView[] = [];

  /** The shares set at the last heartbeat that reached Redis. */
  get views(): ShareView[] {
    return this.#views;
  }

  /** Samples the shaper's demand; returns this instance's demand hash as field, value pairs. */
  sample(shaper: SharedCaps): string[] {
    shaper.demand(this.#demand);
    // Scopes with demand are sent; one that just went idle gets its (probe) share once more.
    const pairs: string[] = [];
    for (const d of this.#demand.values()) pairs.push(d.scope.key, `${d.count},${d.cappedCount},${Math.round(d.cappedRate)}`);
    this.#scopes = [...this.#demand.values()];
    for (const [key, gone] of this.#reported) if (!this.#demand.has(key)) this.#scopes.push({ ...gone, count: 0, cappedCount: 0, cappedRate: 0 });
    return pairs;
  }

  /**
   * The fleet answered the last sample: `others` holds the other live members' demand hashes
   * (instance, [field, value, ...], ...). Sets the sampled scopes' shares on the shaper.
   */
  settle(shaper: SharedCaps, others: (string | string[])[], liveMembers: number): void {
    shaper.defaultShare = 1 / liveMembers;
    const fleet = new Map<string, Wants>();
    for (const d of this.#scopes) fleet.set(d.scope.key, { count: d.count, cappedCount: d.cappedCount, cappedRate: d.cappedRate });
    for (let i = 1; i < others.length; i += 2) {
      const fields = others[i] as string[];
      for (let j = 0; j + 1 < fields.length; j += 2) {
        const sum = fleet.get(fields[j]!);
        if (!sum) continue;
        const [count, cappedCount, cappedRate] = fields[j + 1]!.split(',').map(Number);
        sum.count += count || 0;
        sum.cappedCount += cappedCount || 0;
        sum.cappedRate += cappedRate || 0;
      }
    }
    const views: ShareView[] = [];
    this.#reported = new Map();
    for (const d of this.#scopes) {
      const total = fleet.get(d.scope.key)!;
      const share = shareFor(d, total, d.cap, liveMembers);
      shaper.setShare(d.scope, share);
      if (d.count + d.cappedCount > 0) this.#reported.set(d.scope.key, d);
      views.push({ scope: d.scope.key, demand: d.count + d.cappedCount, fleetDemand: total.count + total.cappedCount, held: d.cappedCount, fleetHeld: total.cappedCount, share });
    }
    this.#views = views;
  }
}

/**
 * This instance's fraction of a shared cap of `cap` bytes/s, from its demand and the fleet's
 * (its own included). Connections held back by a cap of their own keep what they take; the rest
 * of the cap is split by the connections free to take any share, so each of those gets the same
 * across the fleet (max-min fairness one level deep). When the held ones alone fill the cap, it
 * is split by all wanting connections. An instance with no demand keeps a probe share (what one
 * more free connection would get), so a new connection starts at once, overshooting by at most
 * that for one tick; when nobody wants more, the live members split the rest evenly.
 */
export function shareFor(mine: Wants, fleet: Wants, cap: number, liveMembers: number): number {
  const live = Math.max(1, liveMembers);
  const wanting = mine.count + mine.cappedCount;
  const fleetWanting = Math.max(fleet.count + fleet.cappedCount, wanting);
  if (!(cap > 0) || !Number.isFinite(cap)) return 1;
  const heldRate = Math.max(fleet.cappedRate, mine.cappedRate) * HELD_HEADROOM;
  if (heldRate >= cap) return wanting > 0 ? wanting / fleetWanting : fleetWanting > 0 ? 1 / (fleetWanting + 1) : 1 / live;
  const free = cap - heldRate;
  const freeCount = Math.max(fleet.count, mine.count);
  let rate: number;
  if (wanting > 0) rate = mine.cappedRate * HELD_HEADROOM + (freeCount > 0 ? (free * mine.count) / freeCount : free / live);
  else rate = freeCount > 0 ? free / (freeCount + 1) : free / live;
  return Math.min(1, rate / cap);
}

/**
 * Connections held by caps of their own get this much more than those caps add up to, so the
 * shared bucket never becomes what holds them back (they would then count as free, and the
 * split would swing between the two readings from one heartbeat to the next).
 */
export const HELD_HEADROOM = 1.1;
