/** GET /ready for load balancers: 503 before any app port listens and from the start of a drain; /health stays 200. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { app, config, connect, echoesExactly, startBackend, startProxy, waitFor } from '../helpers.js';

const ADMIN = { host: '127.0.0.1', port: 0 };

async function get(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
}

test('/ready is 503 "starting" while the only app port is busy, 200 once it listens', async (t) => {
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  const port = (squatter.address() as net.AddressInfo).port;
  const backend = await startBackend('echo');
  const proxy = await startProxy(config([app('web', [backend.address], { ports: [port] })], { admin: ADMIN }), [backend]);
  t.after(async () => {
    await proxy.stop();
    await backend.close();
    squatter.close();
  });
  await waitFor(() => proxy.adminPort, 3000, 'the admin port');
  assert.deepEqual(await get(proxy.adminPort!, '/ready'), { status: 503, body: { status: 'starting' } });
  assert.deepEqual(await get(proxy.adminPort!, '/health'), { status: 200, body: { status: 'ok' } });
  await new Promise<void>((r) => squatter.close(() => r()));
  await waitFor(async () => (await get(proxy.adminPort!, '/ready')).status === 200, 10_000, 'the port to be taken over');
  assert.deepEqual((await get(proxy.adminPort!, '/ready')).body, { status: 'ready' });
});

test('/ready turns 503 "draining" as soon as a drain starts, while open connections finish', async (t) => {
  const backend = await startBackend('echo');
  const proxy = await startProxy(config([app('web', [backend.address])], { admin: ADMIN, drainTimeout: 10_000 }), [backend]);
  t.after(() => backend.close());
  await waitFor(() => proxy.adminPort, 3000, 'the admin port');
  const admin = proxy.adminPort!;
  assert.equal((await get(admin, '/ready')).status, 200);
  const held = await connect(proxy.portOf('web'));
  await echoesExactly(held, Buffer.from('before the drain'));
  const done = proxy.shutdown(10_000);
  await waitFor(async () => (await get(admin, '/ready')).status === 503, 3000, '503 during the drain');
  assert.deepEqual((await get(admin, '/ready')).body, { status: 'draining' });
  // The open connection is still served during the drain.
  await echoesExactly(held, Buffer.from('during the drain'));
  held.end();
  assert.deepEqual(await done, { drained: 1, closed: 0 });
});
