import type { Target } from './target.js';

/** What a balancer may look at when it chooses. */
export interface PickContext {
  /** Client address (after PROXY protocol, when that is used). */
  clientAddress: string;
}

/**
 * A balancer only decides *which* target to use. The dialer owns failover:
 * it calls pick() with the candidates still untried, healthy ones first.
 * `targets` passed to setTargets() is the app's full list in config order.
 */
export interface Balancer {
  readonly kind: string;
  setTargets(targets: readonly Target[]): void;
  /** Choose one of `candidates` (a non-empty subset of the targets). */
  pick(candidates: readonly Target[], ctx: PickContext): Target;
}
