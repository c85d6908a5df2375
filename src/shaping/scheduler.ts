import type { Clock, Timer } from '../clock.js';
import { Bucket } from './bucket.js';
import type { Flow, FlowBatch } from './flow.js';
import { MIN_SEND, MIN_TICK, UNPARK_SLACK_MS, flowNeed, nodeNeed, quantumFor } from './grants.js';

/**
 * A node of the shaping tree: global -> tier -> customer -> connection. Each
 * may have a bucket (null: unlimited at that level). Children that have
 * something to send and tokens to send it with sit in their parent's ring and
 * are served by deficit round-robin, so siblings get max-min fair shares and a
 * light child leaves its share to the others at once.
 */
export class SchedNode {
  bucket: Bucket | null = null;
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
  readyAt = 0;
  heapIndex = -1;
  detached = false;
  /** bytes passed through this node, ever (for rate displays and tests) */
  bytes = 0;
  /** `bytes` when the fleet's demand was last sampled (Shaper.demand) */
  sampledBytes = 0;
  /** bytes/s moved, averaged over about a second of those samples */
  sampledRate = 0;

  constructor(label: string, flow: Flow | null = null) {
    this.label = label;
    this.flow = flow;
  }
}

/**
 * One scheduler per direction for the whole proxy: a hierarchical DRR over
 * the tree with one timer. Nodes short of tokens are parked in a heap until
 * their bucket refills, so a serve pass only visits nodes that can send; the
 * work per pass is proportional to the bytes moved, not to the connections.
 */
