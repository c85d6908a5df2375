/** A scheduler on a manual clock and greedy or light leaves under it, for the scheduler's tests. */
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import type { Flow } from '../../src/shaping/flow.js';
import { Scheduler, SchedNode } from '../../src/shaping/scheduler.js';

const CHUNK = 64 * 1024;

/**
 * A leaf with an endless supply (greedy) or a fixed queue (light), recording
 * what it sent and when. Like a real stream it holds one chunk at a time: the
 * next one arrives a moment after the last is gone (the write callback is async).
 */
export class FakeLeaf implements Flow {
  queued: number;
  chunkLeft = 0;
  sent = 0;
  log: [number, number][] = [];
  blocked = false;
  node: SchedNode | undefined;
  constructor(
    private readonly clock: ManualClock,
    private readonly sched: Scheduler,
    queued = Infinity,
  ) {
    this.queued = queued;
    this.refill();
  }
  refill(): void {
    this.chunkLeft = Math.min(this.queued, CHUNK);
  }
  sendable(): number {
    return this.blocked ? 0 : this.chunkLeft;
  }
  add(bytes: number): void {
    this.queued += bytes;
    if (this.chunkLeft === 0) this.refill();
    this.sched.wake(this.node!);
  }
  pass(n: number): void {
    assert.ok(Number.isInteger(n) && n > 0 && n <= this.sendable(), `pass(${n}) with ${this.sendable()} sendable`);
    this.queued -= n;
    this.chunkLeft -= n;
    this.sent += n;
    this.log.push([this.clock.now(), n]);
    if (this.chunkLeft === 0 && this.queued > 0) {
      this.clock.setTimer(0, () => {
        this.refill();
        this.sched.wake(this.node!);
      });
    }
  }
}

export function setup() {
  const clock = new ManualClock(1000);
  const sched = new Scheduler(clock);
  const node = (label: string, parent: SchedNode, rate = Infinity, burst = 0, leaf?: FakeLeaf) => {
    const n = new SchedNode(label, leaf ?? null);
    sched.setLimits(n, rate, burst);
    sched.attach(n, parent);
    return n;
  };
  const leafUnder = (parent: SchedNode, rate = Infinity, burst = 0, queued = Infinity) => {
    const leaf = new FakeLeaf(clock, sched, queued);
    const n = node(`leaf`, parent, rate, burst, leaf);
    leaf.node = n;
    sched.wake(n);
    return { leaf, node: n };
  };
  return { clock, sched, node, leafUnder };
}

/** Advance in uneven steps, as a real event loop would. */
export function run(clock: ManualClock, ms: number): void {
  const end = clock.now() + ms;
  let i = 0;
  while (clock.now() < end) clock.advance(Math.min(end - clock.now(), 1 + ((i++ * 7) % 13)));
}

