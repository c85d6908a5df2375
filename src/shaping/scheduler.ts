import type { Clock, Timer } from '../clock.js';
import { Bucket, reuse } from './bucket.js';
import type { FlowBatch } from './flow.js';
import { MIN_SEND, MIN_TICK, UNPARK_SLACK_MS, flowLow, flowNeed, largeGrant, nodeNeed, peakGateFor, quantumFor } from './grants.js';
import { Parked } from './parked.js';
import { joinParent, leaveParent, listMin, prefersLarge, SchedNode, unlistMin } from './sched-node.js';

export { SchedNode };

/**
 * One scheduler per direction for the whole proxy: a hierarchical DRR over
 * the tree with one timer. Nodes short of tokens are parked in a heap until
 * their bucket refills, so a serve pass only visits nodes that can send; the
 * work per pass is proportional to the bytes moved, not to the connections.
 */
export class Scheduler {
  readonly root: SchedNode;
  readonly clock: Clock;
  readonly #parked = new Parked();
  #timer: Timer | undefined;
  #timerAt = Infinity;
  #serving = false;
  #again = false;
  /** batches of the flows passed bytes in this serve pass (see FlowBatch) */
  readonly #batches: FlowBatch[] = [];
  /** nodes whose `watchAt` was reached in this serve pass */
  readonly #watched: SchedNode[] = [];
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
    leaveParent(node);
    node.parent = parent;
    joinParent(node);
    node.detached = false;
    if (wasActive || this.#hasWork(node)) this.#activate(node);
    this.#kick();
  }

  /** Remove a node for good (a closed connection, a customer that left). */
  detach(node: SchedNode): void {
    this.#deactivate(node);
    this.#unpark(node);
    leaveParent(node);
    node.detached = true;
    node.parent = null;
  }

