/**
 * Peak rates and guaranteed minimums in the scheduler, on the manual clock: bytes are counted per
 * virtual interval, no test sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock } from '../../src/clock.js';
import { ManualClock } from '../../src/clock.js';
import { peakBurstFor, peakGateFor } from '../../src/shaping/grants.js';
import { Scheduler, SchedNode } from '../../src/shaping/scheduler.js';
import { FakeLeaf, run, setup } from './fake-leaf.js';
import { jain, maxInWindow } from './measure.js';

const MB = 1_000_000;

/** Bytes a leaf sent in [from, to) ms after `t0`. */
function sentBetween(log: [number, number][], t0: number, from: number, to: number): number {
  let sum = 0;
  for (const [at, n] of log) if (at >= t0 + from && at < t0 + to) sum += n;
  return sum;
}

const within = (got: number, want: number, tolerance: number, what: string): void => {
  assert.ok(Math.abs(got - want) <= want * tolerance, `${what}: ${got} vs ${want} (${(((got - want) / want) * 100).toFixed(2)} %)`);
};

/** A greedy leaf under the root with a rate of 1 MB/s, a burst of 4 MB and a peak of 4 MB/s, attached now (t0). */
function peakLeaf(clock: ManualClock, sched: Scheduler) {
  const leaf = new FakeLeaf(clock, sched);
  const n = new SchedNode('leaf', leaf);
  leaf.node = n;
  sched.setLimits(n, 1 * MB, 4 * MB, 4 * MB, peakBurstFor(4 * MB));
  const t0 = clock.now();
  sched.attach(n, sched.root);
  return { leaf, t0, rate: 1 * MB, burst: 4 * MB, peak: 4 * MB };
}

/** Never above the peak by more than the peak bucket, in any window. */
function neverOverPeak(log: [number, number][], peak: number): void {
  for (const w of [1, 10, 50, 100, 500, 1000]) {
    assert.ok(maxInWindow(log, w) <= (peak * w) / 1000 + peakBurstFor(peak), `peak window ${w} ms: ${maxInWindow(log, w)}`);
  }
}

test('peak: a full bucket drains at the peak rate while the burst lasts, then at the base rate', () => {
  const { clock, sched } = setup();
  const { leaf, t0, rate, burst, peak } = peakLeaf(clock, sched);
  run(clock, 6000);
  // The burst of credit lasts burst / (peak - rate) = 1.33 s: at the peak, in every 100 ms (give or
  // take one of run()'s steps of up to 13 ms, whose grants land at once), and within 1 % over it.
  for (let at = 100; at < 1200; at += 100) within(sentBetween(leaf.log, t0, at, at + 100), peak / 10, 0.15, `at ${at} ms (burst)`);
  within(sentBetween(leaf.log, t0, 100, 1200), peak * 1.1, 0.01, 'the burst, 100-1200 ms');
  // Then the base rate, per second.
  for (let at = 2000; at < 6000; at += 1000) within(sentBetween(leaf.log, t0, at, at + 1000), rate, 0.02, `at ${at} ms (base)`);
  // Never above the peak by more than the peak bucket, in any window; never above rate × w + burst.
  neverOverPeak(leaf.log, peak);
  assert.ok(leaf.sent <= rate * 6 + burst, `total ${leaf.sent}`);
});

test('peak: a flow held up by late timers (a busy CPU) catches up to its peak, by no more than the peak bucket', () => {
  const clock = new ManualClock(1000);
  // Every timer of the scheduler fires 30 ms after it is due: three times the grant step under the peak.
  const busy: Clock = { now: () => clock.now(), setTimer: (ms, fn) => clock.setTimer(ms + 30, fn) };
  const { leaf, t0, rate, peak } = peakLeaf(clock, new Scheduler(busy));
  run(clock, 4000);
  // 30 ms late is 120 kB of the peak: more than a grant step (PEAK_GATE_MS), less than the peak bucket.
  assert.ok(peakGateFor(peak) < (peak * 30) / 1000 && (peak * 30) / 1000 < peakBurstFor(peak));
  within(sentBetween(leaf.log, t0, 100, 1200), peak * 1.1, 0.02, 'the burst, 100-1200 ms, 30 ms late timers');
  within(sentBetween(leaf.log, t0, 2000, 4000), rate * 2, 0.02, 'base, 2-4 s');
  neverOverPeak(leaf.log, peak);
});

test('peak: without one, a full bucket goes out as fast as the parent allows (the line-rate spike it prevents)', () => {
  const { clock, sched, node } = setup();
  const leaf = new FakeLeaf(clock, sched);
  const n = node('leaf', sched.root, 1 * MB, 4 * MB, leaf);
  leaf.node = n;
  assert.equal(n.peak, null);
  const t0 = clock.now();
  sched.wake(n);
  run(clock, 100);
  assert.ok(sentBetween(leaf.log, t0, 0, 100) >= 4 * MB, `sent ${leaf.sent} in the first 100 ms`);
});

