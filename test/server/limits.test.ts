import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { AcceptPause, SourceLimits, sourceKey } from '../../src/server/limits.js';

test('no limits configured: everything is admitted and state is dropped on release', () => {
  const l = new SourceLimits(undefined, new ManualClock());
  for (let i = 0; i < 1000; i++) assert.equal(l.admit('10.0.0.1'), null);
  assert.equal(l.total, 1000);
  for (let i = 0; i < 1000; i++) l.release('10.0.0.1');
  assert.equal(l.total, 0);
  assert.equal(l.sources, 0);
});

test('perSource.maxConnections refuses the excess of one source only, until one closes', () => {
  const l = new SourceLimits({ perSource: { maxConnections: 2 } }, new ManualClock());
  assert.equal(l.admit('10.0.0.1'), null);
  assert.equal(l.admit('::ffff:10.0.0.1'), null); // same source, IPv4-mapped
  assert.equal(l.admit('10.0.0.1'), 'source_connections');
  assert.equal(l.admit('10.0.0.2'), null);
  assert.equal(l.connectionsOf('10.0.0.1'), 2);
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.1'), null);
  assert.equal(l.total, 3);
});

test('perSource.acceptRate is a token bucket: a burst of `count`, then count per `per`', () => {
  const clock = new ManualClock(1000);
  const l = new SourceLimits({ perSource: { acceptRate: { count: 5, per: 1000 } } }, clock);
  const admitRelease = (a: string) => {
    const r = l.admit(a);
    if (r === null) l.release(a);
    return r;
  };
  for (let i = 0; i < 5; i++) assert.equal(admitRelease('10.0.0.1'), null);
  assert.equal(admitRelease('10.0.0.1'), 'source_rate');
  assert.equal(admitRelease('10.0.0.2'), null, 'other sources have their own bucket');
  clock.advance(199);
  assert.equal(admitRelease('10.0.0.1'), 'source_rate');
  clock.advance(1); // 200 ms = one token
  assert.equal(admitRelease('10.0.0.1'), null);
  assert.equal(admitRelease('10.0.0.1'), 'source_rate');
  // Over 10 s at most 5 + 50 get in however hard a source tries.
  let ok = 0;
  for (let ms = 0; ms < 10_000; ms += 10) {
    clock.advance(10);
    for (let k = 0; k < 3; k++) if (admitRelease('10.0.0.3') === null) ok++;
  }
  assert.ok(ok <= 55 && ok >= 50, `admitted ${ok}`);
});

test('global maxConnections refuses any source beyond the total', () => {
  const l = new SourceLimits({ perSource: {}, maxConnections: 3 }, new ManualClock());
  assert.equal(l.admit('10.0.0.1'), null);
  assert.equal(l.admit('10.0.0.2'), null);
  assert.equal(l.admit('10.0.0.3'), null);
  assert.equal(l.admit('10.0.0.4'), 'global_connections');
  l.release('10.0.0.2');
  assert.equal(l.admit('10.0.0.4'), null);
});

test('a refused connection consumes nothing (no token, no slot)', () => {
  const clock = new ManualClock();
  const l = new SourceLimits({ perSource: { maxConnections: 1, acceptRate: { count: 2, per: 1000 } } }, clock);
  assert.equal(l.admit('a'), null);
  for (let i = 0; i < 10; i++) assert.equal(l.admit('a'), 'source_connections');
  l.release('a');
  assert.equal(l.admit('a'), null, 'the second token is still there');
});