  /**
   * Set or change a node's limits; `rate` Infinity means no bucket at this level. A bucket holds
   * at least MIN_SEND, the smallest grant (a smaller shared bucket would never serve its children).
   * `peak` (bytes/s, Infinity: none) adds a bucket of `peakSize` at that rate in series, so a full
   * bucket drains no faster than the peak; it needs a bucket (a finite `rate`) to be over.
   */
  setLimits(node: SchedNode, rate: number, burst: number, peak = Infinity, peakSize = 0): void {
    const size = burst > MIN_SEND ? burst : MIN_SEND;
    if (!Number.isFinite(rate)) node.bucket = null;
    else if (node.bucket) node.bucket.reconfigure(rate, size);
    else node.bucket = new Bucket(rate, size, this.clock);
    node.peak = node.bucket && Number.isFinite(peak) ? reuse(node.peak, peak, peakSize > MIN_SEND ? peakSize : MIN_SEND, this.clock) : null;
    // Grants are sized by the bucket, or under a peak by a few ms of the peak when that is less.
    const peakGate = node.peak ? Math.min(node.peak.bucketSize, peakGateFor(node.peak.rate)) : Infinity;
    const bucketSize = node.bucket ? node.bucket.bucketSize : 0;
    node.gate = peakGate < bucketSize ? peakGate : bucketSize;
    node.gateRate = peakGate < bucketSize ? node.peak!.rate : node.bucket ? node.bucket.rate : 0;
    // Re-evaluate at once: a parked node may be ready under the new rate.
    if (node.parked) {
      this.#unpark(node);
      if (this.#hasWork(node)) this.#activate(node);
    }
    this.#kick();
  }

  /**
   * Set or change a node's guaranteed minimum: `rate` bytes/s (Infinity or 0: none) with credit
   * for up to `size` bytes. While it has credit, the node's parent serves it before sharing the
   * rest among its children by weight; its own caps still hold.
   */
  setMin(node: SchedNode, rate: number, size: number): void {
    if (!(rate > 0 && Number.isFinite(rate))) {
      if (node.min) unlistMin(node);
      node.min = null;
      return;
    }
    if (node.min) node.min.reconfigure(rate, size);
    else {
      node.min = new Bucket(rate, size, this.clock);
      listMin(node);
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
        this.#parked.takeDue(this.clock.now(), this.#woken);
        const root = this.root;
        if (!root.parked && root.ringCount > 0) this.#drain(root, Infinity);
        if (this.#batches.length > 0) this.#commit();
      } while (this.#again);
    } finally {
      this.#serving = false;
    }
    if (this.#watched.length > 0) this.#notify();
    this.#arm();
  }

  /** After a serve pass (the tree may change now): the watches reached, each once until set again. */
  #notify(): void {
    const watched = this.#watched.splice(0);
    for (const node of watched) node.onWatch?.(node);
  }

  /** Send up to `max` bytes from `node`'s subtree; returns bytes sent. */
  #drain(node: SchedNode, max: number): number {
    const bucket = node.bucket;
    let tokens = bucket ? bucket.available() : Infinity;
    const peak = node.peak;
    if (peak !== null) {
      const p = peak.available();
      if (p < tokens) tokens = p;
    }
    const flow = node.flow;
    if (flow) {
      const pending = flow.sendable();
      if (pending <= 0) {
        this.#deactivate(node);
        return 0;
      }
      // Wait until the flow's own bucket holds its need (flowNeed); the parent's allowance in MIN_SEND steps.
      let need = bucket ? flowNeed(node.gate, node.gateRate, flow.grantSize) : 0;
      let low = need;
      let late = 0;
      // A flow preferring large grants shares its timer with others (grants.ts EARLY_FRACTION): it
      // may take `low` tokens, or when less than that waits, wait up to `late` tokens longer. (A
      // flow without that preference would split its one queued read in two.)
      const large = need > 0 && prefersLarge(flow);
      const fullNeed = need;
      const fullLow = large ? flowLow(need, node.gateRate) : need;
      if (large) {
        low = fullLow;
        if (pending < low) {
          late = fullNeed - fullLow;
          need = low = pending;
        } else if (pending < need) need = pending;
      } else if (pending < need) need = low = pending;
      if (tokens < low) {
        this.#park(node, need, low, late);
        return 0;
      }
      // Whole bytes only: allowances and tokens are fractional.
      let n = pending < max ? pending : Math.floor(max);
      // The parent's allowance is too small for a worthwhile write: wait for the next turn.
      if (n < MIN_SEND && n < pending) return 0;
      if (tokens < n) n = Math.floor(tokens);
      // A large-grant flow takes about `fullLow` at most, however late in its window: its cadence
      // stays its own (grants.ts largeGrant).
      const fullGrant = largeGrant(fullLow, node.spread);
      if (large && n > fullGrant) n = fullGrant;
      if (n <= 0) return 0;
      if (bucket !== null) {
        bucket.take(n);
        if (peak !== null) peak.take(n);
      }
      node.bytes += n;
      flow.pass(n);
      const batch = flow.batch;
      if (batch !== undefined && batch !== null) this.#dirty(batch);
      // A large-grant flow that took a full grant is mid-transfer: its source refills its queue (a
      // native relay tops its pipe up at the commit). Unless its bucket can fund another, it waits
      // parked for the next full grant: the refill's wakes cost nothing, a short queue wakes nothing.
      const left = flow.sendable();
      if (large && (tokens - n < fullLow || (n >= fullGrant && left <= 0))) this.#park(node, fullNeed, fullLow);
      else if (left <= 0) this.#deactivate(node);
      return n;
    }

    // Short of the smallest grant worth making, a shared node waits for `least` (more, for
    // large-grant children); a pass its parent cut short serves what is left.
    const least = nodeNeed(node.gate, node.largeKids, node.gateRate);
    if (tokens < MIN_SEND && bucket) {
      this.#park(node, least);
      return 0;
    }
    const cap = tokens < max ? tokens : max;
    // With no bucket on the way from the root (cap Infinity) there is nothing to share by turns: a
    // child takes what its own limits allow, whole, not cut at a quantum into a few small grants.
    const quantum = cap === Infinity ? 0 : quantumFor(bucket?.rate, node.largeKids > 0);
    // Children with a guaranteed minimum first, up to their credit; then everyone by weight.
    let sent = node.minKids !== null ? this.#serveMinimums(node, node.minKids, cap) : 0;
    let idle = 0; // consecutive visits that moved nothing
    while (node.ringCount > 0 && sent < cap) {
      const c = node.ring!;
      if (!c.granted) {
        c.deficit += quantum * c.weight;
        c.granted = true;
      }
      const room = cap - sent;
      const allowance = quantum === 0 || c.deficit >= room ? room : c.deficit;
      const n = this.#drain(c, allowance);
      sent += n;
      if (quantum > 0) c.deficit -= n;
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
    if (bucket !== null && sent > 0) {
      bucket.take(sent);
      if (peak !== null) peak.take(sent);
    }
    node.bytes += sent;
    if (node.bytes >= node.watchAt) {
      node.watchAt = Infinity;
      this.#watched.push(node);
    }
    if (bucket !== null && node.ringCount > 0 && sent < max && (bucket.content < least || (peak !== null && peak.content < least))) {
      this.#park(node, least);
    }
    return sent;
  }

  /**
   * The first round at a node whose children have guaranteed minimums: each ready one, in turn,
   * gets up to its credit (within `cap`); returns the bytes sent. Their DRR deficits are left
   * alone, so what is left is then shared by weight among all the ready children as usual.
   */
  #serveMinimums(node: SchedNode, kids: SchedNode[], cap: number): number {
    let sent = 0;
    const count = kids.length;
    const first = node.minTurn++ % count;
    for (let i = 0; i < count && sent < cap; i++) {
      const c = kids[(first + i) % count]!;
      if (!c.inRing) continue;
      const credit = c.min!.available();
      // Less than the smallest grant: it waits for more credit (or takes its turn by weight).
      if (credit < MIN_SEND) continue;
      const room = cap - sent;
      const n = this.#drain(c, credit < room ? credit : room);
      c.min!.take(n);
      sent += n;
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

  /**
   * Out of the ring until its bucket (and its peak bucket) hold `need` tokens. It may be woken
   * once they hold `low`, or as late as when they hold `late` more than `need`: a timer due for
   * another node within that window serves it too, and its own is set for the window's end.
   */
  #park(node: SchedNode, need: number, low = need, late = 0): void {
    this.#deactivate(node);
    node.parked = true;
    const now = this.clock.now();
    const ready = now + this.#msUntil(node, need);
    // (flowLow allows for the sweep's UNPARK_SLACK_MS: a wake may come that much before openAt)
    node.openAt = low < need ? now + this.#msUntil(node, low) + UNPARK_SLACK_MS : late > 0 ? ready + UNPARK_SLACK_MS : ready;
    node.readyAt = late > 0 ? now + this.#msUntil(node, need + late) : ready;
    this.#parked.add(node);
  }

  #msUntil(node: SchedNode, tokens: number): number {
    const ms = node.bucket!.msUntil(tokens);
    const peak = node.peak;
    if (peak === null) return ms;
    const p = peak.msUntil(tokens);
    return p > ms ? p : ms;
  }

  #unpark(node: SchedNode): void {
    if (!node.parked) return;
    node.parked = false;
    this.#parked.remove(node);
  }

  readonly #woken = (node: SchedNode): void => {
    node.parked = false;
    if (node === this.root) return;
    if (!node.detached && this.#hasWork(node)) this.#activate(node);
  };

  #arm(): void {
    const first = this.#parked.next();
    if (first === Infinity) return;
    const now = this.clock.now();
    const at = Math.max(first, now + MIN_TICK);
    if (this.#timer && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.clock.setTimer(at - now, this.#onTimer);
  }

  /** Nodes waiting for tokens (for tests and stats). */
  get parkedCount(): number {
    return this.#parked.size;
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}