test('peak at a shared node: its connections share the peak fairly, then the base rate; removing it restores the plain bucket', () => {
  const { clock, sched, node, leafUnder } = setup();
  const rate = 2 * MB;
  const peak = 6 * MB;
  const customer = node('cust', sched.root);
  sched.setLimits(customer, rate, 6 * MB, peak, peakBurstFor(peak));
  const leaves = [leafUnder(customer), leafUnder(customer), leafUnder(customer)];
  const t0 = clock.now();
  run(clock, 6000);
  const all = leaves.flatMap((l) => l.leaf.log).sort((a, b) => a[0] - b[0]);
  // The burst lasts 6 MB / 4 MB/s = 1.5 s.
  within(sentBetween(all, t0, 100, 1400), peak * 1.3, 0.02, 'the burst, 100-1400 ms');
  within(sentBetween(all, t0, 2000, 6000), rate * 4, 0.02, 'base, 2-6 s');
  assert.ok(jain(leaves.map((l) => l.leaf.sent)) >= 0.99, 'fair shares');
  assert.ok(customer.peak !== null);
  sched.setLimits(customer, rate, 6 * MB);
  assert.equal(customer.peak, null);
  assert.equal(customer.gate, 6 * MB);
});

test('peak on the global bucket and a tier at once: the lower of each level holds', () => {
  const { clock, sched, node, leafUnder } = setup();
  sched.setLimits(sched.root, 8 * MB, 8 * MB, 5 * MB, peakBurstFor(5 * MB));
  const tier = node('tier', sched.root);
  sched.setLimits(tier, 4 * MB, 4 * MB, 6 * MB, peakBurstFor(6 * MB));
  const { leaf } = leafUnder(tier);
  const t0 = clock.now();
  run(clock, 4000);
  // global's peak (5) is below the tier's (6): 5 MB/s while the tier's 4 MB of credit last (4 MB / 1 MB/s = 4 s).
  within(sentBetween(leaf.log, t0, 100, 3000), 5 * MB * 2.9, 0.02, 'under both peaks');
});

/** Three tiers under a 10 MB/s global: weights 1, 4, 5; `a` has a minimum. */
function tiersUnderGlobal(minA: number, totalA = Infinity) {
  const s = setup();
  const { sched, node, leafUnder } = s;
  sched.setLimits(sched.root, 10 * MB, 500_000);
  const a = node('a', sched.root, totalA, 200_000);
  a.weight = 1;
  sched.setMin(a, minA, 200_000);
  const b = node('b', sched.root);
  b.weight = 4;
  const c = node('c', sched.root);
  c.weight = 5;
  const under = (tier: typeof a) => [leafUnder(tier), leafUnder(tier)];
  return { ...s, a, b, c, leaves: { a: under(a), b: under(b), c: under(c) } };
}

const total = (xs: { leaf: FakeLeaf }[]): number => xs.reduce((sum, x) => sum + x.leaf.sent, 0);

/** Each tier's rate (bytes/s) over `seconds` after a warm-up second. */
function rates(t: ReturnType<typeof tiersUnderGlobal>, seconds: number) {
  run(t.clock, 1000);
  const before = { a: total(t.leaves.a), b: total(t.leaves.b), c: total(t.leaves.c) };
  run(t.clock, seconds * 1000);
  return {
    a: (total(t.leaves.a) - before.a) / seconds,
    b: (total(t.leaves.b) - before.b) / seconds,
    c: (total(t.leaves.c) - before.c) / seconds,
  };
}

test('min: a busy tier gets its minimum under contention with heavier tiers, then the rest is shared by weight', () => {
  // Without a minimum, weight 1 of 10 gets 1 MB/s.
  const plain = rates(tiersUnderGlobal(0), 5);
  within(plain.a, 1 * MB, 0.02, 'a without min');
  // With 3 MB/s guaranteed: 3 + 7 × 1/10 = 3.7; b 7 × 4/10 = 2.8; c 7 × 5/10 = 3.5.
  const t = tiersUnderGlobal(3 * MB);
  const r = rates(t, 5);
  assert.ok(r.a >= 3 * MB * 0.98, `a ${r.a} under its min`);
  within(r.a, 3.7 * MB, 0.02, 'a');
  within(r.b, 2.8 * MB, 0.02, 'b');
  within(r.c, 3.5 * MB, 0.02, 'c');
  // Per 100 ms too: the minimum holds in every interval, not only on average.
  const t0 = t.clock.now();
  run(t.clock, 2000);
  const logA = t.leaves.a.flatMap((l) => l.leaf.log).sort((x, y) => x[0] - y[0]);
  for (let at = 0; at < 2000; at += 100) assert.ok(sentBetween(logA, t0, at, at + 100) >= 300_000 * 0.95, `a at ${at} ms`);
});

