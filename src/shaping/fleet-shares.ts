/**
 * Fleet mode's local side (src/cluster/fleet.ts drives it): the fraction of each shared cap this
 * instance may use, and the demand it reports on each, measured on the shaping tree.
 */
import type { SchedNode } from './scheduler.js';
import { DIRS, scopeKey, type Dir, type Scope, type ShareLevel } from './scope.js';
import type { ShapingTree } from './tree.js';

/**
 * This instance's fraction of each shared cap, by scope key; a scope not here uses `defaultShare`.
 * Connection caps are never shared.
 */
export class Shares {
  readonly #shares = new Map<string, number>();
  defaultShare = 1;

  shareOf(key: string): number {
    return this.#shares.get(key) ?? this.defaultShare;
  }

  /** Sets one scope's share; false when it already was that. */
  set(key: string, share: number): boolean {
    if (this.#shares.get(key) === share) return false;
    this.#shares.set(key, share);
    return true;
  }

  /** Every scope back to `defaultShare`. */
  reset(defaultShare: number): void {
    this.defaultShare = defaultShare;
    this.#shares.clear();
  }

  /** Every scope that has a share, and the default, to `share`. */
  setAll(share: number): void {
    this.defaultShare = share;
    for (const key of this.#shares.keys()) this.#shares.set(key, share);
  }

  forgetCustomer(customer: string): void {
    for (const dir of DIRS) this.#shares.delete(scopeKey('customer', customer, dir));
  }
}

/** Connections that want more than they get: free to take any share, or held below by a cap of their own. */
export interface Wants {
  count: number;
  cappedCount: number;
  /** bytes/s the held ones would take */
  cappedRate: number;
}

/** A scope's demand (Shaper.demand), with the scope's whole cap in bytes/s. */
export interface Demand extends Wants {
  scope: Scope;
  cap: number;
}

function addWants(to: Wants, w: Wants): void {
  to.count += w.count;
  to.cappedCount += w.cappedCount;
  to.cappedRate += w.cappedRate;
}

function addDemand(out: Map<string, Demand>, level: ShareLevel, name: string, dir: Dir, cap: number, w: Wants): void {
  const key = scopeKey(level, name, dir);
  const entry = out.get(key);
  if (entry) addWants(entry, w);
  else out.set(key, { scope: { level, name, dir, key }, cap, count: w.count, cappedCount: w.cappedCount, cappedRate: w.cappedRate });
}

/** A node moving at least this fraction of its own cap is held back by it (see demand). */
export const HELD_AT = 0.9;

/** Time constant (s) of a node's sampled rate: longer than the gaps between a capped node's batches. */
const RATE_WINDOW_S = 1;

/**
 * Whether `node`'s own cap holds it back: it waits for its own tokens now, or its rate over about
 * the last second reached HELD_AT of its cap (a capped node sends in batches, and between them may
 * wait on its parent too, so neither reading alone is steady). Updates the node's sample.
 */
function atOwnCap(node: SchedNode, seconds: number): boolean {
  if (seconds > 0) {
    const rate = (node.bytes - node.sampledBytes) / seconds;
    node.sampledRate += (1 - Math.exp(-seconds / RATE_WINDOW_S)) * (rate - node.sampledRate);
  }
  node.sampledBytes = node.bytes;
  if (node.bucket === null) return false;
  return node.parked || node.sampledRate >= HELD_AT * node.bucket.rate;
}

/** Seen from above `node`, which its own cap holds back: all of `w` is held, at that cap's rate. */
function heldAt(node: SchedNode, w: Wants): Wants {
  return { count: 0, cappedCount: w.count + w.cappedCount, cappedRate: node.bucket!.rate };
}

const noWants = (): Wants => ({ count: 0, cappedCount: 0, cappedRate: 0 });

/**
 * This instance's demand on each shared cap, for fleet mode: how many of its connections want
 * more than they get (their flow holds bytes the destination would take now), split into those
 * that would take any share (`count`) and those held back below the scope by a cap of their own
 * (`cappedCount`, together wanting `cappedRate` bytes/s): a connection whose own bucket holds it
 * back (see atOwnCap), and for the tier and global caps a customer (or tier) whose bucket does.
 * Only scopes whose cap is finite are counted; `out` is cleared and refilled. `seconds` since the
 * last sample (0 for the first).
 */
export function demand(tree: ShapingTree, out: Map<string, Demand>, seconds: number): void {
  out.clear();
  const global = tree.config.global;
  const tierSums = new Map<string, Record<Dir, Wants>>();
  for (const cust of tree.customers.values()) {
    const tier = tree.tiers.get(cust.tier);
    if (!tier) continue;
    for (const dir of DIRS) {
      const w = noWants();
      for (const sc of cust.connections) {
        const node = sc.streams?.[dir].node;
        if (!node) continue;
        const held = atOwnCap(node, seconds);
        if (node.flow!.sendable() <= 0) continue;
        if (held) {
          w.cappedCount++;
          w.cappedRate += node.bucket!.rate;
        } else w.count++;
      }
      const custHeld = atOwnCap(cust.nodes[dir], seconds);
      if (w.count + w.cappedCount === 0) continue;
      const limits = tier.config.customer;
      if (Number.isFinite(limits[dir])) addDemand(out, 'customer', cust.id, dir, limits[dir], w);
      let sums = tierSums.get(tier.config.name);
      if (!sums) tierSums.set(tier.config.name, (sums = { up: noWants(), down: noWants() }));
      addWants(sums[dir], custHeld ? heldAt(cust.nodes[dir], w) : w);
    }
  }
  for (const tier of tree.tiers.values()) {
    const sums = tierSums.get(tier.config.name);
    for (const dir of DIRS) {
      const tierHeld = atOwnCap(tier.nodes[dir], seconds);
      const w = sums?.[dir];
      if (!w || w.count + w.cappedCount === 0) continue;
      if (Number.isFinite(tier.config.total[dir])) addDemand(out, 'tier', tier.config.name, dir, tier.config.total[dir], w);
      if (Number.isFinite(global[dir])) addDemand(out, 'global', '', dir, global[dir], tierHeld ? heldAt(tier.nodes[dir], w) : w);
    }
  }
}
