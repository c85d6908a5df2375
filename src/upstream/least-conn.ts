import type { Balancer, PickContext } from './balancer.js';
import { TargetRotation } from './round-robin.js';
import type { Target } from './target.js';

/**
 * Fewest active connections wins. Ties go round-robin, so idle targets share
 * the load instead of the first one in the list taking every short connection.
 */
export class LeastConnBalancer implements Balancer {
  readonly kind = 'least-conn';
  private readonly rotation = new TargetRotation();

  setTargets(targets: readonly Target[], _weights?: readonly number[]): void {
    this.rotation.setTargets(targets);
  }

  pick(candidates: readonly Target[], _ctx?: PickContext): Target {
    let best = candidates[0]!;
    let bestRank = this.rotation.rank(best);
    for (let i = 1; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (c.active > best.active) continue;
      const r = this.rotation.rank(c);
      if (c.active < best.active || r < bestRank) {
        best = c;
        bestRank = r;
      }
    }
    this.rotation.advancePast(best);
    return best;
  }
}