test('min: a tier is never above its own total, and an idle tier reserves nothing', () => {
  const capped = rates(tiersUnderGlobal(2 * MB, 2 * MB), 5);
  within(capped.a, 2 * MB, 0.02, 'a capped at its total');
  within(capped.b, 8 * MB * (4 / 9), 0.02, 'b');
  within(capped.c, 8 * MB * (5 / 9), 0.02, 'c');

  const t = tiersUnderGlobal(3 * MB);
  for (const l of t.leaves.a) t.sched.detach(l.node);
  const idle = rates(t, 5);
  assert.equal(idle.a, 0);
  within(idle.b, 10 * MB * (4 / 9), 0.02, 'b with a idle');
  within(idle.c, 10 * MB * (5 / 9), 0.02, 'c with a idle');
});

test('min: two tiers with minimums both get them; removing a minimum restores the weights', () => {
  const t = tiersUnderGlobal(2 * MB);
  t.sched.setMin(t.b, 5 * MB, 200_000);
  // a: 2 + 3/10 = 2.3, b: 5 + 3 × 4/10 = 6.2, c: 3 × 5/10 = 1.5
  const r = rates(t, 5);
  within(r.a, 2.3 * MB, 0.02, 'a');
  within(r.b, 6.2 * MB, 0.02, 'b');
  within(r.c, 1.5 * MB, 0.02, 'c');
  t.sched.setMin(t.a, 0, 0);
  t.sched.setMin(t.b, Infinity, 0);
  assert.equal(t.sched.root.minKids, null);
  const back = rates(t, 5);
  within(back.a, 1 * MB, 0.02, 'a');
  within(back.b, 4 * MB, 0.02, 'b');
});

test('min: a tier moved or detached leaves its old parent\'s list of minimums', () => {
  const { sched, node } = setup();
  const other = node('other', sched.root);
  const a = node('a', sched.root);
  sched.setMin(a, MB, 100_000);
  assert.deepEqual(sched.root.minKids, [a]);
  sched.attach(a, other);
  assert.equal(sched.root.minKids, null);
  assert.deepEqual(other.minKids, [a]);
  sched.detach(a);
  assert.equal(other.minKids, null);
});

test('the shaper gives each level its peak and each tier its minimum from the config, live, and scales them by a fleet share', async () => {
  const { ManualClock } = await import('../../src/clock.js');
  const { parseConfig } = await import('../../src/config/load.js');
  const { Shaper } = await import('../../src/shaping/shaper.js');
  const raw = (minDown: string) => ({
    apps: [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }],
    global: { down: '80mbit', peak: '160mbit' },
    tiers: {
      business: { weight: 1, connection: { down: '1MiB/s', burst: '4MB', peak: '8MiB/s' }, total: { down: '40mbit', min: { down: minDown } } },
      home: { weight: 9 },
    },
    defaultTier: 'home',
    customers: [{ id: 'acme', tier: 'business', match: { sources: ['10.0.0.0/8'] } }],
  });
  const clock = new ManualClock(1000);
  const s = new Shaper(parseConfig(raw('20mbit'), {}), clock);
  const down = s.schedulers.down;
  const business = s.tiers.get('business')!.nodes.down;
  assert.equal(down.root.peak!.rate, 20e6);
  assert.equal(down.root.peak!.bucketSize, Math.ceil(peakBurstFor(20e6)));
  assert.deepEqual(down.root.minKids, [business]);
  assert.equal(business.min!.rate, 2.5e6);
  assert.equal(s.schedulers.up.root.minKids, null, 'no minimum upwards');
  const sc = await s.admit({ clientAddress: '10.1.2.3', app: 'web', port: 1 });
  assert.ok(sc && typeof sc !== 'string');
  const flows = s.stages(sc, 'conn:1');
  assert.equal(flows.down.node.peak!.rate, 8 * MB * 1.048576);
  assert.equal(flows.down.node.peak!.bucketSize, Math.ceil(peakBurstFor(8 * MB * 1.048576)), 'the peak bucket holds PEAK_CATCHUP_MS of the peak');
  assert.equal(flows.down.node.gate, peakGateFor(8 * MB * 1.048576), 'grants are sized by PEAK_GATE_MS of the peak');
  assert.equal(flows.up.node.peak, null);
  // A reload that changes the minimum reaches the live node; one that drops it, the list.
  s.apply(parseConfig(raw('30mbit'), {}));
  assert.equal(business.min!.rate, 3.75e6);
  const { tiers } = parseConfig(raw('30mbit'), {});
  s.setTier({ ...tiers['business']!, total: { down: 5e6, up: Infinity } });
  assert.equal(business.min, null);
  assert.equal(down.root.minKids, null);
  s.setTier(tiers['business']!);
  s.setShare({ level: 'tier', name: 'business', dir: 'down', key: 'tier:business:down' }, 0.5);
  assert.equal(business.min!.rate, 3.75e6 / 2);
  s.release(sc);
  s.stop();
});
