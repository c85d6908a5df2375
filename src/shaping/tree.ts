import type { CustomerConfig, LevelLimits, ShapingConfig, TierConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import type { Identity } from '../identify/matcher.js';
import type { AdmissionGate } from './admission.js';
import { MIN_BURST, burstFor, peakBurstFor } from './grants.js';
import { Scheduler, SchedNode } from './scheduler.js';
import { DIRS, scopeKey, type Dir, type Scope, type ShareLevel } from './scope.js';

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
  /** clock time of its last admission or close (see ConnectionAdmission.forgetIdle) */
  lastActive = 0;
  /** its own tier (config, admin API or defaultTier); `tier` differs while it is held elsewhere */
  home: string;
  /** the tier it is held in (a quota's `then`) until released; null: its own */
  held: string | null = null;
  constructor(
    readonly id: string,
    /** the tier it is in now */
    public tier: string,
    /** from the config or the admin API; false: one source address under defaultTier */
    public configured: boolean,
    readonly nodes: Pair,
  ) {
    this.home = tier;
  }
}

/** What the shaping side may ask of a connection's owner. */
export interface ConnectionOwner {
  /** Close the connection (a customer over its quota with nowhere to go). */
  close(reason: 'quota_exceeded', err?: Error): void;
}

/** A flow as the tree holds it: whatever kind (socket, stream, native), it hangs at its node. */
export interface Attached {
  readonly node: SchedNode;
}

/** The shaping side of one proxied connection. */
export class ShapedConnection {
  release: (() => void) | null = null;
  /** its two flows, once attached (Shaper.stages) */
  streams: Record<Dir, Attached> | null = null;
  /** the connection that owns it, once admitted (set by the server) */
  owner: ConnectionOwner | null = null;
  constructor(
    public customer: CustomerState,
    readonly identity: Identity,
  ) {}
}

/** Builds the admission gate of a customer in a tier (the default: a local Admission). */
export type AdmissionFactory = (customerId: string, tier: TierConfig) => AdmissionGate | null;

/** What the tree asks of the rest of the shaper. */
export interface TreeHooks {
  admissionFor: AdmissionFactory;
  /** this instance's fraction of a shared cap, by scope key (fleet mode; 1 alone) */
  shareOf(key: string): number;
  /** a customer is gone: forget its shares */
  forgetShares(customerId: string): void;
  /** a customer's nodes are about to go (usage accounting takes what they counted) */
  leaving(cust: CustomerState): void;
}

/**
 * The tier/customer tree: one scheduler per direction, a node per tier and per customer under it,
 * a leaf per connection flow. Rates come from the tiers; a change to a tier or a customer's tier
 * is applied to live connections in place, without reconnecting.
 */
export class ShapingTree {
  readonly schedulers: Record<Dir, Scheduler>;
  readonly tiers = new Map<string, TierState>();
  readonly customers = new Map<string, CustomerState>();
  config: ShapingConfig;
  #maxRtt = 50;
  readonly #clock: Clock;
  readonly #hooks: TreeHooks;

  constructor(config: ShapingConfig, clock: Clock, hooks: TreeHooks) {
    this.#clock = clock;
    this.#hooks = hooks;
    this.schedulers = { up: new Scheduler(clock, 'global'), down: new Scheduler(clock, 'global') };
    this.config = config;
  }

