import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Balancer } from '../../src/upstream/balancer.js';
import { createBalancer } from '../../src/upstream/balancers.js';
import { IpHashBalancer } from '../../src/upstream/ip-hash.js';
import { LeastConnBalancer } from '../../src/upstream/least-conn.js';
import { RoundRobinBalancer } from '../../src/upstream/round-robin.js';
import { Target } from '../../src/upstream/target.js';
import { WeightedLeastConnBalancer } from '../../src/upstream/weighted-least-conn.js';

/** A target and, for the weighted balancers, its weight in the app under test (see weightsOf). */
function target(port: number, weight = 1): Target {
  const t = new Target({ address: `127.0.0.1:${port}`, host: '127.0.0.1', port });
  testWeights.set(t, weight);
  return t;
}
const testWeights = new Map<Target, number>();
const weightsOf = (ts: readonly Target[]): number[] => ts.map((t) => testWeights.get(t) ?? 1);

const ctx = { clientAddress: '10.0.0.1' };

function picks(b: Balancer, candidates: readonly Target[], n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(b.pick(candidates, ctx).port);
  return out;
}

/** 10.x.y.z for i in [0, 2^24). */
function ip(i: number): string {
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

describe('createBalancer', () => {
  it('builds each kind', () => {
    assert.ok(createBalancer('round-robin') instanceof RoundRobinBalancer);
    assert.ok(createBalancer('least-conn') instanceof LeastConnBalancer);
    assert.ok(createBalancer('weighted-least-conn') instanceof WeightedLeastConnBalancer);
    assert.ok(createBalancer('ip-hash') instanceof IpHashBalancer);
    assert.equal(createBalancer('ip-hash').kind, 'ip-hash');
    assert.equal(createBalancer('least-time').kind, 'least-time');
  });
});

describe('RoundRobinBalancer', () => {
  it('cycles in config order', () => {
    const ts = [target(1), target(2), target(3)];
    const b = new RoundRobinBalancer();
    b.setTargets(ts, weightsOf(ts));
    assert.deepEqual(picks(b, ts, 7), [1, 2, 3, 1, 2, 3, 1]);
  });

  it('skips targets missing from the candidates', () => {
    const [a, bT, c] = [target(1), target(2), target(3)];
    const b = new RoundRobinBalancer();
    b.setTargets([a, bT, c]);
    assert.deepEqual(picks(b, [a, c], 6), [1, 3, 1, 3, 1, 3]);
  });

  it('continues after the last pick when the subset changes', () => {
    const ts = [target(1), target(2), target(3)];
    const b = new RoundRobinBalancer();
    b.setTargets(ts, weightsOf(ts));
    assert.equal(b.pick(ts, ctx).port, 1);
    // Failover: 2 was tried, so the dialer offers the rest.
    assert.equal(b.pick([ts[0]!, ts[2]!], ctx).port, 3);
    assert.equal(b.pick(ts, ctx).port, 1);
  });
});

describe('LeastConnBalancer', () => {
  it('prefers the target with fewest active connections', () => {
    const ts = [target(1), target(2), target(3)];
    ts[0]!.active = 5;
    ts[1]!.active = 2;
    ts[2]!.active = 7;
    const b = new LeastConnBalancer();
    b.setTargets(ts, weightsOf(ts));
    assert.equal(b.pick(ts, ctx).port, 2);
    assert.equal(b.pick(ts, ctx).port, 2);
    ts[0]!.active = 0;
    assert.equal(b.pick(ts, ctx).port, 1);
  });

  it('spreads ties round-robin', () => {
    const ts = [target(1), target(2), target(3)];
    const b = new LeastConnBalancer();
    b.setTargets(ts, weightsOf(ts));
    assert.deepEqual(picks(b, ts, 6), [1, 2, 3, 1, 2, 3]);
    ts[1]!.active = 1;
    assert.deepEqual(picks(b, ts, 4), [1, 3, 1, 3]);
  });
});

describe('WeightedLeastConnBalancer', () => {
  it('follows the weights with short connections', () => {
    const ts = [target(1, 3), target(2, 1)];
    const b = new WeightedLeastConnBalancer();
    b.setTargets(ts, weightsOf(ts));
    const got = picks(b, ts, 400);
    assert.equal(got.filter((p) => p === 1).length, 300);
    assert.equal(got.filter((p) => p === 2).length, 100);
    // Smooth: the light target is not starved for long runs.
    assert.deepEqual(got.slice(0, 8), [1, 1, 2, 1, 1, 1, 2, 1]);
  });

  it('keeps long-lived active counts in weight proportion', () => {
    const ts = [target(1, 3), target(2, 1)];
    const b = new WeightedLeastConnBalancer();
    b.setTargets(ts, weightsOf(ts));
    for (let i = 0; i < 400; i++) b.pick(ts, ctx).active++;
    assert.ok(Math.abs(ts[0]!.active - 300) <= 1, `active ${ts[0]!.active}`);
    assert.ok(Math.abs(ts[1]!.active - 100) <= 1, `active ${ts[1]!.active}`);
  });

  it('prefers the lowest active/weight', () => {
    const ts = [target(1, 4), target(2, 1)];
    ts[0]!.active = 7; // 1.75
    ts[1]!.active = 2; // 2
    const b = new WeightedLeastConnBalancer();
    b.setTargets(ts, weightsOf(ts));
    assert.equal(b.pick(ts, ctx).port, 1);
    assert.equal(b.pick([ts[1]!], ctx).port, 2);
  });
});

describe('IpHashBalancer', () => {
  const N = 10_000;

  function owners(b: IpHashBalancer, candidates: readonly Target[]): number[] {
    const out: number[] = [];
    for (let i = 0; i < N; i++) out.push(b.pick(candidates, { clientAddress: ip(i) }).port);
    return out;
  }

  it('gives the same client the same target', () => {
    const ts = [target(1), target(2), target(3)];
    const b = new IpHashBalancer();
    b.setTargets(ts, weightsOf(ts));
    const first = b.pick(ts, { clientAddress: '192.168.7.9' });
    for (let i = 0; i < 100; i++) assert.equal(b.pick(ts, { clientAddress: '192.168.7.9' }), first);
    const again = new IpHashBalancer();
    again.setTargets(ts);
    assert.equal(again.pick(ts, { clientAddress: '192.168.7.9' }), first);
  });

  it('spreads clients roughly evenly', () => {
    const ts = [target(1), target(2), target(3)];
    const b = new IpHashBalancer();
    b.setTargets(ts, weightsOf(ts));
    const got = owners(b, ts);
    for (const t of ts) {
      const share = got.filter((p) => p === t.port).length / N;
      assert.ok(share >= 0.2 && share <= 0.47, `target ${t.port} share ${share}`);
    }
  });

  it('moves only the removed target’s clients', () => {
    const ts = [target(1), target(2), target(3)];
    const b = new IpHashBalancer();
    b.setTargets(ts, weightsOf(ts));
    const before = owners(b, ts);
    const rest = [ts[0]!, ts[2]!];
    b.setTargets(rest);
    const after = owners(b, rest);
    let moved = 0;
    for (let i = 0; i < N; i++) {
      if (before[i] !== 2 && after[i] !== before[i]) moved++;
      assert.notEqual(after[i], 2);
    }
    assert.equal(moved, 0);
  });

  it('sends an unhealthy target’s clients elsewhere and leaves the rest', () => {
    const ts = [target(1), target(2), target(3)];
    const b = new IpHashBalancer();
    b.setTargets(ts, weightsOf(ts));
    const before = owners(b, ts);
    const healthy = [ts[0]!, ts[2]!];
    const during = owners(b, healthy);
    let moved = 0;
    let rerouted = 0;
    for (let i = 0; i < N; i++) {
      if (before[i] === 2) {
        assert.notEqual(during[i], 2);
        rerouted++;
      } else if (during[i] !== before[i]) moved++;
    }
    assert.equal(moved, 0);
    assert.ok(rerouted > 0);
    // Back to healthy: everyone returns to where they were.
    assert.deepEqual(owners(b, ts), before);
  });

  it('treats IPv4-mapped IPv6 as the IPv4 address', () => {
    const ts = [target(1), target(2), target(3), target(4), target(5)];
    const b = new IpHashBalancer();
    b.setTargets(ts, weightsOf(ts));
    for (let i = 0; i < 200; i++) {
      const plain = b.pick(ts, { clientAddress: ip(i * 7919) });
      assert.equal(b.pick(ts, { clientAddress: `::ffff:${ip(i * 7919)}` }), plain);
      assert.equal(b.pick(ts, { clientAddress: `::FFFF:${ip(i * 7919)}` }), plain);
    }
  });

  it('weights the ring', () => {
    const ts = [target(1, 3), target(2, 1)];
    const b = new IpHashBalancer();
    b.setTargets(ts, weightsOf(ts));
    const share = owners(b, ts).filter((p) => p === 1).length / N;
    assert.ok(share > 0.65 && share < 0.85, `share ${share}`);
  });
});
