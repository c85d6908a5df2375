/**
 * The proxy's shaping facade: the tier/customer tree (tree.ts), admission of connections
 * (admit.ts), the socket flows of each connection (socket-flow.ts) and fleet shares and demand
 * (fleet-shares.ts), behind one object. The flows are the scheduler's Flows (flow.ts), the same
 * engine the library's ShapingStream uses.
 */
import type { ShapingConfig, TierConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import type { Housekeeping } from '../housekeeping.js';
import type { Identity } from '../identify/matcher.js';
import { Admission } from './admission.js';
import { ConnectionAdmission } from './admit.js';
import { Shares, demand, type Demand } from './fleet-shares.js';
import { READ_SIZE } from './grants.js';
import { SchedNode, type Scheduler } from './scheduler.js';
import type { Flow } from './flow.js';
import type { Dir, Scope } from './scope.js';
import { ShapedFlow, ownedRead, type OwnedRead } from './socket-flow.js';
import { ShapingTree, type AdmissionFactory, type ConnectionOwner, type CustomerState, type ShapedConnection, type TierState } from './tree.js';
import { Plans, type PlansOptions, type Refusal } from './plans/plans.js';

export { burstFor, MIN_BURST, MIN_BURST_MS } from './grants.js';
export { scopeKey, type Dir, type Scope, type ShareLevel } from './scope.js';
export { HELD_AT, type Demand, type Wants } from './fleet-shares.js';
export { CustomerState, ShapedConnection, type AdmissionFactory, type ConnectionOwner, type TierState } from './tree.js';
export { Plans, type PlansOptions, type Refusal, type UsagePage, type UsageView } from './plans/plans.js';
export { refusalError } from './admit.js';

/**
 * All shaping state: one scheduler per direction, a node per tier and per customer under it, a
 * leaf per connection. Rates come from the tiers; a change to a tier or a customer's tier is
 * applied to live connections in place, without reconnecting.
 */
export class Shaper {
  readonly #tree: ShapingTree;
  readonly #admission: ConnectionAdmission;
  readonly #shares = new Shares();
  /** usage accounting, quotas and schedule windows */
  readonly plans: Plans;
  /** clock time of the last demand() sample */
  #sampledAt: number | undefined;
  readonly #clock: Clock;

  constructor(
    config: ShapingConfig,
    clock: Clock,
    admissionFor: AdmissionFactory = (_id, tier) => Admission.for(tier, clock),
    plans: PlansOptions = {},
  ) {
    this.#clock = clock;
    const shares = this.#shares;
    this.#tree = new ShapingTree(config, clock, {
      admissionFor,
      shareOf: (key) => shares.shareOf(key),
      forgetShares: (id) => shares.forgetCustomer(id),
      leaving: (cust) => this.plans.leaving(cust),
    });
    this.plans = new Plans(this.#tree, clock, plans);
    this.#admission = new ConnectionAdmission(this.#tree, clock, (cust) => this.plans.admitting(cust));
    this.apply(config);
  }

  get schedulers(): Record<Dir, Scheduler> {
    return this.#tree.schedulers;
  }

  get tiers(): Map<string, TierState> {
    return this.#tree.tiers;
  }

  get customers(): Map<string, CustomerState> {
    return this.#tree.customers;
  }

  /** The shaping config in force (tiers as their schedule windows make them now). */
  get config(): ShapingConfig {
    return this.#tree.config;
  }

  /** Whether any connection can be shaped at all (otherwise stages are skipped). */
  get active(): boolean {
    return this.config.defaultTier !== null || this.config.customers.length > 0;
  }

  /** Apply an (effective) shaping config to everything, live connections included. */
  apply(config: ShapingConfig): void {
    this.#admission.setCustomers(config.customers);
    this.plans.apply(config);
  }

  /** Create or replace a tier's limits; its live customers and connections follow at once. */
  setTier(tier: TierConfig): void {
    this.#tree.setTier(tier);
  }

  /**
   * Match a new connection to its customer and run admission. Returns the shaping handle, null
   * for an unshaped connection, or why it is refused.
   */
  admit(who: Identity, owner: ConnectionOwner | null = null): Promise<ShapedConnection | null | Refusal> {
    return this.#admission.admit(who, owner);
  }

  /** How `who` is matched to a customer, for debug logs. */
  explain(who: Identity): { matched: string | undefined; skipped: string[] } {
    return this.#admission.explain(who);
  }

  /** How much a connection's flow holds before its source stops reading (READ_SIZE). */
  readSize(): number {
    return READ_SIZE;
  }

  /** The backend socket's read path, straight into the down flow. */
  backendRead(): OwnedRead {
    return ownedRead(READ_SIZE);
  }

  /** Build the connection's two socket flows and hang them under its customer. */
  stages(sc: ShapedConnection, label: string): { up: ShapedFlow; down: ShapedFlow } {
    const streams = {
      up: new ShapedFlow(this.schedulers.up, label, READ_SIZE),
      down: new ShapedFlow(this.schedulers.down, label, READ_SIZE),
    };
    this.#tree.attach(sc, streams);
    return streams;
  }

  /**
   * Hang flows of another data plane (the native relay's directions) under the connection's
   * customer, as stages() does with socket flows; returns their nodes (the owner wakes them when
   * bytes arrive, and detaches them with detach()).
   */
  attachFlows(sc: ShapedConnection, label: string, flows: Record<Dir, Flow>): { nodes: Record<Dir, SchedNode>; wake: Record<Dir, () => void> } {
    const nodes = { up: new SchedNode(label, flows.up), down: new SchedNode(label, flows.down) };
    this.#tree.attach(sc, { up: { node: nodes.up }, down: { node: nodes.down } });
    const { up, down } = this.schedulers;
    return { nodes, wake: { up: () => up.wake(nodes.up), down: () => down.wake(nodes.down) } };
  }

  /** Take nodes of attachFlows() out of the scheduler (their connection closed). */
  detach(nodes: Record<Dir, SchedNode>): void {
    this.schedulers.up.detach(nodes.up);
    this.schedulers.down.detach(nodes.down);
  }

  /** The connection closed: give back its admission slot and forget it. */
  release(sc: ShapedConnection): void {
    this.#admission.release(sc);
  }

  /** The periodic chores: forgetting idle per-address customers (each second), and the plans' (windows, periods, usage writes). */
  start(housekeeping: Housekeeping): void {
    housekeeping.add('forget idle customers', 1000, (now) => this.forgetIdle(now));
    this.plans.start(housekeeping);
  }

  /** Forget per-address customers nobody uses any more (see ConnectionAdmission.forgetIdle); returns how many. */
  forgetIdle(now = this.#clock.now()): number {
    return this.#admission.forgetIdle(now);
  }

  // ---- fleet mode (src/cluster/) -----------------------------------------------------------------

  /** The share of a scope that has none of its own. */
  get defaultShare(): number {
    return this.#shares.defaultShare;
  }

  set defaultShare(share: number) {
    this.#shares.defaultShare = share;
  }

  /** This instance's fraction of the scope's fleet-wide cap. */
  shareOf(key: string): number {
    return this.#shares.shareOf(key);
  }

  /** Sets this instance's fraction of a shared cap; the node's bucket follows at once. */
  setShare(scope: Scope, share: number): void {
    if (this.#shares.set(scope.key, share)) this.#tree.reapply(scope);
  }

  /** Every scope back to `defaultShare` (e.g. 1 when the fleet is left). */
  resetShares(defaultShare: number): void {
    this.#shares.reset(defaultShare);
    this.apply(this.plans.config ?? this.config);
  }

  /** Sets the share of every scope that has one to `share`, and the default (Redis is away and fallbackShare is set). */
  setAllShares(share: number): void {
    this.#shares.setAll(share);
    this.apply(this.plans.config ?? this.config);
  }

  /** This instance's demand on each shared cap (see fleet-shares.ts demand); `out` is cleared and refilled. */
  demand(out: Map<string, Demand>): void {
    const now = this.#clock.now();
    const seconds = this.#sampledAt === undefined ? 0 : (now - this.#sampledAt) / 1000;
    this.#sampledAt = now;
    demand(this.#tree, out, seconds);
  }

  stop(): void {
    this.#tree.stop();
  }
}
