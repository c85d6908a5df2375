/** Peak-EWMA (src/upstream/target.ts) and the least-time balancer, on the injected clock. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { createBalancer, LeastTimeBalancer } from '../../src/upstream/balancers.js';
import { PeakEwma, Target } from '../../src/upstream/target.js';

const ctx = { clientAddress: '10.0.0.1' };
const target = (clock: ManualClock, port: number): Target => new Target({ address: `127.0.0.1:${port}`, host: '127.0.0.1', port }, clock);

describe('PeakEwma', () => {
  it('jumps to a higher sample at once and takes lower ones in by the time since the last', () => {
    const e = new PeakEwma(10_000);
    assert.equal(e.at(0), 0);
    e.observe(10, 0);
    assert.equal(e.at(0), 10);
    e.observe(50, 0);
    assert.equal(e.at(0), 50, 'a peak is taken whole');
    e.observe(1, 0);
    assert.equal(e.at(0), 50, 'a lower sample at the same instant does not lower it');
    const before = e.at(10_000);
    assert.ok(Math.abs(before - 50 / Math.E) < 1e-9, `decays with the time constant (${before})`);
    e.observe(1, 10_000);
    const after = e.at(10_000);
    assert.ok(after < before && after > 1, `a lower sample pulls it part of the way (${before} -> ${after})`);
    assert.equal(e.samples, 4);
  });

  it('decays toward zero with no samples, so a target left alone is probed again', () => {
    const e = new PeakEwma(10_000);
    e.observe(50, 1000);
    assert.ok(e.at(1000 + 100_000) < 0.01);
  });
});

describe('LeastTimeBalancer', () => {
  it('createBalancer builds it', () => {
    assert.ok(createBalancer('least-time') instanceof LeastTimeBalancer);
  });

  it('with no samples goes round-robin; then the lowest latency times (active + dialing + 1) wins', () => {
    const clock = new ManualClock();
    const [a, b] = [target(clock, 1), target(clock, 2)];
    const lt = new LeastTimeBalancer();
    lt.setTargets([a, b]);
    assert.deepEqual([1, 2, 3, 4].map(() => lt.pick([a, b], ctx).port), [1, 2, 1, 2]);
    a.sample('connect', 2);
    b.sample('connect', 5);
    assert.equal(lt.pick([a, b], ctx), a);
    a.active = 2; // 2 × 3 = 6 > 5 × 1
    assert.equal(lt.pick([a, b], ctx), b);
    b.dialing = 1; // 5 × 2 = 10 > 6
    assert.equal(lt.pick([a, b], ctx), a);
  });

  it('adds the time to the first byte to the connect time', () => {
    const clock = new ManualClock();
    const [a, b] = [target(clock, 1), target(clock, 2)];
    const lt = new LeastTimeBalancer();
    lt.setTargets([a, b]);
    a.sample('connect', 1);
    b.sample('connect', 3);
    a.sample('firstByte', 10);
    assert.equal(lt.pick([a, b], ctx), b);
  });

  it('divides by the weight', () => {
    const clock = new ManualClock();
    const [a, b] = [target(clock, 1), target(clock, 2)];
    const lt = new LeastTimeBalancer();
    lt.setTargets([a, b], [1, 4]);
    a.sample('connect', 2);
    b.sample('connect', 6); // 6 / 4 = 1.5 < 2
    assert.equal(lt.pick([a, b], ctx), b);
    b.active = 1; // 6 × 2 / 4 = 3 > 2
    assert.equal(lt.pick([a, b], ctx), a);
  });

  it('keeps new dials off an unmeasured target while its first dial is in flight', () => {
    const clock = new ManualClock();
    const [a, b] = [target(clock, 1), target(clock, 2)];
    const lt = new LeastTimeBalancer();
    lt.setTargets([a, b]);
    a.sample('connect', 40);
    b.dialing = 1;
    assert.equal(lt.pick([a, b], ctx), a);
  });

  it('avoids a target from its first slow sample and returns to it as its estimate decays', () => {
    const clock = new ManualClock();
    const [a, b] = [target(clock, 1), target(clock, 2)];
    const lt = new LeastTimeBalancer();
    lt.setTargets([a, b]);
    a.sample('connect', 1);
    b.sample('connect', 51);
    const picks: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = lt.pick([a, b], ctx);
      picks.push(t.port);
      t.sample('connect', t === a ? 1 : 1); // b has recovered, but nobody knows yet
      clock.advance(100);
    }
    assert.deepEqual(picks, new Array(20).fill(1), 'the slow target gets nothing for 2 s');
    clock.advance(60_000);
    const later: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = lt.pick([a, b], ctx);
      later.push(t.port);
      t.sample('connect', 1);
      clock.advance(1000);
    }
    assert.ok(later.filter((p) => p === 2).length >= 4, `back on the recovered target (${later.join(',')})`);
  });
});
