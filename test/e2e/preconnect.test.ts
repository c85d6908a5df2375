/**
 * apps[].preconnect over real sockets: connections dialed ahead and handed to clients, a
 * server-first greeting kept for the client that takes the connection, the PROXY header still
 * first, connections the target closes dropped, maxIdle on the injected clock, /status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { ManualClock } from '../../src/clock.js';
import { GREETING_LIMIT } from '../../src/upstream/preconnect.js';
import { app, config, connect, echoesExactly, pattern, proxyFor, rawServer, readAll, sha256, tier, waitFor, type TestProxy } from '../helpers.js';

const ADMIN = { host: '127.0.0.1', port: 0 };

/** An echo target that counts what it accepted and notes which of its sockets got client bytes. */
async function echoTarget(t: import('node:test').TestContext, greeting?: Buffer) {
  const accepted: net.Socket[] = [];
  const closed = new Set<net.Socket>();
  const srv = await rawServer(t, (s) => {
    accepted.push(s);
    s.on('close', () => closed.add(s));
    if (greeting) s.write(greeting);
    s.pipe(s);
  });
  return { ...srv, accepted, closed, open: () => accepted.filter((s) => !closed.has(s)).length };
}

async function status(proxy: TestProxy): Promise<any> {
  return (await fetch(`http://127.0.0.1:${proxy.adminPort}/status`)).json();
}

