import type { Bucket } from './bucket.js';
import type { Flow } from './flow.js';

/**
 * A node of the shaping tree: global -> tier -> customer -> connection. Each
 * may have a bucket (null: unlimited at that level). Children that have
 * something to send and tokens to send it with sit in their parent's ring and
 * are served by deficit round-robin, so siblings get max-min fair shares and a
 * light child leaves its share to the others at once.
 */
export class SchedNode {
  bucket: Bucket | null = null;
  /**
   * A second, small bucket in series at the peak rate (tc tbf's peakrate): a full `bucket` then
   * drains no faster than the peak. null: none (the usual case, which costs one check).
   */
  peak: Bucket | null = null;
  /** The size the node's grants are sized by: its bucket's, or a few ms of its peak when that is less (grants.ts peakGateFor). */
  gate = 0;
  /** The rate that refills the `gate` bucket (bytes/s). */
  gateRate = 0;
  /**
   * Credit of a guaranteed minimum (HTB's rate under its ceil): while it lasts, the parent serves
   * this node before it shares the rest by weight. null: no minimum.
   */
  min: Bucket | null = null;
  /** The children with a minimum (few: the tiers under global); null: none. */
  minKids: SchedNode[] | null = null;
  /** Which of minKids goes first in the next serve (they take turns). */
  minTurn = 0;
  /** Children whose flow prefers large grants (native relay directions): the DRR turns are larger (grants.ts LARGE_QUANTUM). */
  largeKids = 0;
  parent: SchedNode | null = null;
  /** DRR weight among siblings (tiers under global use the tier's weight). */
  weight = 1;
  /** The flow at a leaf (a stream's direction); null at a shared node. */
  readonly flow: Flow | null;
  readonly label: string;

  // ring of children ready to send (circular doubly-linked, `ring` is the cursor)
  ring: SchedNode | null = null;
  ringCount = 0;
  prev: SchedNode | null = null;
  next: SchedNode | null = null;
  inRing = false;

  deficit = 0;
  granted = false;
  parked = false;
  /** When a parked node is woken at the latest (the heap's order); for most, when its bucket holds what it waits for. */
  readyAt = 0;
  /** When a parked node may be woken at the earliest (see Scheduler #park). */
  openAt = 0;
  /** Parked with a window (openAt < readyAt): in the scheduler's second heap. */
  windowed = false;
  heapIndex = -1;
  detached = false;
  /** bytes passed through this node, ever (for rate displays and tests) */
  bytes = 0;
  /** `bytes` when the fleet's demand was last sampled (Shaper.demand) */
  sampledBytes = 0;
  /** bytes/s moved, averaged over about a second of those samples */
  sampledRate = 0;
  /** once `bytes` reaches this, `onWatch` is called after the serve pass (usage quotas) */
  watchAt = Infinity;
  onWatch: ((node: SchedNode) => void) | null = null;
  /** Where in [0, 1) this node's large grants fall within GRANT_SPREAD (grants.ts largeGrant): spread evenly, node by node. */
  readonly spread: number;

  constructor(label: string, flow: Flow | null = null) {
    this.label = label;
    this.flow = flow;
    this.spread = (created++ * 0.6180339887498949) % 1;
  }
}

/** SchedNodes made so far (the golden-ratio sequence of their `spread`). */
let created = 0;

/** Whether `flow` prefers large grants (a native relay direction: it names its grantSize). */
export function prefersLarge(flow: Flow | null): boolean {
  return flow?.grantSize !== undefined;
}

/** `node` (its `parent` just set) joins its parent's lists: minKids, largeKids. */
export function joinParent(node: SchedNode): void {
  if (node.min) listMin(node);
  if (node.parent && prefersLarge(node.flow)) node.parent.largeKids++;
}

/** `node` leaves its parent's lists (before its `parent` changes). */
export function leaveParent(node: SchedNode): void {
  if (node.min) unlistMin(node);
  if (node.parent && prefersLarge(node.flow)) node.parent.largeKids--;
}

/** A node with a minimum joins its parent's minKids (and leaves them). */
export function listMin(node: SchedNode): void {
  const p = node.parent;
  if (!p) return;
  if (!p.minKids) p.minKids = [node];
  else if (!p.minKids.includes(node)) p.minKids.push(node);
}

export function unlistMin(node: SchedNode): void {
  const p = node.parent;
  if (!p?.minKids) return;
  const i = p.minKids.indexOf(node);
  if (i >= 0) p.minKids.splice(i, 1);
  if (p.minKids.length === 0) p.minKids = null;
}
