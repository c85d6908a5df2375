import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { app, backendFor, cleanup, config, connect, connectFrom, echoesExactly, refusedRead, proxyFor, readAll, tier, waitFor, type Backend, type TestProxy } from '../helpers.js';
import { ManualClock } from '../../src/clock.js';
import type { LimitsConfig } from '../../src/config/types.js';

const echoes = (s: net.Socket, text: string): Promise<void> => echoesExactly(s, Buffer.from(text));

/** An in-process proxy with `limits` in front of an echo backend; it, the backend and `open` sockets go after the test. */
async function limitedProxy(t: TestContext, limits: LimitsConfig): Promise<{ proxy: TestProxy; backend: Backend; port: number; open: net.Socket[] }> {
  const backend = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [backend.address])], { limits }), { backends: [backend] });
  const open: net.Socket[] = [];
  cleanup(t, () => open.forEach((s) => s.destroy()));
  return { proxy, backend, port: proxy.portOf('web'), open };
}

test('perSource.maxConnections 2: the 3rd connection from 127.0.0.1 is refused before any dial, and counted', async (t) => {
  const { proxy, backend, port, open } = await limitedProxy(t, { perSource: { maxConnections: 2 } });
  for (let i = 0; i < 2; i++) {
    const s = await connect(port);
    open.push(s);
    await echoes(s, `c${i}`);
  }
  assert.equal((await refusedRead(port)).length, 0);
  await waitFor(() => proxy.stats.refused.get('source_connections') === 1, 2000, 'the refusal to be counted');
  assert.equal(backend.accepted, 2, 'no dial for the refused connection');
  const doc = proxy.statsDocument() as { connections: { refused: Record<string, number> } };
  assert.deepEqual(doc.connections.refused, { source_connections: 1 });
  // The open ones keep working; closing one lets a new one in.
  await echoes(open[0]!, 'still');
  open.shift()!.destroy();
  await waitFor(() => proxy.limits.connectionsOf('127.0.0.1') === 1, 2000, 'the release');
  const s = await connect(port);
  open.push(s);
  await echoes(s, 'again');
  const metrics = await proxy.metrics.scrape();
  assert.match(metrics, /shaper_connections_refused_total\{reason="source_connections"\} 1/);
});

test('perSource.acceptRate refuses connections beyond the rate', async (t) => {
  const { proxy, port } = await limitedProxy(t, { perSource: { acceptRate: { count: 3, per: 60_000 } } });
  for (let i = 0; i < 3; i++) {
    const s = await connect(port);
    await echoes(s, `r${i}`);
    s.destroy();
  }
  assert.equal((await refusedRead(port)).length, 0);
  assert.equal((await refusedRead(port)).length, 0);
  await waitFor(() => proxy.stats.refused.get('source_rate') === 2, 2000, 'the refusals to be counted');
});

test('global maxConnections refuses beyond the total', async (t) => {
  const { proxy, port, open } = await limitedProxy(t, { perSource: {}, maxConnections: 1 });
  const s = await connect(port);
  open.push(s);
  await echoes(s, 'one');
  assert.equal((await refusedRead(port)).length, 0);
  await waitFor(() => proxy.stats.refused.get('global_connections') === 1, 2000, 'the refusal to be counted');
  assert.equal(proxy.connections.size, 1);
});

test('per-address customers of closed connections are forgotten by the housekeeping (memory follows what is open)', async (t) => {
  const backend = await backendFor(t, 'echo');
  const clock = new ManualClock();
  const cfg = config([app('web', [backend.address])], { tiers: { free: tier('free', { maxConnections: 2 }) }, defaultTier: 'free' });
  const proxy = await proxyFor(t, cfg, { backends: [backend], clock });
  const port = proxy.portOf('web');
  const held = await connectFrom(port, '127.1.0.200');
  await echoes(held, 'held');
  for (let i = 1; i <= 40; i++) {
    const s = await connectFrom(port, `127.1.0.${i}`);
    await echoes(s, `c${i}`);
    s.end();
    await readAll(s);
    s.destroy();
  }
  await waitFor(() => proxy.connections.size === 1, 5000, 'the 40 connections to close');
  assert.equal(proxy.shaper.customers.size, 41);
  clock.advance(1000);
  assert.deepEqual([...proxy.shaper.customers.keys()], ['127.1.0.200'], 'only the source with an open connection is kept');
  await echoes(held, 'still shaped and served');
  held.destroy();
  await waitFor(() => proxy.connections.size === 0);
  clock.advance(1000);
  assert.equal(proxy.shaper.customers.size, 0);
});
