import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { app, backendFor, cleanup, config, connect, echoesExactly, freePort, pattern, proxyFor, rawServer, readAll, roundTrip, sha256, waitFor } from '../helpers.js';

test('bytes pass exactly both ways and a client half-close reaches the backend', async (t) => {
  const backend = await backendFor(t, 'collect');
  const proxy = await proxyFor(t, config([app('web', [backend.address])]));
  const data = pattern(3 * 1024 * 1024 + 17);
  // The backend answers only after it has seen our FIN: the answer proves the FIN
  // arrived after every byte, and that the reverse direction still works.
  const answer = (await roundTrip(proxy.portOf('web'), data)).toString();
  assert.equal(answer, `${sha256(data)} ${data.length}\n`);
});

test('a backend half-close reaches the client while the client keeps sending', async (t) => {
  const size = 2 * 1024 * 1024;
  const backend = await backendFor(t, 'source', { sourceBytes: size });
  const proxy = await proxyFor(t, config([app('web', [backend.address])]));
  const s = await connect(proxy.portOf('web'));
  const closed = new Promise((r) => s.once('close', r));
  const got = await readAll(s); // resolves on the backend's FIN
  assert.equal(got.length, size);
  assert.equal(sha256(got), sha256(pattern(size)));
  // Our direction is still open after the backend's FIN: send and close it.
  const upload = pattern(1024 * 1024, 7);
  s.end(upload);
  await waitFor(() => backend.received.length === 1, 5000, 'backend to see the upload');
  assert.deepEqual(backend.received[0], { sha: sha256(upload), bytes: upload.length });
  await closed;
});

test('echo of many concurrent connections is exact', async (t) => {
  const backend = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [backend.address])]));
  const results = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const data = pattern(10_000 + i * 997, i + 1);
      const got = await roundTrip(proxy.portOf('web'), data);
      return sha256(got) === sha256(data);
    }),
  );
  assert.ok(results.every(Boolean));
  await waitFor(() => proxy.connections.size === 0, 2000, 'connections to close');
});

test('round-robin spreads connections over targets in order', async (t) => {
  const backends = await Promise.all([backendFor(t, 'collect'), backendFor(t, 'collect'), backendFor(t, 'collect')]);
  const proxy = await proxyFor(t, config([app('web', backends.map((b) => b.address))]), { backends });
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    const before = backends.map((b) => b.accepted);
    await roundTrip(proxy.portOf('web'), Buffer.from('x'));
    seen.push(backends.findIndex((b, j) => b.accepted > before[j]!));
  }
  assert.deepEqual(seen, [0, 1, 2, 0, 1, 2]);
});

test('least-conn sends a new connection to the idle target', async (t) => {
  const backends = await Promise.all([backendFor(t, 'echo'), backendFor(t, 'echo')]);
  const proxy = await proxyFor(t, config([app('web', backends.map((b) => b.address), { balance: 'least-conn' })]), { backends });
  const held = await connect(proxy.portOf('web'));
  await waitFor(() => backends[0]!.accepted + backends[1]!.accepted === 1);
  const busy = backends.findIndex((b) => b.accepted === 1);
  for (let i = 0; i < 3; i++) await roundTrip(proxy.portOf('web'), Buffer.from('ping'));
  // All three short connections went to the other target while the first was held.
  assert.equal(backends[busy]!.accepted, 1);
  assert.equal(backends[1 - busy]!.accepted, 3);
  held.destroy();
});

test('weighted-least-conn follows this app\'s weights when another app lists the same target', async (t) => {
  const [a, b] = await Promise.all([backendFor(t, 'echo'), backendFor(t, 'echo')]);
  const weighted = app('w', [a.address, b.address], { balance: 'weighted-least-conn' });
  weighted.targets[0]!.weight = 3;
  // Listed after `w`, without a weight: it used to overwrite A's weight for every app.
  const other = app('other', [a.address]);
  const proxy = await proxyFor(t, config([weighted, other]), { backends: [a, b] });
  const held: net.Socket[] = [];
  cleanup(t, () => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 8; i++) {
    const s = await connect(proxy.portOf('w'));
    held.push(s);
    await echoesExactly(s, Buffer.from(`hello ${i}`));
  }
  assert.deepEqual([a.accepted, b.accepted], [6, 2]);
  const status = proxy.status() as { apps: { name: string; targets: { address: string; weight: number }[] }[] };
  const weights = (name: string) => status.apps.find((x) => x.name === name)!.targets.map((x) => x.weight);
  assert.deepEqual(weights('w'), [3, 1]);
  assert.deepEqual(weights('other'), [1]);
});

test('ip-hash keeps a client on one target', async (t) => {
  const backends = await Promise.all([backendFor(t, 'collect'), backendFor(t, 'collect'), backendFor(t, 'collect')]);
  const proxy = await proxyFor(t, config([app('web', backends.map((b) => b.address), { balance: 'ip-hash' })]), { backends });
  for (let i = 0; i < 5; i++) await roundTrip(proxy.portOf('web'), Buffer.from('x'));
  assert.deepEqual(backends.map((b) => b.accepted).sort(), [0, 0, 5]);
});