export class Scheduler {
  readonly root: SchedNode;
  readonly clock: Clock;
  #heap: SchedNode[] = [];
  #timer: Timer | undefined;
  #timerAt = Infinity;
  #serving = false;
  #again = false;
  /** batches of the flows passed bytes in this serve pass (see FlowBatch) */
  readonly #batches: FlowBatch[] = [];
  readonly #onTimer = () => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.serve();
  };

  constructor(clock: Clock, label = 'global') {
    this.clock = clock;
    this.root = new SchedNode(label);
  }

  /** Attach `node` under `parent` (or move it there, with its subtree). */
  attach(node: SchedNode, parent: SchedNode): void {
    const wasActive = node.inRing;
    if (node.parent) this.#deactivate(node);
    node.parent = parent;
    node.detached = false;
    if (wasActive || this.#hasWork(node)) this.#activate(node);
    this.#kick();
  }

  /** Remove a node for good (a closed connection, a customer that left). */
  detach(node: SchedNode): void {
    this.#deactivate(node);
    this.#unpark(node);
    node.detached = true;
    node.parent = null;
  }

  /**
   * Set or change a node's limits; `rate` Infinity means no bucket at this level. A bucket holds
   * at least MIN_SEND, the smallest grant (a smaller shared bucket would never serve its children).
   */
  setLimits(node: SchedNode, rate: number, burst: number): void {
    const size = burst > MIN_SEND ? burst : MIN_SEND;
    if (!Number.isFinite(rate)) node.bucket = null;
    else if (node.bucket) node.bucket.reconfigure(rate, size);
    else node.bucket = new Bucket(rate, size, this.clock);
    // Re-evaluate at once: a parked node may be ready under the new rate.
    if (node.parked) {
      this.#unpark(node);
      if (this.#hasWork(node)) this.#activate(node);
    }
    this.#kick();
  }

  /** A flow has something to send (new data, or downstream wants more). */
  wake(node: SchedNode): void {
    if (node.detached || node.parked || node.inRing) return;
    if (node.flow!.sendable() <= 0) return;
    this.#activate(node);
    this.#kick();
  }

  #kick(): void {
    if (this.#serving) this.#again = true;
    else this.serve();
  }

  /** Move as many bytes as every bucket allows, fairly. */
  serve(): void {
    if (this.#serving) {
      this.#again = true;
      return;
    }
    this.#serving = true;
    try {
      do {
        this.#again = false;
        this.#unparkDue();
        const root = this.root;
        if (!root.parked && root.ringCount > 0) this.#drain(root, Infinity);
        if (this.#batches.length > 0) this.#commit();
      } while (this.#again);
    } finally {
      this.#serving = false;
    }
    this.#arm();
  }

  /** Send up to `max` bytes from `node`'s subtree; returns bytes sent. */
  #drain(node: SchedNode, max: number): number {
    const bucket = node.bucket;
    const tokens = bucket ? bucket.available() : Infinity;
    const flow = node.flow;
    if (flow) {
      const pending = flow.sendable();
      if (pending <= 0) {
        this.#deactivate(node);
        return 0;
      }
      // Wait until the flow's own bucket holds its need (flowNeed); the parent's allowance is
      // taken in MIN_SEND steps.
      let need = bucket ? flowNeed(bucket.bucketSize, bucket.rate, flow.grantSize) : 0;
      if (pending < need) need = pending;
      if (tokens < need) {
        this.#park(node, bucket!, need);
        return 0;
      }
      // Whole bytes only: allowances and tokens are fractional.
      let n = pending < max ? pending : Math.floor(max);
      // The parent's allowance is too small for a worthwhile write: wait for the next turn.
      if (n < MIN_SEND && n < pending) return 0;
      if (tokens < n) n = Math.floor(tokens);
      if (n <= 0) return 0;
      bucket?.take(n);
      node.bytes += n;
      flow.pass(n);
      const batch = flow.batch;
      if (batch !== undefined && batch !== null) this.#dirty(batch);
      if (flow.sendable() <= 0) this.#deactivate(node);
      return n;
    }

    if (tokens < MIN_SEND && bucket) {
      this.#park(node, bucket, nodeNeed(bucket.bucketSize));
      return 0;
    }
    const cap = tokens < max ? tokens : max;
    const quantum = quantumFor(bucket?.rate);
    let sent = 0;
    let idle = 0; // consecutive visits that moved nothing
    while (node.ringCount > 0 && sent < cap) {
      const c = node.ring!;
      if (!c.granted) {
        c.deficit += quantum * c.weight;
        c.granted = true;
      }
      const room = cap - sent;
      const allowance = c.deficit < room ? c.deficit : room;
      const n = this.#drain(c, allowance);
      sent += n;
      c.deficit -= n;
      if (!c.inRing || c.parent !== node) {
        // Left the ring: drained, parked, downstream full (or moved by the flow's owner). No hoarding.
        c.deficit = 0;
        c.granted = false;
      } else if (allowance === room && room < c.deficit + n) {
        // This node ran out, not the child: keep the child's turn for next time.
        break;
      } else {
        c.granted = false;
        if (c.deficit > quantum * c.weight) c.deficit = quantum * c.weight;
        node.ring = c.next;
      }
      idle = n > 0 ? 0 : idle + 1;
      if (idle > node.ringCount) break;
    }
    if (bucket && sent > 0) bucket.take(sent);
    node.bytes += sent;
    if (bucket && node.ringCount > 0 && bucket.content < MIN_SEND && sent < max) {
      this.#park(node, bucket, nodeNeed(bucket.bucketSize));
    }
    return sent;
  }

  #dirty(batch: FlowBatch): void {
    const batches = this.#batches;
    if (batches[batches.length - 1] !== batch && !batches.includes(batch)) batches.push(batch);
  }

  /** End of a serve pass: each batch acts on its flows' grants, in one call. */
  #commit(): void {
    const batches = this.#batches;
    for (let i = 0; i < batches.length; i++) batches[i]!.commit();
    batches.length = 0;
  }

  #hasWork(node: SchedNode): boolean {
    return node.flow ? node.flow.sendable() > 0 : node.ringCount > 0;
  }

  #activate(node: SchedNode): void {
    for (let n: SchedNode | null = node; n && !n.inRing && !n.parked && !n.detached; ) {
      const p: SchedNode | null = n.parent;
      if (!p) return;
      if (p.ring) {
        // insert at the tail: just before the cursor
        const head = p.ring;
        n.prev = head.prev;
        n.next = head;
        head.prev!.next = n;
        head.prev = n;
      } else {
        n.prev = n;
        n.next = n;
        p.ring = n;
      }
      n.inRing = true;
      p.ringCount++;
      if (p.ringCount > 1) return; // the parent was already active (or parked)
      n = p;
    }
  }

  #deactivate(node: SchedNode): void {
    for (let n: SchedNode | null = node; n && n.inRing; ) {
      const p: SchedNode = n.parent!;
      if (n.next === n) p.ring = null;
      else {
        n.prev!.next = n.next;
        n.next!.prev = n.prev;
        if (p.ring === n) p.ring = n.next;
      }
      n.prev = n.next = null;
      n.inRing = false;
      p.ringCount--;
      if (p.ringCount > 0) return;
      n = p;
    }
  }

  #park(node: SchedNode, bucket: Bucket, need: number): void {
    this.#deactivate(node);
    node.parked = true;
    node.readyAt = this.clock.now() + bucket.msUntil(need);
    heapPush(this.#heap, node);
  }

  #unpark(node: SchedNode): void {
    if (!node.parked) return;
    node.parked = false;
    heapRemove(this.#heap, node);
  }

  #unparkDue(): void {
    const now = this.clock.now();
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]!.readyAt <= now + UNPARK_SLACK_MS) {
      const node = heapPop(heap);
      node.parked = false;
      if (node === this.root) continue;
      if (!node.detached && this.#hasWork(node)) this.#activate(node);
    }
  }

  #arm(): void {
    const heap = this.#heap;
    if (heap.length === 0) return;
    const now = this.clock.now();
    const at = Math.max(heap[0]!.readyAt, now + MIN_TICK);
    if (this.#timer && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.clock.setTimer(at - now, this.#onTimer);
  }

  /** Nodes waiting for tokens (for tests and stats). */
  get parkedCount(): number {
    return this.#heap.length;
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

// A binary min-heap on readyAt, with each node's index kept for removal.
function heapPush(h: SchedNode[], n: SchedNode): void {
  n.heapIndex = h.length;
  h.push(n);
  siftUp(h, n.heapIndex);
}

function heapPop(h: SchedNode[]): SchedNode {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length > 0) {
    h[0] = last;
    last.heapIndex = 0;
    siftDown(h, 0);
  }
  top.heapIndex = -1;
  return top;
}

function heapRemove(h: SchedNode[], n: SchedNode): void {
  const i = n.heapIndex;
  if (i < 0) return;
  const last = h.pop()!;
  n.heapIndex = -1;
  if (i === h.length) return;
  h[i] = last;
  last.heapIndex = i;
  siftDown(h, i);
  siftUp(h, last.heapIndex);
}

function siftUp(h: SchedNode[], i: number): void {
  const n = h[i]!;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]!.readyAt <= n.readyAt) break;
    h[i] = h[p]!;
    h[i]!.heapIndex = i;
    i = p;
  }
  h[i] = n;
  n.heapIndex = i;
}

function siftDown(h: SchedNode[], i: number): void {
  const n = h[i]!;
  const len = h.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= len) break;
    const r = l + 1;
    const c = r < len && h[r]!.readyAt < h[l]!.readyAt ? r : l;
    if (h[c]!.readyAt >= n.readyAt) break;
    h[i] = h[c]!;
    h[i]!.heapIndex = i;
    i = c;
  }
  h[i] = n;
  n.heapIndex = i;
}
