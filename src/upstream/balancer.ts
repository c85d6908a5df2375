import type { Target } from './target.js';

/** What a balancer may look at when it chooses. */
export interface PickContext {
  /** Client address (after PROXY protocol, when that is used). */
  clientAddress: string;
}

/**
 * A balancer only decides *which* target to use. The dialer owns failover:
 * it calls pick() with the candidates still untried, healthy ones first.
 * `targets` passed to setTargets() is the app's full list in config order, with
 * each target's weight *in this app* (a target several apps list is one Target,
 * sharing health and connection counts, but each app gives it its own weight).
 */
export interface Balancer {
  readonly kind: string;
  setTargets(targets: readonly Target[], weights?: readonly number[]): void;
  /** Choose one of `candidates` (a non-empty subset of the targets). */
  pick(candidates: readonly Target[], ctx: PickContext): Target;
}

/**
 * The weights of an app's targets, by target. Config validation rejects non-positive weights; the
 * fallback to 1 only keeps the maths finite for a target the app does not list.
 */
export class Weights {
  #byTarget = new Map<Target, number>();

  set(targets: readonly Target[], weights?: readonly number[]): void {
    this.#byTarget = new Map(targets.map((t, i) => [t, weights?.[i] ?? 1]));
  }

  of(target: Target): number {
    const w = this.#byTarget.get(target);
    return w !== undefined && w > 0 ? w : 1;
  }
}
