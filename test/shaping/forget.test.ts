/**
 * Per-address customers (defaultTier) are forgotten once they have no connection and would come
 * back exactly as new, so the shaper's memory follows the open connections, not every source
 * ever seen. Manual clock: Shaper.forgetIdle is what the proxy's housekeeping runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { Shaper, type ShapedConnection } from '../../src/shaping/shaper.js';

function shaper(free: Record<string, unknown>) {
  const config = parseConfig({ apps: [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }], tiers: { free }, defaultTier: 'free', customers: [{ id: 'acme', tier: 'free', match: { sources: ['10.9.0.0/16'] } }] }, {});
  const clock = new ManualClock(1000);
  return { clock, shaper: new Shaper(config, clock) };
}

async function admit(s: Shaper, clientAddress: string): Promise<ShapedConnection | 'rejected'> {
  const sc = await s.admit({ clientAddress, app: 'web', port: 1 });
  assert.ok(sc !== null && sc !== 'quota_exceeded');
  return sc;
}

test('without a connectionRate, a source\'s customer is forgotten as soon as its last connection closed', async () => {
  const { shaper: s } = shaper({ connection: { down: '1MiB/s' }, maxConnections: 2 });
  const open: ShapedConnection[] = [];
  for (let i = 0; i < 100; i++) {
    const sc = await admit(s, `127.1.0.${i}`);
    assert.ok(sc !== 'rejected');
    s.stages(sc, `conn:${i}`);
    open.push(sc);
  }
  assert.equal(s.customers.size, 101, 'acme (configured) and one per source');
  assert.equal(s.forgetIdle(), 0, 'every source still has a connection');
  for (const sc of open.slice(0, 60)) s.release(sc);
  assert.equal(s.forgetIdle(), 60);
  assert.equal(s.customers.size, 41);
  assert.ok(s.customers.has('acme'), 'configured customers stay');
  for (const sc of open.slice(60)) s.release(sc);
  s.forgetIdle();
  assert.deepEqual([...s.customers.keys()], ['acme']);
  for (const d of ['up', 'down'] as const) assert.equal(s.tiers.get('free')!.nodes[d].ringCount, 0);
});

test('a customer still in admission or dialing (no flows yet) is not forgotten', async () => {
  const { shaper: s } = shaper({ maxConnections: 1 });
  const sc = await admit(s, '127.1.0.1');
  assert.ok(sc !== 'rejected');
  assert.equal(s.forgetIdle(), 0);
  // The limit still counts it: a second connection from the same source is refused.
  assert.equal(await admit(s, '127.1.0.1'), 'rejected');
  s.stages(sc, 'conn:1');
  s.release(sc);
  assert.equal(s.forgetIdle(), 1);
  assert.notEqual(await admit(s, '127.1.0.1'), 'rejected', 'a new customer, a new limit');
});

test('with a connectionRate, the customer is kept for one window after its last admission or close', async () => {
  const { clock, shaper: s } = shaper({ connectionRate: '2/s' });
  const a = await admit(s, '127.1.0.1');
  const b = await admit(s, '127.1.0.1');
  assert.ok(a !== 'rejected' && b !== 'rejected');
  s.release(a);
  s.release(b);
  clock.advance(400);
  assert.equal(s.forgetIdle(), 0, 'closing and reopening must not reset the rate');
  assert.equal(await admit(s, '127.1.0.1'), 'rejected', '0.8 of a token refilled');
  clock.advance(999);
  assert.equal(s.forgetIdle(), 0);
  clock.advance(1);
  assert.equal(s.forgetIdle(), 1);
  assert.equal(s.customers.size, 1);
});

test('admission limits: maxConnections counts open connections, connectionRate is a token bucket on the clock', async () => {
  const { clock, shaper: s } = shaper({ maxConnections: 2, connectionRate: '3/s' });
  const ok = async (): Promise<ShapedConnection> => {
    const sc = await admit(s, '127.1.0.9');
    assert.ok(sc !== 'rejected');
    return sc;
  };
  const a = await ok();
  const b = await ok();
  assert.equal(await admit(s, '127.1.0.9'), 'rejected', 'maxConnections 2 (no token is spent on a refusal)');
  s.release(a);
  await ok(); // a released slot is free again; the third token
  s.release(b);
  assert.equal(await admit(s, '127.1.0.9'), 'rejected', 'a slot is free, but the 3 tokens are spent');
  clock.advance(334);
  await ok(); // one token back after a third of a second
  s.release(a); // a second release of the same connection gives nothing back
  clock.advance(1000);
  assert.equal(await admit(s, '127.1.0.9'), 'rejected', 'tokens again, but 2 connections are open');
});