  /** Apply an (effective) shaping config to everything, live connections included. */
  apply(config: ShapingConfig): void {
    this.config = config;
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

  /** The per-address customer (defaultTier) of `address`, created on first sight. */
  customerFor(address: string, tierName: string): CustomerState {
    return this.customers.get(address) ?? this.#createCustomer(address, tierName, false);
  }

  /** Hang a connection's flows under its customer (or the root, if the customer is gone), with the tier's connection caps. */
  attach(sc: ShapedConnection, streams: Record<Dir, Attached>): void {
    const cust = sc.customer;
    sc.streams = streams;
    if (this.customers.get(cust.id) !== cust) {
      // Its customer left the config while the connection was dialing, with no defaultTier to fall back to.
      for (const d of DIRS) this.schedulers[d].attach(streams[d].node, this.schedulers[d].root);
      return;
    }
    this.#applyTierToConnection(sc, this.tiers.get(cust.tier)!.config);
    for (const d of DIRS) this.schedulers[d].attach(streams[d].node, cust.nodes[d]);
  }

  /** Forget a customer with no connections left: its nodes, buckets, admission state and shares. */
  forget(cust: CustomerState): void {
    this.#hooks.leaving(cust);
    this.customers.delete(cust.id);
    this.#hooks.forgetShares(cust.id);
    cust.admission?.stop();
    for (const d of DIRS) this.schedulers[d].detach(cust.nodes[d]);
  }

  /** A shared cap's share changed: set that node's bucket again. */
  reapply(scope: Scope): void {
    const { level, name, dir } = scope;
    if (level === 'global') {
      this.#setLimit(dir, this.schedulers[dir].root, this.config.global, this.#maxRtt, 'global', '');
      return;
    }
    const tier = level === 'tier' ? this.tiers.get(name) : this.tiers.get(this.customers.get(name)?.tier ?? '');
    if (!tier) return;
    const node = level === 'tier' ? tier.nodes[dir] : this.customers.get(name)!.nodes[dir];
    const limits = level === 'tier' ? tier.config.total : tier.config.customer;
    this.#setLimit(dir, node, limits, tier.config.rtt, level, name);
  }

  stop(): void {
    for (const d of DIRS) this.schedulers[d].stop();
    for (const c of this.customers.values()) c.admission?.stop();
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

  /** Hold a customer (and its live connections) in another tier than its own, or (null) let it go back. */
  hold(cust: CustomerState, tierName: string | null): void {
    if (cust.held === tierName) return;
    cust.held = tierName;
    this.#moveCustomer(cust, cust.home);
  }

  /** Move a customer (and its live connections) to its tier `home`, or to the tier it is held in. */
  #moveCustomer(cust: CustomerState, home: string): void {
    cust.home = home;
    const tierName = cust.held !== null && this.tiers.has(cust.held) ? cust.held : home;
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
      cust.admission = this.#hooks.admissionFor(cust.id, tier);
    }
    for (const sc of cust.connections) this.#applyTierToConnection(sc, tier);
  }

  #applyTierToConnection(sc: ShapedConnection, tier: TierConfig): void {
    if (sc.streams) this.#setLimits(sc.streams.up.node, sc.streams.down.node, tier.connection, tier.rtt);
  }

  /** A configured customer left the config: its connections fall back to defaultTier or the global bucket alone. */
  #dropCustomer(cust: CustomerState): void {
    this.#hooks.leaving(cust);
    this.customers.delete(cust.id);
    this.#hooks.forgetShares(cust.id);
    cust.admission?.stop();
    const fallback = this.config.defaultTier && this.tiers.has(this.config.defaultTier) ? this.config.defaultTier : null;
    for (const sc of cust.connections) {
      if (fallback) {
        // Connections still dialing move too: their flows will hang under the new customer.
        const home = this.customerFor(sc.identity.clientAddress, fallback);
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

  #setLimits(up: SchedNode, down: SchedNode, limits: LevelLimits, rtt: number, level?: ShareLevel, name = ''): void {
    this.#setLimit('up', up, limits, rtt, level, name);
    this.#setLimit('down', down, limits, rtt, level, name);
  }

  /**
   * One direction of one node; a shared cap is scaled by this instance's share of it (burst, peak
   * and minimum too).
   */
  #setLimit(dir: Dir, node: SchedNode, limits: LevelLimits, rtt: number, level: ShareLevel | undefined, name: string): void {
    const rate = limits[dir];
    const burst = dir === 'up' ? limits.burstUp : limits.burstDown;
    const share = level && Number.isFinite(rate) ? this.#hooks.shareOf(scopeKey(level, name, dir)) : 1;
    const mine = rate * share;
    const size = burst === undefined || share === 1 ? burstFor(mine, rtt, burst) : Math.max(burst * share, MIN_BURST);
    const peak = (dir === 'up' ? limits.peakUp : limits.peakDown) ?? Infinity;
    const scheduler = this.schedulers[dir];
    scheduler.setLimits(node, mine, size, peak * share, peakBurstFor(peak * share));
    const min = (dir === 'up' ? limits.minUp : limits.minDown) ?? 0;
    if (min > 0 || node.min) scheduler.setMin(node, min * share, burstFor(min * share, rtt));
  }
}
