/**
 * The log lines an operator reads: the close line's fields, and at debug level why a connection got
 * its customer and why the balancer chose its target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { app, captureLogger, config, roundTrip, startBackend, startProxy, tier, pattern, waitFor } from '../helpers.js';

test('the close line names the port, the dial attempts, connect and first-byte times, the shaping wait and the instance', async (t) => {
  const good = await startBackend('collect');
  const dead = await startBackend('collect');
  const deadAddress = dead.address;
  await dead.close(); // refused: the dial fails over to the good one
  const { log, lines } = captureLogger();
  const cfg = config([app('web', [deadAddress, good.address], { balance: 'round-robin' })], { tiers: { free: tier('free', { connection: { down: 10_000_000, up: 10_000_000 } }) }, defaultTier: 'free' });
  const proxy = await startProxy(cfg, [good], log);
  t.after(async () => {
    await proxy.stop();
    await good.close();
  });
  const port = proxy.portOf('web');
  await roundTrip(port, pattern(2000));
  await waitFor(() => lines.some((l) => l['msg'] === 'connection closed'), 3000, 'the close line');
  const closed = lines.find((l) => l['msg'] === 'connection closed')!;
  assert.equal(closed['port'], port);
  assert.equal(closed['dialAttempts'], 2, 'the refused target, then the good one');
  assert.equal(typeof closed['connectMs'], 'number');
  assert.equal(typeof closed['firstByteMs'], 'number');
  assert.equal(typeof closed['shapingWaitMs'], 'number');
  assert.equal(closed['instance'], hostname());
  assert.equal(closed['reason'], 'done');
});

test('--log-level debug explains the customer matching and the balancer\'s choice', async (t) => {
  const backend = await startBackend('collect');
  const { log, lines } = captureLogger('debug');
  const cfg = config([app('web', [backend.address], { balance: 'least-conn' })], {
    tiers: { gold: tier('gold'), free: tier('free') },
    customers: [
      { id: 'office', tier: 'gold', match: { sources: ['10.0.0.0/8'] } },
      { id: 'shop', tier: 'gold', match: { apps: ['other'] } },
    ],
    defaultTier: 'free',
  });
  const proxy = await startProxy(cfg, [backend], log);
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  await roundTrip(proxy.portOf('web'), Buffer.from('x'));
  await waitFor(() => lines.some((l) => l['msg'] === 'connection closed'), 3000, 'the close line');
  const matching = lines.find((l) => l['msg'] === 'customer matching')!;
  assert.deepEqual(matching['skipped'], ['office: source not in its sources', 'shop: app not in its apps']);
  assert.equal(matching['matched'], null);
  assert.equal(matching['customer'], '127.0.0.1');
  assert.equal(matching['tier'], 'free');
  assert.match(String(matching['why']), /defaultTier/);
  const choice = lines.find((l) => l['msg'] === 'balancer choice')!;
  assert.equal(choice['balance'], 'least-conn');
  assert.equal(choice['picked'], backend.address);
  assert.deepEqual(choice['candidates'], [{ target: backend.address, health: 'healthy', active: 0, weight: 1 }]);
});

test('at info level neither debug line is written', async (t) => {
  const backend = await startBackend('collect');
  const { log, lines } = captureLogger('info');
  const proxy = await startProxy(config([app('web', [backend.address])], { tiers: { free: tier('free') }, defaultTier: 'free' }), [backend], log);
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  await roundTrip(proxy.portOf('web'), Buffer.from('x'));
  await waitFor(() => lines.some((l) => l['msg'] === 'connection closed'), 3000, 'the close line');
  assert.ok(!lines.some((l) => l['msg'] === 'customer matching' || l['msg'] === 'balancer choice'));
});