/** Reads until `n` bytes came, then returns them. */
function readBytes(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

test('preconnect: count connections wait per target; a client gets one dialed before it came, exact bytes, and it is replaced', async (t) => {
  const target = await echoTarget(t);
  const proxy = await proxyFor(t, config([app('pc', [target.address], { preconnect: { count: 3, maxIdle: 60_000 } })], { admin: ADMIN }));
  await waitFor(() => (proxy.upstreams.apps.get('pc')!.pool!.idle(proxy.upstreams.byAddress.get(target.address)!) === 3 ? true : undefined), 5000, 'three dialed ahead');
  const before = new Set(target.accepted);
  const c = await connect(proxy.portOf('pc'));
  t.after(() => c.destroy());
  await echoesExactly(c, pattern(100_000));
  const serving = target.accepted.find((s) => s.bytesRead > 0)!;
  assert.ok(before.has(serving), 'the client was served by a connection dialed before it connected');
  await waitFor(() => (proxy.upstreams.apps.get('pc')!.pool!.idle(proxy.upstreams.byAddress.get(target.address)!) === 3 ? true : undefined), 5000, 'a replacement dialed');
  const st = await status(proxy);
  assert.equal(st.apps[0].preconnect.count, 3);
  assert.equal(st.apps[0].preconnect.taken, 1);
  assert.equal(st.apps[0].targets[0].preconnected, 3);
  assert.equal(proxy.upstreams.byAddress.get(target.address)!.active, 1);
});

for (const shaped of [false, true]) {
test(`preconnect: a server-first greeting sent to an idle connection reaches the client that takes it, first and exactly${shaped ? ' (shaped)' : ''}`, async (t) => {
  const greeting = Buffer.from('220 mail.example ESMTP ready\r\n');
  const target = await echoTarget(t, greeting);
  const shaping = shaped ? { tiers: { t: tier('t', { connection: { down: 5_000_000, up: 5_000_000 } }) }, defaultTier: 't' } : {};
  const proxy = await proxyFor(t, config([app('smtp', [target.address], { preconnect: { count: 2, maxIdle: 60_000 } })], shaping));
  const pool = proxy.upstreams.apps.get('smtp')!.pool!;
  await waitFor(() => (pool.counts['greeted'] === 2 ? true : undefined), 5000, 'both idle connections greeted');
  for (let i = 0; i < 3; i++) {
    const c = await connect(proxy.portOf('smtp'));
    assert.equal((await readBytes(c, greeting.length)).toString(), greeting.toString(), `client ${i} reads the greeting first`);
    await echoesExactly(c, pattern(10_000, i + 1));
    const rest = readAll(c);
    c.end();
    assert.equal((await rest).length, 0, 'nothing after the echo: the greeting came once');
    c.destroy();
  }
  assert.ok((pool.counts['taken'] ?? 0) >= 2, 'served from the pool');
});
}

test('preconnect: an idle connection whose target says more than the greeting limit is closed unused; the client still gets every byte', async (t) => {
  const big = pattern(GREETING_LIMIT + 10_000, 7);
  const target = await echoTarget(t, big);
  const proxy = await proxyFor(t, config([app('chatty', [target.address], { preconnect: { count: 1, maxIdle: 60_000 } })]));
  const pool = proxy.upstreams.apps.get('chatty')!.pool!;
  await waitFor(() => ((pool.counts['greetingTooLong'] ?? 0) >= 1 ? true : undefined), 5000, 'a pre-dialed connection dropped');
  const c = await connect(proxy.portOf('chatty'));
  t.after(() => c.destroy());
  assert.equal(sha256(await readBytes(c, big.length)), sha256(big));
});

test('preconnect: connections the target closes while idle are dropped, and a client is still served', async (t) => {
  let closeIdle = true;
  /** sockets the target closes 10 ms after accepting them, until it stops doing so */
  const doomed = new Set<net.Socket>();
  const target = await rawServer(t, (s) => {
    if (closeIdle) {
      doomed.add(s);
      s.on('close', () => doomed.delete(s));
      setTimeout(() => s.end(), 10);
    } else s.pipe(s);
  });
  const proxy = await proxyFor(t, config([app('flaky', [target.address], { preconnect: { count: 2, maxIdle: 60_000 } })]));
  const pool = proxy.upstreams.apps.get('flaky')!.pool!;
  await waitFor(() => ((pool.counts['closedByTarget'] ?? 0) >= 2 ? true : undefined), 5000, 'idle connections closed by the target');
  closeIdle = false;
  // The ones it still closes are dropped too; their replacements stay.
  await waitFor(() => (doomed.size === 0 && pool.idle(proxy.upstreams.byAddress.get(target.address)!) === 2 ? true : undefined), 5000, 'replaced');
  const c = await connect(proxy.portOf('flaky'));
  t.after(() => c.destroy());
  await echoesExactly(c, pattern(5000));
});

test('preconnect: the PROXY header still comes first on a connection dialed ahead', async (t) => {
  const target = await echoTarget(t);
  const proxy = await proxyFor(t, config([app('pp', [target.address], { preconnect: { count: 1, maxIdle: 60_000 }, sendProxyProtocol: 'v1' })]));
  const pool = proxy.upstreams.apps.get('pp')!.pool!;
  await waitFor(() => (pool.idle(proxy.upstreams.byAddress.get(target.address)!) === 1 ? true : undefined), 5000, 'dialed ahead');
  const c = await connect(proxy.portOf('pp'));
  t.after(() => c.destroy());
  const header = await readBytes(c, 'PROXY TCP4 127.0.0.1 127.0.0.1 '.length);
  assert.match(header.toString(), /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 /);
  assert.equal(pool.counts['taken'], 1);
});

test('preconnect: an idle connection past maxIdle (the injected clock) is closed and replaced', async (t) => {
  const target = await echoTarget(t);
  const clock = new ManualClock();
  const proxy = await proxyFor(t, config([app('idle', [target.address], { preconnect: { count: 2, maxIdle: 30_000 } })]), { clock });
  const pool = proxy.upstreams.apps.get('idle')!.pool!;
  const tgt = proxy.upstreams.byAddress.get(target.address)!;
  await waitFor(() => (pool.idle(tgt) === 2 ? true : undefined), 5000, 'dialed ahead');
  const first = target.accepted.slice(-2);
  clock.advance(29_000);
  assert.equal(pool.counts['expired'], 0);
  clock.advance(1_000);
  assert.equal(pool.counts['expired'], 2);
  await waitFor(() => (first.every((s) => target.closed.has(s)) ? true : undefined), 5000, 'the old ones closed');
  await waitFor(() => (pool.idle(tgt) === 2 ? true : undefined), 5000, 'replaced');
});
