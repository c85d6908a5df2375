import type { Balancer, PickContext } from './balancer.js';
import type { Target } from './target.js';

/**
 * A cursor over the app's full target list in config order. Candidates are
 * ranked by their distance from the cursor, so a subset (unhealthy or
 * already-tried targets left out) still rotates fairly: the next target at or
 * after the cursor wins, and the cursor moves past it.
 *
 * Shared by the balancers that break ties round-robin.
 */
export class TargetRotation {
  private position = new Map<Target, number>();
  private size = 0;
  private cursor = 0;

  setTargets(targets: readonly Target[]): void {
    this.position = new Map(targets.map((t, i) => [t, i]));
    this.size = targets.length;
    if (this.cursor >= this.size) this.cursor = 0;
  }

  /** 0 for the target at the cursor, growing clockwise; unknown targets rank last. */
  rank(target: Target): number {
    const i = this.position.get(target);
    if (i === undefined) return this.size;
    return i >= this.cursor ? i - this.cursor : i - this.cursor + this.size;
  }

  advancePast(target: Target): void {
    const i = this.position.get(target);
    if (i !== undefined) this.cursor = i + 1 === this.size ? 0 : i + 1;
  }
}

export class RoundRobinBalancer implements Balancer {
  readonly kind = 'round-robin';
  private readonly rotation = new TargetRotation();

  setTargets(targets: readonly Target[], _weights?: readonly number[]): void {
    this.rotation.setTargets(targets);
  }

  pick(candidates: readonly Target[], _ctx?: PickContext): Target {
    let best = candidates[0]!;
    let bestRank = this.rotation.rank(best);
    for (let i = 1; i < candidates.length && bestRank > 0; i++) {
      const c = candidates[i]!;
      const r = this.rotation.rank(c);
      if (r < bestRank) {
        best = c;
        bestRank = r;
      }
    }
    this.rotation.advancePast(best);
    return best;
  }
}