test('per-source state is swept once a source is idle: no unbounded growth', () => {
  const clock = new ManualClock();
  const l = new SourceLimits({ perSource: { maxConnections: 10, acceptRate: { count: 2, per: 1000 } } }, clock);
  for (let i = 0; i < 10_000; i++) {
    const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    assert.equal(l.admit(a), null);
    l.release(a);
    if (l.shouldLog(a) === null) assert.fail('first refusal of a source is logged');
  }
  assert.equal(l.sources, 10_000, 'buckets not yet refilled are kept');
  clock.advance(1_000);
  l.sweep();
  assert.equal(l.sources, 0);
  clock.advance(10_000);
  assert.equal(l.admit('10.0.0.1'), null, 'admit sweeps by itself');
  assert.equal(l.logMarks, 0);
  assert.equal(l.sources, 1);
  l.release('10.0.0.1');
  clock.advance(1_000);
  l.sweep();
  assert.equal(l.sources, 0);
});

test('refusals are logged at most once per source per 10 s, with the count suppressed', () => {
  const clock = new ManualClock();
  const l = new SourceLimits({ perSource: { maxConnections: 1 } }, clock);
  assert.deepEqual(l.shouldLog('a'), { suppressed: 0 });
  assert.equal(l.shouldLog('a'), null);
  assert.equal(l.shouldLog('a'), null);
  assert.deepEqual(l.shouldLog('b'), { suppressed: 0 });
  clock.advance(9_999);
  assert.equal(l.shouldLog('a'), null);
  clock.advance(1);
  assert.deepEqual(l.shouldLog('a'), { suppressed: 3 });
});

test('reconfigure keeps the open counts', () => {
  const l = new SourceLimits(undefined, new ManualClock());
  assert.equal(l.admit('a'), null);
  assert.equal(l.admit('a'), null);
  l.configure({ perSource: { maxConnections: 2 } });
  assert.equal(l.admit('a'), 'source_connections');
  l.configure({ perSource: {}, maxConnections: 2 });
  assert.equal(l.admit('b'), 'global_connections');
});

test('sourceKey folds IPv4-mapped IPv6 addresses', () => {
  assert.equal(sourceKey('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(sourceKey('::1'), '::1');
  assert.equal(sourceKey(undefined), '');
});

test('AcceptPause: 100 ms doubling to 2 s, resumes by itself, resets after a calm spell', () => {
  const clock = new ManualClock();
  let resumed = 0;
  const p = new AcceptPause(clock, () => resumed++);
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    const r = p.exhausted();
    assert.ok(r);
    assert.equal(r.firstOfEpisode, i === 0);
    assert.equal(p.exhausted(), null, 'already paused');
    assert.ok(p.paused);
    delays.push(r.ms);
    clock.advance(r.ms - 1);
    assert.ok(p.paused);
    clock.advance(1);
    assert.ok(!p.paused);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
  assert.equal(resumed, 7);
  clock.advance(4_000); // calm
  const r = p.exhausted();
  assert.deepEqual(r, { ms: 100, firstOfEpisode: true });
  p.stop();
  assert.ok(!p.paused);
  assert.equal(clock.pendingTimers, 0);
});

test('descriptorBudget: two descriptors per connection, what is open already and a spare of 1 % (at least 16) left out', async () => {
  const { descriptorBudget, descriptorUse } = await import('../../src/server/limits.js');
  assert.equal(descriptorBudget({ limit: 64, open: 20 }), 14);
  assert.equal(descriptorBudget({ limit: 20_000, open: 20 }), 9890);
  assert.equal(descriptorBudget({ limit: 65_536, open: 30 }), 32_425);
  assert.equal(descriptorBudget({ limit: 32, open: 20 }), 0);
  const use = descriptorUse();
  if (process.platform === 'linux') assert.ok(use && use.limit > 0 && use.open > 0 && use.open <= use.limit, JSON.stringify(use));
});

test('SourceLimits.budget refuses as resource_exhausted once that many are open, until one closes', () => {
  const l = new SourceLimits(undefined, new ManualClock());
  l.budget = 2;
  assert.equal(l.admit('10.0.0.1'), null);
  assert.equal(l.admit('10.0.0.2'), null);
  assert.equal(l.admit('10.0.0.3'), 'resource_exhausted');
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.3'), null);
});
