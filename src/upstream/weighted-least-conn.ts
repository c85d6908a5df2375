import { Weights, type Balancer, type PickContext } from './balancer.js';
import type { Target } from './target.js';

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
  private readonly weights = new Weights();

  setTargets(targets: readonly Target[], weights?: readonly number[]): void {
    this.weights.set(targets, weights);
    const next = new Map<Target, number>();
    for (const t of targets) next.set(t, this.current.get(t) ?? 0);
    this.current = next;
  }

  pick(candidates: readonly Target[], _ctx?: PickContext): Target {
    // Pass 1: the smallest active/weight, compared by cross-multiplication.
    let minActive = candidates[0]!.active;
    const weightOf = (t: Target): number => this.weights.of(t);
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
