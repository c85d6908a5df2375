import type { SchedNode } from './sched-node.js';

// A binary min-heap on readyAt, with each node's index kept for removal.
export function heapPush(h: SchedNode[], n: SchedNode): void {
  n.heapIndex = h.length;
  h.push(n);
  siftUp(h, n.heapIndex);
}

export function heapPop(h: SchedNode[]): SchedNode {
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

export function heapRemove(h: SchedNode[], n: SchedNode): void {
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
