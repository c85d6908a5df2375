import { test } from 'node:test';
import assert from 'node:assert/strict';
import { app, config, connect, pattern, readAll, roundTrip, sha256, startBackend, startProxy, waitFor, tier } from '../helpers.js';

const U = Infinity;
test('a capped download takes at least its due time and arrives intact', async (t) => {
  const size = 1_500_000;
  const backend = await startBackend('source', { sourceBytes: size });
  const free = tier('free', { connection: { down: 1_000_000, up: U } });
  const proxy = await startProxy(config([app('web', [backend.address])], { tiers: { free }, defaultTier: 'free' }));
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const started = Date.now();
  const s = await connect(proxy.portOf('web'));
  const got = await readAll(s);
  const ms = Date.now() - started;
  s.destroy();
  assert.equal(sha256(got), sha256(pattern(size)));
  // Burst is max(rate × rtt, 32 KiB) = 50 kB: the rest goes at 1 MB/s.
  assert.ok(ms >= ((size - 50_000) / 1_000_000) * 1000 * 0.97, `took ${ms} ms`);
});

test('a capped upload with a half-close: every byte reaches the backend before the FIN', async (t) => {
  const backend = await startBackend('collect');
  const free = tier('free', { connection: { down: U, up: 400_000 } });
  const proxy = await startProxy(config([app('web', [backend.address])], { tiers: { free }, defaultTier: 'free' }));
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const data = pattern(600_000, 9);
  const started = Date.now();
  // The backend answers only after the FIN, with the hash of all it got before it.
  const answer = (await roundTrip(proxy.portOf('web'), data)).toString();
  const ms = Date.now() - started;
  assert.equal(answer, `${sha256(data)} ${data.length}\n`);
  // Burst: max(400 kB/s × 50 ms, 32 KiB) = 32 KiB.
  assert.ok(ms >= ((data.length - 32_768) / 400_000) * 1000 * 0.97, `took ${ms} ms`);
});

test('connections of one customer share its cap; each direction is shaped on its own', async (t) => {
  const size = 400_000;
  const backend = await startBackend('source', { sourceBytes: size });
  const free = tier('free', { customer: { down: 1_000_000, up: U } });
  const proxy = await startProxy(config([app('web', [backend.address])], { tiers: { free }, defaultTier: 'free' }));
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const s = await connect(proxy.portOf('web'));
      const got = await readAll(s);
      s.destroy();
      return sha256(got) === sha256(pattern(size));
    }),
  );
  const ms = Date.now() - started;
  assert.ok(results.every(Boolean));
  // 1.6 MB through one 1 MB/s customer bucket (50 kB burst).
  assert.ok(ms >= ((4 * size - 50_000) / 1_000_000) * 1000 * 0.97, `took ${ms} ms`);
});

test('maxConnections refuses the customer connection over the limit', async (t) => {
  const backend = await startBackend('echo');
  const free = tier('free', { maxConnections: 2 });
  const proxy = await startProxy(config([app('web', [backend.address])], { tiers: { free }, defaultTier: 'free' }), [backend]);
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const port = proxy.portOf('web');
  const a = await connect(port);
  const b = await connect(port);
  await waitFor(() => backend.accepted === 2, 3000, 'two admitted');
  const c = await connect(port);
  c.on('error', () => {});
  const got = await readAll(c); // the proxy closes it without a byte
  assert.equal(got.length, 0);
  c.destroy();
  assert.equal(proxy.closedByReason.get('rejected'), 1);
  assert.equal(backend.accepted, 2);
  // A slot frees up when one closes.
  a.destroy();
  await waitFor(() => proxy.connections.size === 1, 3000, 'a to close');
  const echo = (await roundTrip(port, Buffer.from('hi'))).toString();
  assert.equal(echo, 'hi');
  b.destroy();
});

test('a customer moved to another tier: its live connection follows without reconnecting', async (t) => {
  const size = 3_000_000;
  const backend = await startBackend('source', { sourceBytes: size });
  const tiers = {
    free: tier('free', { connection: { down: 200_000, up: U } }),
    gold: tier('gold', { connection: { down: 50_000_000, up: U } }),
  };
  const customer = (tierName: string) => ({ id: 'acme', tier: tierName, match: { sources: ['127.0.0.0/8'] } });
  const apps = [app('web', [backend.address])];
  const proxy = await startProxy(config(apps, { tiers, customers: [customer('free')] }));
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const started = Date.now();
  const s = await connect(proxy.portOf('web'));
  const got = readAll(s);
  await new Promise((r) => setTimeout(r, 300));
  proxy.reload(config(apps, { tiers, customers: [customer('gold')] }));
  const data = await got;
  const ms = Date.now() - started;
  s.destroy();
  assert.equal(sha256(data), sha256(pattern(size)));
  // At 200 kB/s the transfer would take 15 s; in gold it is done in well under that.
  assert.ok(ms < 8000, `took ${ms} ms`);
  assert.equal(proxy.shaper.customers.get('acme')!.tier, 'gold');
});

test('unmatched connections are unshaped when there is no defaultTier', async (t) => {
  const backend = await startBackend('collect');
  const tiers = { free: tier('free', { connection: { down: 1000, up: 1000 } }) };
  const proxy = await startProxy(
    config([app('web', [backend.address])], {
      tiers,
      customers: [{ id: 'other', tier: 'free', match: { sources: ['10.0.0.0/8'] } }],
    }),
  );
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const data = pattern(2_000_000, 3);
  const answer = (await roundTrip(proxy.portOf('web'), data)).toString();
  assert.equal(answer, `${sha256(data)} ${data.length}\n`);
  for (const c of proxy.connections) assert.equal(c.shaped, null);
});
