import type { CustomerConfig, LevelLimits, ShapingConfig, TierConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { CustomerMatcher, type Identity } from '../identify/matcher.js';
import { Admission, type AdmissionGate } from './admission.js';
import { Scheduler, SchedNode } from './scheduler.js';
import { ShapedFlow, ownedRead, type OwnedRead } from './socket-flow.js';
import { MIN_BURST, READ_SIZE, burstFor } from './grants.js';

export { burstFor, MIN_BURST, MIN_BURST_MS } from './grants.js';

export type Dir = 'up' | 'down';
const DIRS: readonly Dir[] = ['up', 'down'];

interface Pair {
  up: SchedNode;
  down: SchedNode;
}

export interface TierState {
  config: TierConfig;
  nodes: Pair;
}

export class CustomerState {
  readonly connections = new Set<ShapedConnection>();
  admission: AdmissionGate | null = null;
  /** clock time of its last admission or close (see Shaper.forgetIdle) */
  lastActive = 0;
  constructor(
    readonly id: string,
    public tier: string,
    /** from the config or the admin API; false: one source address under defaultTier */
    public configured: boolean,
    readonly nodes: Pair,
  ) {}
}

/** A cap shared by a fleet (cluster mode): a customer's, a tier's total, or the global one, in one direction. */
export type ShareLevel = 'customer' | 'tier' | 'global';

export interface Scope {
  level: ShareLevel;
  /** customer id or tier name; "" for global */
  name: string;
  dir: Dir;
  /** stable text form, e.g. "customer:acme:down" (Redis key suffix, map key) */
  key: string;
}

export function scopeKey(level: ShareLevel, name: string, dir: Dir): string {
  return level === 'global' ? `global:${dir}` : `${level}:${name}:${dir}`;
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

/** A node moving at least this fraction of its own cap is held back by it (see Shaper.demand). */
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

/** Builds the admission gate of a customer in a tier (the default: a local bottleneck limiter). */
export type AdmissionFactory = (customerId: string, tier: TierConfig) => AdmissionGate | null;

/** The shaping side of one proxied connection. */
export class ShapedConnection {
  release: (() => void) | null = null;
  streams: { up: ShapedFlow; down: ShapedFlow } | null = null;
  constructor(
    public customer: CustomerState,
    readonly identity: Identity,
  ) {}
}

/**
 * All shaping state: one scheduler per direction, a node per tier and per
 * customer under it, a leaf per connection. Rates come from the tiers; a
 * change to a tier or a customer's tier is applied to live connections in
 * place, without reconnecting.
 */
export class Shaper {
  readonly schedulers: Record<Dir, Scheduler>;
  readonly tiers = new Map<string, TierState>();
  readonly customers = new Map<string, CustomerState>();
  config: ShapingConfig;
  #matcher: CustomerMatcher;
  #maxRtt = 50;
  /**
   * Fleet mode: the fraction of a shared cap (by scope key) this instance may use; a scope not
   * here uses `defaultShare`. Connection caps are never shared.
   */
  readonly #shares = new Map<string, number>();
  defaultShare = 1;
  readonly #admissionFor: AdmissionFactory;
  /** clock time of the last demand() sample */
  #sampledAt: number | undefined;
  readonly #clock: Clock;

  constructor(config: ShapingConfig, clock: Clock, admissionFor: AdmissionFactory = (_id, tier) => Admission.for(tier, clock)) {
    this.#clock = clock;
    this.schedulers = { up: new Scheduler(clock, 'global'), down: new Scheduler(clock, 'global') };
    this.config = config;
    this.#admissionFor = admissionFor;
    this.#matcher = new CustomerMatcher(config.customers);
    this.apply(config);
  }

  /** Whether any connection can be shaped at all (otherwise stages are skipped). */
  get active(): boolean {
    return this.config.defaultTier !== null || this.config.customers.length > 0;
  }

  /** Apply an (effective) shaping config to everything, live connections included. */
  apply(config: ShapingConfig): void {
    this.config = config;
    this.#matcher = new CustomerMatcher(config.customers);
    const rtts = Object.values(config.tiers).map((t) => t.rtt);
    this.#maxRtt = rtts.length ? Math.max(...rtts) : 50;
    this.#setLimits(this.schedulers.up.root, this.schedulers.down.root, config.global, this.#maxRtt, 'global', '');

    for (const tier of Object.values(config.tiers)) this.setTier(tier);

    // Configured customers: create, update, or move to their (new) tier.
    const wanted = new Map(config.customers.map((c) => [c.id, c]));
    for (const c of config.customers) this.#upsertCustomer(c);
    for (const [id, cust] of this.customers) {
      if (cust.configured && !wanted.has(id)) this.#dropCustomer(cust);
    }
    // Per-address customers follow defaultTier.
    for (const cust of [...this.customers.values()]) {
      if (cust.configured) continue;
      if (config.defaultTier && this.tiers.has(config.defaultTier)) this.#moveCustomer(cust, config.defaultTier);
      else this.#dropCustomer(cust);
    }
    for (const [name, tier] of this.tiers) {
      if (!config.tiers[name] && !this.#tierInUse(name)) {
        for (const d of DIRS) this.schedulers[d].detach(tier.nodes[d]);
        this.tiers.delete(name);
      }
    }
  }

  /** Create or replace a tier's limits; its live customers and connections follow at once. */
  setTier(tier: TierConfig): void {
    let state = this.tiers.get(tier.name);
    if (!state) {
      state = { config: tier, nodes: { up: new SchedNode(`tier:${tier.name}`), down: new SchedNode(`tier:${tier.name}`) } };
      this.tiers.set(tier.name, state);
      for (const d of DIRS) this.schedulers[d].attach(state.nodes[d], this.schedulers[d].root);
    }
    state.config = tier;
    for (const d of DIRS) state.nodes[d].weight = tier.weight;
    this.#setLimits(state.nodes.up, state.nodes.down, tier.total, tier.rtt, 'tier', tier.name);
    for (const cust of this.customers.values()) if (cust.tier === tier.name) this.#applyTierToCustomer(cust, tier);
  }

  #tierInUse(name: string): boolean {
    for (const c of this.customers.values()) if (c.tier === name) return true;
    return false;
  }

  #upsertCustomer(c: CustomerConfig): void {
    const existing = this.customers.get(c.id);
    if (existing) {
      existing.configured = true;
      this.#moveCustomer(existing, c.tier);
      return;
    }
    this.#createCustomer(c.id, c.tier, true);
  }

  #createCustomer(id: string, tierName: string, configured: boolean): CustomerState {
    const tier = this.tiers.get(tierName)!;
    const cust = new CustomerState(id, tierName, configured, {
      up: new SchedNode(`customer:${id}`),
      down: new SchedNode(`customer:${id}`),
    });
    for (const d of DIRS) this.schedulers[d].attach(cust.nodes[d], tier.nodes[d]);
    this.#applyTierToCustomer(cust, tier.config);
    cust.lastActive = this.#clock.now();
    this.customers.set(id, cust);
    return cust;
  }

  /** Move a customer (and its live connections) to another tier. */
  #moveCustomer(cust: CustomerState, tierName: string): void {
    const tier = this.tiers.get(tierName)!;
    if (cust.tier !== tierName) {
      cust.tier = tierName;
      for (const d of DIRS) this.schedulers[d].attach(cust.nodes[d], tier.nodes[d]);
    }
    this.#applyTierToCustomer(cust, tier.config);
  }

  #applyTierToCustomer(cust: CustomerState, tier: TierConfig): void {
    this.#setLimits(cust.nodes.up, cust.nodes.down, tier.customer, tier.rtt, 'customer', cust.id);
    if (!cust.admission || !cust.admission.matches(tier)) {
      // Connections admitted under the old limits keep their release; new ones count afresh.
      cust.admission?.stop();
      cust.admission = this.#admissionFor(cust.id, tier);
    }
    for (const sc of cust.connections) this.#applyTierToConnection(sc, tier);
  }

  #applyTierToConnection(sc: ShapedConnection, tier: TierConfig): void {
    if (sc.streams) this.#setLimits(sc.streams.up.node, sc.streams.down.node, tier.connection, tier.rtt);
  }

  /** A configured customer left the config: its connections fall back to defaultTier or the global bucket alone. */
  #dropCustomer(cust: CustomerState): void {
    this.customers.delete(cust.id);
    this.#forgetShares(cust.id);
    cust.admission?.stop();
    const fallback = this.config.defaultTier && this.tiers.has(this.config.defaultTier) ? this.config.defaultTier : null;
    for (const sc of cust.connections) {
      if (fallback) {
        // Connections still dialing move too: their flows will hang under the new customer.
        const home = this.#customerFor(sc.identity.clientAddress, fallback);
        sc.customer = home;
        home.connections.add(sc);
        if (!sc.streams) continue;
        for (const d of DIRS) this.schedulers[d].attach(sc.streams[d].node, home.nodes[d]);
        this.#applyTierToConnection(sc, this.tiers.get(fallback)!.config);
      } else if (sc.streams) {
        for (const d of DIRS) {
          this.schedulers[d].setLimits(sc.streams[d].node, Infinity, 0);
          this.schedulers[d].attach(sc.streams[d].node, this.schedulers[d].root);
        }
      }
    }
    for (const d of DIRS) this.schedulers[d].detach(cust.nodes[d]);
  }

  #customerFor(address: string, tierName: string): CustomerState {
    return this.customers.get(address) ?? this.#createCustomer(address, tierName, false);
  }

  #setLimits(up: SchedNode, down: SchedNode, limits: LevelLimits, rtt: number, level?: ShareLevel, name = ''): void {
    this.#setLimit('up', up, limits.up, rtt, limits.burstUp, level, name);
    this.#setLimit('down', down, limits.down, rtt, limits.burstDown, level, name);
  }

  /** One direction of one node; a shared cap is scaled by this instance's share of it (burst too). */
  #setLimit(dir: Dir, node: SchedNode, rate: number, rtt: number, burst: number | undefined, level: ShareLevel | undefined, name: string): void {
    const share = level && Number.isFinite(rate) ? this.shareOf(scopeKey(level, name, dir)) : 1;
    const mine = rate * share;
    const size = burst === undefined || share === 1 ? burstFor(mine, rtt, burst) : Math.max(burst * share, MIN_BURST);
    this.schedulers[dir].setLimits(node, mine, size);
  }

  // ---- fleet mode (src/cluster/) -----------------------------------------------------------------

  /** This instance's fraction of the scope's fleet-wide cap. */
  shareOf(key: string): number {
    return this.#shares.get(key) ?? this.defaultShare;
  }

  /** Sets this instance's fraction of a shared cap; the node's bucket follows at once. */
  setShare(scope: Scope, share: number): void {
    if (this.#shares.get(scope.key) === share) return;
    this.#shares.set(scope.key, share);
    this.#reapply(scope);
  }

  /** Every scope back to `defaultShare` (e.g. 1 when the fleet is left). */
  resetShares(defaultShare: number): void {
    this.defaultShare = defaultShare;
    this.#shares.clear();
    this.apply(this.config);
  }

  /** Sets the share of every scope that has one to `share`, and the default (Redis is away and fallbackShare is set). */
  setAllShares(share: number): void {
    this.defaultShare = share;
    for (const key of this.#shares.keys()) this.#shares.set(key, share);
    this.apply(this.config);
  }

  #forgetShares(customer: string): void {
    for (const dir of DIRS) this.#shares.delete(scopeKey('customer', customer, dir));
  }

  #reapply(scope: Scope): void {
    const { level, name, dir } = scope;
    if (level === 'global') {
      const limits = this.config.global;
      this.#setLimit(dir, this.schedulers[dir].root, limits[dir], this.#maxRtt, dir === 'up' ? limits.burstUp : limits.burstDown, 'global', '');
      return;
    }
    const tier = level === 'tier' ? this.tiers.get(name) : this.tiers.get(this.customers.get(name)?.tier ?? '');
    if (!tier) return;
    const node = level === 'tier' ? tier.nodes[dir] : this.customers.get(name)!.nodes[dir];
    const limits = level === 'tier' ? tier.config.total : tier.config.customer;
    this.#setLimit(dir, node, limits[dir], tier.config.rtt, dir === 'up' ? limits.burstUp : limits.burstDown, level, name);
  }

  /**
   * This instance's demand on each shared cap, for fleet mode: how many of its connections want
   * more than they get (their flow holds bytes the destination would take now), split into those
   * that would take any share (`count`) and those held back below the scope by a cap of their own
   * (`cappedCount`, together wanting `cappedRate` bytes/s): a connection whose own bucket holds it
   * back (see atOwnCap), and for the tier and global caps a customer (or tier) whose bucket does.
   * Only scopes whose cap is finite are counted; `out` is cleared and refilled.
   */
  demand(out: Map<string, Demand>): void {
    out.clear();
    const now = this.schedulers.down.clock.now();
    const seconds = this.#sampledAt === undefined ? 0 : (now - this.#sampledAt) / 1000;
    this.#sampledAt = now;
    const global = this.config.global;
    const tierSums = new Map<string, Record<Dir, Wants>>();
    for (const cust of this.customers.values()) {
      const tier = this.tiers.get(cust.tier);
      if (!tier) continue;
      for (const dir of DIRS) {
        const w: Wants = { count: 0, cappedCount: 0, cappedRate: 0 };
        for (const sc of cust.connections) {
          const flow = sc.streams?.[dir];
          if (!flow) continue;
          const held = atOwnCap(flow.node, seconds);
          if (flow.sendable() <= 0) continue;
          if (held) {
            w.cappedCount++;
            w.cappedRate += flow.node.bucket!.rate;
          } else w.count++;
        }
        const custHeld = atOwnCap(cust.nodes[dir], seconds);
        if (w.count + w.cappedCount === 0) continue;
        const limits = tier.config.customer;
        if (Number.isFinite(limits[dir])) addDemand(out, 'customer', cust.id, dir, limits[dir], w);
        let sums = tierSums.get(tier.config.name);
        if (!sums) tierSums.set(tier.config.name, (sums = { up: { count: 0, cappedCount: 0, cappedRate: 0 }, down: { count: 0, cappedCount: 0, cappedRate: 0 } }));
        addWants(sums[dir], custHeld ? heldAt(cust.nodes[dir], w) : w);
      }
    }
    for (const tier of this.tiers.values()) {
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

  /**
   * Match a new connection to its customer and run admission. Returns the
   * shaping handle, null for an unshaped connection, or 'rejected'.
   */
  async admit(who: Identity): Promise<ShapedConnection | null | 'rejected'> {
    const id = this.#matcher.match(who);
    let cust: CustomerState;
    if (id !== undefined) cust = this.customers.get(id)!;
    else if (this.config.defaultTier) cust = this.#customerFor(who.clientAddress, this.config.defaultTier);
    else return null;
    cust.lastActive = this.#clock.now();
    const sc = new ShapedConnection(cust, who);
    // Counted from now on, so forgetIdle keeps the customer while admission and the dial run.
    cust.connections.add(sc);
    if (cust.admission) {
      const release = await cust.admission.admit();
      if (!release) {
        this.release(sc);
        return 'rejected';
      }
      sc.release = release;
    }
    return sc;
  }

  /**
   * How much a connection's flow holds before its source stops reading: one
   * read of 16 KiB. Fixed, because a connection's share of a shared bucket can
   * be tiny whatever its own cap, and a thousand of them must stay cheap; at
   * 1 Gbit/s that is still only ~7,600 reads a second.
   */
  readSize(): number {
    return READ_SIZE;
  }

  /** The backend socket's read path, straight into the down flow. */
  backendRead(): OwnedRead {
    return ownedRead(this.readSize());
  }

  /** Build the connection's two shaping flows and hang them under its customer. */
  stages(sc: ShapedConnection, label: string): { up: ShapedFlow; down: ShapedFlow } {
    const cust = sc.customer;
    const streams = {
      up: new ShapedFlow(this.schedulers.up, label, this.readSize()),
      down: new ShapedFlow(this.schedulers.down, label, this.readSize()),
    };
    sc.streams = streams;
    if (this.customers.get(cust.id) !== cust) {
      // Its customer left the config while the connection was dialing, with no defaultTier to fall back to.
      for (const d of DIRS) this.schedulers[d].attach(streams[d].node, this.schedulers[d].root);
      return streams;
    }
    this.#applyTierToConnection(sc, this.tiers.get(cust.tier)!.config);
    for (const d of DIRS) this.schedulers[d].attach(streams[d].node, cust.nodes[d]);
    return streams;
  }

  /** The connection closed: give back its admission slot and forget it. */
  release(sc: ShapedConnection): void {
    sc.release?.();
    sc.release = null;
    const cust = sc.customer;
    cust.connections.delete(sc);
    cust.lastActive = this.#clock.now();
  }

  /**
   * Forget the per-address customers (defaultTier) that have no connection left and would come
   * back exactly as new: at once without a `connectionRate`, else once its window (`per`) has
   * passed since the customer's last admission or close, so that closing and reopening cannot
   * reset the rate. Their scheduler nodes, buckets and admission state go with them, so the
   * shaper holds the customers of open connections plus those seen within one rate window.
   * Run by the proxy's housekeeping; returns how many were forgotten.
   */
  forgetIdle(now = this.#clock.now()): number {
    let forgotten = 0;
    // forEach over the live map: deleting the current entry is safe and makes no iterator garbage.
    this.customers.forEach((cust) => {
      if (cust.configured || cust.connections.size > 0) return;
      const keepMs = this.tiers.get(cust.tier)?.config.connectionRate?.per ?? 0;
      if (now - cust.lastActive < keepMs) return;
      this.customers.delete(cust.id);
      this.#forgetShares(cust.id);
      cust.admission?.stop();
      for (const d of DIRS) this.schedulers[d].detach(cust.nodes[d]);
      forgotten++;
    });
    return forgotten;
  }

  stop(): void {
    for (const d of DIRS) this.schedulers[d].stop();
    for (const c of this.customers.values()) c.admission?.stop();
  }
}
