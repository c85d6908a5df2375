/**
 * /stats' binding caps (src/observe/view.ts): what a tier can move now is the least of its total,
 * the global cap, and its customers' reach (each customer: its cap, or the connection cap × its
 * connections, whichever is less); with no connection open, what a first one could move.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { app, backendFor, cleanup, config, proxyFor, tier, waitFor } from '../helpers.js';
import type { StatsDocument } from '../../src/observe/stats-document.js';

const U = Infinity;

test('a tier is drawn against the cap that binds: its customers\' reach, the global cap, or its total', async (t) => {
  const backend = await backendFor(t, 'collect');
  const free = tier('free', { connection: { down: 100_000, up: U }, customer: { down: 150_000, up: U }, total: { down: 1_000_000, up: U } });
  const cfg = config([app('web', [backend.address])], { admin: { host: '127.0.0.1', port: 0 }, tiers: { free }, defaultTier: 'free' });
  const proxy = await proxyFor(t, cfg, { backends: [backend] });
  const tierStats = async () => ((await (await fetch(`http://127.0.0.1:${proxy.adminPort}/stats`)).json()) as StatsDocument).tiers[0]!;

  assert.deepEqual((await tierStats()).bindingDown, { cap: 100_000, by: 'customers' }, 'no connection: what a first one could move');
  assert.deepEqual((await tierStats()).bindingUp, { cap: null, by: 'none' });

  // Customer 127.0.0.1 with one connection (100 kB/s: the connection cap), 127.0.0.2 with two
  // (150 kB/s: its customer cap, under 2 × 100): 250 kB/s, under the total.
  const sockets: net.Socket[] = [];
  for (const localAddress of ['127.0.0.1', '127.0.0.2', '127.0.0.2']) {
    const s = net.connect({ port: proxy.portOf('web'), host: '127.0.0.1', localAddress });
    s.on('error', () => {});
    sockets.push(s);
  }
  cleanup(t, () => sockets.forEach((s) => s.destroy()));
  await waitFor(async () => (await tierStats()).connections === 3, 3000, 'three connections in the tier');
  const s = await tierStats();
  assert.equal(s.activeCustomers, 2);
  assert.deepEqual(s.bindingDown, { cap: 250_000, by: 'customers' });
  assert.deepEqual(s.bindingUp, { cap: null, by: 'none' }, 'nothing caps the upload');

  proxy.reload({ ...cfg, global: { down: 200_000, up: 50_000 } });
  const g = await tierStats();
  assert.deepEqual([g.bindingDown, g.bindingUp], [{ cap: 200_000, by: 'global' }, { cap: 50_000, by: 'global' }]);

  proxy.reload({ ...cfg, tiers: { free: { ...free, total: { down: 120_000, up: U } } } });
  assert.deepEqual((await tierStats()).bindingDown, { cap: 120_000, by: 'total' });

  sockets.forEach((x) => x.destroy());
  await waitFor(async () => (await tierStats()).connections === 0, 3000, 'the connections closed');
  assert.deepEqual((await tierStats()).bindingDown, { cap: 100_000, by: 'customers' }, 'a first connection could move 100 kB/s');
});
