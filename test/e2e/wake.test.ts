/**
 * apps[].wake and apps[].sleep over real sockets: the hook runs once (a real child process, or a
 * POST to a server on loopback), clients are held with their bytes and served once a target comes
 * up, or closed with wake_timeout (the injected clock); the sleep hook after the idle time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type net from 'node:net';
import { ManualClock } from '../../src/clock.js';
import {
  app,
  backendFor,
  captureLogger,
  cleanup,
  collected,
  config,
  connect,
  freePort,
  pattern,
  proxyFor,
  readAll,
  tempDir,
  waitFor,
  type TestProxy,
} from '../helpers.js';

const ADMIN = { host: '127.0.0.1', port: 0 };

async function wakeStatus(proxy: TestProxy): Promise<any> {
  const st = (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/status`)).json()) as { apps: { wake?: unknown }[] };
  return st.apps[0]!.wake;
}

/** A hook command (a real child process) that appends its event to `file`. */
const appendHook = (file: string): string[] => [process.execPath, '-e', "require('fs').appendFileSync(process.argv[1], process.env.SHAPER_EVENT + '\\n')", file];
const lines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('wake (url): no target accepts, the hook is POSTed once, five clients are held with their bytes and all served when the target comes up', async (t) => {
  const port = await freePort();
  const posts: unknown[] = [];
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      posts.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  cleanup(t, () => new Promise<void>((r) => hook.close(() => r())));
  const url = `http://127.0.0.1:${(hook.address() as net.AddressInfo).port}/wake`;
  const proxy = await proxyFor(t, config([app('lazy', [`127.0.0.1:${port}`], { wake: { hook: { url }, timeout: 30_000 } })], { admin: ADMIN }));

  const clients = await Promise.all(Array.from({ length: 5 }, () => connect(proxy.portOf('lazy'))));
  const data = clients.map((_, i) => pattern(20_000 + i * 1000, i + 1));
  const answers = clients.map((c, i) => {
    cleanup(t, () => c.destroy());
    const out = readAll(c);
    c.end(data[i]); // sent while held: kept in the socket until the target is up
    return out;
  });
  await waitFor(async () => ((await wakeStatus(proxy)).held === 5 ? true : undefined), 5000, 'five clients held');
  assert.deepEqual(posts, [{ app: 'lazy', event: 'wake' }], 'the hook ran once for all of them');

  await backendFor(t, 'collect', { port });
  const got = await Promise.all(answers);
  got.forEach((g, i) => assert.equal(g.toString(), collected(data[i]!), `client ${i} served, its bytes exact`));
  const st = await wakeStatus(proxy);
  assert.equal(st.wakes, 1);
  assert.equal(st.woke, 1);
  assert.equal(st.clientsHeld, 5);
  assert.equal(st.held, 0);
  assert.ok(st.lastWakeMs > 0);
  assert.equal(posts.length, 1);
});

test('wake (command): the hook runs once as a child process; no target within wake.timeout (injected clock): the held clients are closed with wake_timeout', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'events');
  const port = await freePort();
  const clock = new ManualClock();
  const { log, lines: logLines } = captureLogger();
  const proxy = await proxyFor(t, config([app('gone', [`127.0.0.1:${port}`], { wake: { hook: { command: appendHook(file) }, timeout: 5000 } })], { admin: ADMIN }), {
    clock,
    log,
  });
  const clients = await Promise.all(Array.from({ length: 3 }, () => connect(proxy.portOf('gone'))));
  const closed = clients.map((c) => {
    cleanup(t, () => c.destroy());
    c.write('hello');
    // Closed with its bytes unread, so the kernel resets it: no byte may come back either way.
    return new Promise<number>((resolve) => {
      let got = 0;
      c.on('data', (d: Buffer) => (got += d.length));
      c.on('error', () => {});
      c.once('close', () => resolve(got));
    });
  });
  await waitFor(async () => ((await wakeStatus(proxy)).held === 3 ? true : undefined), 5000, 'three clients held');
  await waitFor(() => (lines(file).length === 1 ? true : undefined), 5000, 'the hook ran');
  clock.advance(4999);
  assert.equal((await wakeStatus(proxy)).held, 3, 'still held before the timeout');
  clock.advance(1);
  for (const c of closed) assert.equal(await c, 0, 'closed, nothing sent');
  await waitFor(() => (logLines.filter((l) => l['msg'] === 'connection closed' && l['reason'] === 'wake_timeout').length === 3 ? true : undefined), 5000, 'three wake_timeout closes');
  const st = await wakeStatus(proxy);
  assert.equal(st.timedOut, 1);
  assert.equal(st.held, 0);
  assert.equal(lines(file).join(','), 'wake', 'the hook ran once');
  assert.ok(logLines.some((l) => l['msg'] === 'app did not wake within wake.timeout: closing the held clients'));

  // The next client starts a new wake.
  const again = await connect(proxy.portOf('gone'));
  cleanup(t, () => again.destroy());
  await waitFor(() => (lines(file).length === 2 ? true : undefined), 5000, 'a second wake');
});

test('sleep: the hook runs once the app had no connection for sleep.after (injected clock), and again only after a connection', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'events');
  const backend = await backendFor(t, 'echo');
  const clock = new ManualClock();
  const proxy = await proxyFor(t, config([app('idle', [backend.address], { sleep: { hook: { command: appendHook(file) }, after: 10_000 } })], { admin: ADMIN }), {
    clock,
  });
  clock.advance(9000);
  assert.equal((await wakeStatus(proxy)).sleeps, 0);
  clock.advance(1500);
  await waitFor(() => (lines(file).length === 1 ? true : undefined), 5000, 'the sleep hook ran');
  assert.equal(lines(file)[0], 'sleep');
  const st = await wakeStatus(proxy);
  assert.equal(st.sleeps, 1);
  assert.equal(st.state, 'asleep');
  clock.advance(60_000);
  assert.equal((await wakeStatus(proxy)).sleeps, 1, 'once per idle spell');

  const c = await connect(proxy.portOf('idle'));
  c.write('x');
  await new Promise((r) => c.once('data', r));
  clock.advance(500);
  assert.equal((await wakeStatus(proxy)).state, 'idle', 'a connection wakes the app');
  c.destroy();
  await waitFor(() => (proxy.upstreams.apps.get('idle')!.open === 0 ? true : undefined), 5000, 'closed');
  clock.advance(500);
  clock.advance(10_500);
  await waitFor(() => (lines(file).length === 2 ? true : undefined), 5000, 'slept again');
});
