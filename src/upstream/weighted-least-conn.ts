import type { Balancer, PickContext } from './balancer.js';
import type { Target } from './target.js';

/** Config validation rejects non-positive weights; this only keeps the maths finite. */
function weightOf(t: Target): number {
  return t.weight > 0 ? t.weight : 1;
}

/**
 * Minimises active / weight. Ties are broken by smooth weighted round-robin
 * (nginx): every tied candidate's `current` grows by its weight, the largest
 * wins and pays back the tied weights' sum. With short connections (active
 * always 0) everything ties, so picks follow the weights; with long-lived ones
 * the ratio term keeps the active counts in weight proportion.
 */
export class WeightedLeastConnBalancer implements Balancer {
  readonly kind = 'weighted-least-conn';
  private current = new Map<Target, number>();

  setTargets(targets: readonly Target[]): void {
    const next = new Map<Target, number>();
    for (const t of targets) next.set(t, this.current.get(t) ?? 0);
    this.current = next;
  }

  pick(candidates: readonly Target[], _ctx?: PickContext): Target {
    // Pass 1: the smallest active/weight, compared by cross-multiplication.
    let minActive = candidates[0]!.active;
    let minWeight = weightOf(candidates[0]!);
    for (let i = 1; i < candidates.length; i++) {
      const c = candidates[i]!;
      const w = weightOf(c);
      if (c.active * minWeight < minActive * w) {
        minActive = c.active;
        minWeight = w;
      }
    }

    // Pass 2: smooth weighted round-robin among the tied candidates.
    let best: Target | undefined;
    let bestCurrent = -Infinity;
    let tiedWeight = 0;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const w = weightOf(c);
      if (c.active * minWeight !== minActive * w) continue;
      const cur = (this.current.get(c) ?? 0) + w;
      this.current.set(c, cur);
      tiedWeight += w;
      if (cur > bestCurrent) {
        best = c;
        bestCurrent = cur;
      }
    }
    // The candidate that set the minimum always ties with itself, so best is set.
    if (best === undefined) return candidates[0]!;
    this.current.set(best, bestCurrent - tiedWeight);
    return best;
  }
}
