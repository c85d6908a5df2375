import type { BalanceKind } from '../config/types.js';
import { Weights, type Balancer, type PickContext } from './balancer.js';
import { IpHashBalancer } from './ip-hash.js';
import { LeastConnBalancer } from './least-conn.js';
import { RoundRobinBalancer, TargetRotation } from './round-robin.js';
import type { Target } from './target.js';
import { WeightedLeastConnBalancer } from './weighted-least-conn.js';

export function createBalancer(kind: BalanceKind): Balancer {
  switch (kind) {
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'least-conn':
      return new LeastConnBalancer();
    case 'weighted-least-conn':
      return new WeightedLeastConnBalancer();
    case 'ip-hash':
      return new IpHashBalancer();
    case 'least-time':
      return new LeastTimeBalancer();
    default: {
      const unknown: never = kind;
      throw new Error(`unknown balance kind ${String(unknown)}`);
    }
  }
}

/** The cost of a target with no sample yet while dials to it are in flight (Finagle's penalty): try others first. */
const UNMEASURED_PENALTY = 1e9;

/**
 * `least-time`: peak-EWMA (Finagle, Linkerd). A target's cost is its latency estimate (connect
 * time plus, where the app's connections carry traffic, the time to its first answer; each a
 * peak-EWMA on the proxy's clock, src/upstream/target.ts) times its open connections and dials
 * in flight plus one, divided by its weight. The lowest cost wins; ties (all targets unmeasured,
 * say) go round-robin. A slow or overloaded target is avoided from its first slow sample, and
 * tried again as its estimate decays while it is left alone.
 */
export class LeastTimeBalancer implements Balancer {
  readonly kind = 'least-time';
  private readonly rotation = new TargetRotation();
  private readonly weights = new Weights();

  setTargets(targets: readonly Target[], weights?: readonly number[]): void {
    this.rotation.setTargets(targets);
    this.weights.set(targets, weights);
  }

  /** A target's cost now (what pick() compares; /status shows it). */
  cost(t: Target): number {
    const estimate = t.latency();
    if (estimate === 0 && t.connectTime.samples === 0 && t.dialing > 0) return (UNMEASURED_PENALTY + t.dialing) / this.weights.of(t);
    return (estimate * (t.active + t.dialing + 1)) / this.weights.of(t);
  }

  pick(candidates: readonly Target[], _ctx?: PickContext): Target {
    let best = candidates[0]!;
    let bestCost = this.cost(best);
    let bestRank = this.rotation.rank(best);
    for (let i = 1; i < candidates.length; i++) {
      const c = candidates[i]!;
      const cost = this.cost(c);
      if (cost > bestCost) continue;
      const rank = this.rotation.rank(c);
      if (cost < bestCost || rank < bestRank) {
        best = c;
        bestCost = cost;
        bestRank = rank;
      }
    }
    this.rotation.advancePast(best);
    return best;
  }
}
