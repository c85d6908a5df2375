/**
 * Connections in and out of the shaping tree: a new connection is matched to its customer (a
 * configured one, or its source address's under defaultTier) and passes the customer's admission
 * gate (admission.ts); a closed one gives its slot back; per-address customers nobody uses any
 * more are forgotten.
 */
import type { CustomerConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { CustomerMatcher, type Identity } from '../identify/matcher.js';
import { ProxyError } from '../errors.js';
import { ShapedConnection, type ConnectionOwner, type CustomerState, type ShapingTree } from './tree.js';

/** A plan's say on a new connection of `cust` (plans.ts: a quota with no `then`). */
export type PlanGate = (cust: CustomerState) => Refusal | null | Promise<Refusal | null>;

/** Why a connection was refused before any dial: a customer limit, or a quota with no `then`. */
export type Refusal = 'rejected' | 'quota_exceeded';

/** The error a refused connection closes with. */
export function refusalError(why: Refusal): ProxyError {
  return why === 'quota_exceeded'
    ? new ProxyError('SHAPER_ERR_QUOTA', 'refused: the customer is over its quota until the period ends')
    : new ProxyError('SHAPER_ERR_ADMISSION', 'refused by a customer limit (maxConnections, connectionRate)');
}

export class ConnectionAdmission {
  #matcher: CustomerMatcher;
  readonly #tree: ShapingTree;
  readonly #clock: Clock;
  readonly #plans: PlanGate;

  constructor(tree: ShapingTree, clock: Clock, plans: PlanGate = () => null) {
    this.#tree = tree;
    this.#clock = clock;
    this.#plans = plans;
    this.#matcher = new CustomerMatcher(tree.config.customers);
  }

  /** The configured customers changed. */
  setCustomers(customers: readonly CustomerConfig[]): void {
    this.#matcher = new CustomerMatcher(customers);
  }

  /** How `who` is matched (for debug logs): the customers it missed and why, and the one it matched. */
  explain(who: Identity): { matched: string | undefined; skipped: string[] } {
    return this.#matcher.explain(who);
  }

  /**
   * Match a new connection to its customer, ask its plan (a quota) and run admission. Returns the
   * shaping handle, null for an unshaped connection, or why it is refused.
   */
  async admit(who: Identity, owner: ConnectionOwner | null = null): Promise<ShapedConnection | null | Refusal> {
    const tree = this.#tree;
    const id = this.#matcher.match(who);
    let cust: CustomerState;
    if (id !== undefined) cust = tree.customers.get(id)!;
    else if (tree.config.defaultTier) cust = tree.customerFor(who.clientAddress, tree.config.defaultTier);
    else return null;
    cust.lastActive = this.#clock.now();
    const sc = new ShapedConnection(cust, who);
    sc.owner = owner;
    // Counted from now on, so forgetIdle keeps the customer while admission and the dial run.
    cust.connections.add(sc);
    const gate = this.#plans(cust);
    const refused = gate instanceof Promise ? await gate : gate;
    if (refused) {
      this.release(sc);
      return refused;
    }
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
    const tree = this.#tree;
    let forgotten = 0;
    // forEach over the live map: deleting the current entry is safe and makes no iterator garbage.
    tree.customers.forEach((cust) => {
      if (cust.configured || cust.connections.size > 0) return;
      const keepMs = tree.tiers.get(cust.tier)?.config.connectionRate?.per ?? 0;
      if (now - cust.lastActive < keepMs) return;
      tree.forget(cust);
      forgotten++;
    });
    return forgotten;
  }
}
