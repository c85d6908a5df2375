import { MAX_EARLY_MS, UNPARK_SLACK_MS } from './grants.js';
import { heapPop, heapPush, heapRemove } from './heap.js';
import type { SchedNode } from './sched-node.js';

/**
 * A scheduler's parked nodes: those waiting for tokens, each until its `readyAt`, and the flows
 * with a window (grants.ts EARLY_FRACTION), which may be woken from their `openAt` on and must be
 * by their `readyAt`. Two heaps, so that looking for open windows never churns through the many
 * nodes without one.
 */
export class Parked {
  /** nodes woken when due (openAt = readyAt), by readyAt */
  readonly #exact: SchedNode[] = [];
  /** nodes with a window (openAt < readyAt), by the window's end */
  readonly #windowed: SchedNode[] = [];
  /** windowed nodes looked at in takeDue whose window has not opened yet */
  readonly #deferred: SchedNode[] = [];

  add(node: SchedNode): void {
    node.windowed = node.openAt < node.readyAt;
    heapPush(node.windowed ? this.#windowed : this.#exact, node);
  }

  remove(node: SchedNode): void {
    heapRemove(node.windowed ? this.#windowed : this.#exact, node);
  }

  /**
   * Takes out every node due at `now` (within UNPARK_SLACK_MS: timers fire a little early or
   * late) and every windowed one whose window has opened, and hands each to `woken`.
   */
  takeDue(now: number, woken: (node: SchedNode) => void): void {
    const exact = this.#exact;
    while (exact.length > 0 && exact[0]!.readyAt <= now + UNPARK_SLACK_MS) woken(heapPop(exact));
    // A window is at most MAX_EARLY_MS wide: nodes whose window ends later are not open yet.
    const windowed = this.#windowed;
    const deferred = this.#deferred;
    while (windowed.length > 0 && windowed[0]!.readyAt <= now + MAX_EARLY_MS + UNPARK_SLACK_MS) {
      const node = heapPop(windowed);
      if (node.openAt > now + UNPARK_SLACK_MS) deferred.push(node);
      else woken(node);
    }
    for (let i = 0; i < deferred.length; i++) heapPush(windowed, deferred[i]!);
    deferred.length = 0;
  }

  /** When the first node must be woken (Infinity: none is parked). */
  next(): number {
    const a = this.#exact.length > 0 ? this.#exact[0]!.readyAt : Infinity;
    const b = this.#windowed.length > 0 ? this.#windowed[0]!.readyAt : Infinity;
    return a < b ? a : b;
  }

  get size(): number {
    return this.#exact.length + this.#windowed.length;
  }
}