test('a refusing target fails over to the next and is marked unhealthy', async (t) => {
  const good = await backendFor(t, 'collect');
  const deadAddress = `127.0.0.1:${await freePort()}`; // nothing listens there: connections are refused
  const proxy = await proxyFor(t, config([app('web', [deadAddress, good.address])]), { backends: [good] });
  for (let i = 0; i < 4; i++) {
    const answer = (await roundTrip(proxy.portOf('web'), Buffer.from('hello'))).toString();
    assert.equal(answer, `${sha256(Buffer.from('hello'))} 5\n`);
  }
  assert.equal(good.accepted, 4);
  assert.equal(proxy.upstreams.byAddress.get(deadAddress)!.health, 'unhealthy');
});

test('when no target accepts, the client is closed and the reason recorded', async (t) => {
  const deadAddress = `127.0.0.1:${await freePort()}`;
  const proxy = await proxyFor(t, config([app('web', [deadAddress])]));
  // The proxy closes the client without an answer (a reset, as the client's
  // bytes were never read, or a plain FIN).
  const got = await roundTrip(proxy.portOf('web'), Buffer.from('hello')).catch((err: NodeJS.ErrnoException) => err.code);
  assert.ok(got === 'ECONNRESET' || (Buffer.isBuffer(got) && got.length === 0), `got ${String(got)}`);
  await waitFor(() => proxy.closedByReason.get('no_target') === 1, 2000, 'no_target close');
});

test('active health checks mark a dead target unhealthy and a revived one healthy', async (t) => {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const cfg = config([app('web', [address])], {
    health: { interval: 30, timeout: 200, unhealthyAfter: 2, healthyAfter: 2 },
  });
  const proxy = await proxyFor(t, cfg);
  const target = proxy.upstreams.byAddress.get(address)!;
  await waitFor(() => target.health === 'unhealthy', 3000, 'target to turn unhealthy');
  assert.ok(target.consecutiveFailures >= 2);
  await backendFor(t, 'collect', { port });
  await waitFor(() => target.health === 'healthy', 3000, 'target to turn healthy');
  assert.ok(target.consecutiveSuccesses >= 2);
});

test('a busy port is retried until it frees up, without holding up other ports', async (t) => {
  const backend = await backendFor(t, 'collect');
  const blocker = await rawServer(t, () => {});
  const busyPort = blocker.port;
  const proxy = await proxyFor(t, config([app('busy', [backend.address], { ports: [busyPort] }), app('free', [backend.address])]));
  // The other app serves at once.
  assert.equal((await roundTrip(proxy.portOf('free'), Buffer.from('a'))).toString().split(' ')[1], '1\n');
  const busy = () => proxy.listeners().find((l) => l.app === 'busy')!;
  await waitFor(() => busy().state === 'retrying' && busy().attempts >= 2, 3000, 'retries');
  await blocker.close();
  await waitFor(() => busy().state === 'listening', 5000, 'the freed port to be taken');
  assert.equal((await roundTrip(busyPort, Buffer.from('ab'))).toString().split(' ')[1], '2\n');
});

test('reload adds a port and removes a target while an open connection stays intact', async (t) => {
  const a = await backendFor(t, 'echo');
  const b = await backendFor(t, 'collect');
  const cfg = config([app('web', [a.address, b.address])]);
  const proxy = await proxyFor(t, cfg, { backends: [a, b] });
  const s = await connect(proxy.portOf('web')); // round-robin: goes to a (echo)
  await waitFor(() => a.accepted === 1);
  const first = pattern(100_000, 3);
  const reply = readAll(s);
  s.write(first);

  proxy.reload(config([app('web', [b.address], { ports: [0, 0] })]));
  await waitFor(() => proxy.listeners().filter((l) => l.app === 'web' && l.state === 'listening').length >= 2);
  // The new port works and only b serves now.
  const before = b.accepted;
  await roundTrip(proxy.portOf('web', 1), Buffer.from('x'));
  await roundTrip(proxy.portOf('web', 0), Buffer.from('y'));
  assert.equal(b.accepted, before + 2);
  assert.equal(a.accepted, 1);
  // The old connection to the removed target is still intact.
  const second = pattern(50_000, 4);
  s.end(second);
  const got = await reply;
  assert.equal(sha256(got), sha256(Buffer.concat([first, second])));
});

test('idle connections are closed by the idle timeout', async (t) => {
  const backend = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [backend.address], { idleTimeout: 100 })]));
  const s = await connect(proxy.portOf('web'));
  s.on('error', () => {});
  await waitFor(() => proxy.connections.size === 1, 2000, 'the connection');
  // One sweep for all connections, no timer per socket (memory: see bench conns).
  assert.equal([...proxy.connections][0]!.client.timeout, undefined);
  assert.equal((await readAll(s)).length, 0); // closed by the proxy, without a byte
  s.destroy();
  await waitFor(() => proxy.closedByReason.get('idle_timeout') === 1, 2000, 'idle close');
});

test('shutdown drains open connections, then closes the rest', async (t) => {
  const backend = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [backend.address])]));
  const port = proxy.portOf('web');
  const s = await connect(port);
  const reply = readAll(s);
  s.write('before ');
  const done = proxy.shutdown(5000);
  // New connections are refused once shutdown has begun.
  await assert.rejects(connect(port));
  // The open one keeps working until it finishes by itself.
  s.end('after');
  assert.equal((await reply).toString(), 'before after');
  assert.deepEqual(await done, { drained: 1, closed: 0 });
});
