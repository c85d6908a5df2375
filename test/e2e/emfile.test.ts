/**
 * Out of file descriptors for real: the CLI runs under `ulimit -n 64`.
 *
 * What node 20 / libuv does there: at accept, libuv hides EMFILE (it closes a reserve descriptor,
 * accepts and closes the pending connections, reopens the reserve; the server emits no error),
 * so the proxy keeps a descriptor budget and refuses beyond it itself. A dial that finds no
 * descriptor fails with EMFILE: that client is closed as `resource_exhausted`, the target is not
 * blamed, and accepting pauses. Either way: the process stays up, open connections go on byte
 * for byte, one log line per episode, and the proxy resumes by itself.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backendFor, cliFor, echoesExactly, freePort, pattern, tempDir, waitFor, type Child } from '../helpers.js';

const FD_LIMIT = 64;
const EXHAUSTED = 'out of file descriptors: accepting paused, open connections keep going';

async function startLimited(t: TestContext, extra: Record<string, unknown> = {}): Promise<{ child: Child; port: number; adminPort: number }> {
  const backend = await backendFor(t, 'echo');
  const dir = await tempDir(t, 'shaper-emfile-');
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(dir, 'proxy.json');
  await writeFile(
    file,
    JSON.stringify({
      apps: [{ name: 'web', ports: [port], targets: [backend.address] }],
      bind: '127.0.0.1',
      admin: { listen: `127.0.0.1:${adminPort}` },
      health: { interval: '60s' },
      log: { level: 'info' },
      ...extra,
    }),
  );
  const child = cliFor(t, ['--config', file], {}, { fdLimit: FD_LIMIT });
  await child.waitLog((l) => l['msg'] === 'listening' && l['port'] === port, 15_000, 'the app listening');
  await child.waitLog((l) => l['msg'] === 'listening' && l['port'] === adminPort, 15_000, 'the admin server listening');
  return { child, port, adminPort };
}

/** Connects; resolves with the socket once `hi` came back through the proxy, or null if closed first. */
function echoed(port: number, ms = 2000): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => done(null), ms);
    const done = (v: net.Socket | null) => {
      clearTimeout(timer);
      s.off('data', onData);
      if (!v) s.destroy();
      resolve(v);
    };
    const onData = () => done(s);
    s.on('data', onData);
    s.on('error', () => done(null));
    s.on('close', () => done(null));
    s.write('hi');
  });
}

async function stats(adminPort: number): Promise<{ connections: { byReason: Record<string, number>; refused: Record<string, number> } }> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/stats`);
  return (await res.json()) as never;
}

test(`ulimit -n ${FD_LIMIT}: beyond the descriptor budget connections are refused, logged once, open ones go on, and it resumes`, async (t) => {
  const { child, port, adminPort } = await startLimited(t);
  const budgetLog = await child.waitLog((l) => typeof l['budget'] === 'number' && l['fdLimit'] === FD_LIMIT, 2000, 'the budget');
  const budget = budgetLog['budget'] as number;
  assert.ok(budget > 4 && budget < FD_LIMIT / 2, `budget ${budget}`);

  const open: net.Socket[] = [];
  t.after(() => open.forEach((s) => s.destroy()));
  for (let i = 0; i < budget; i++) {
    const s = await echoed(port);
    assert.ok(s, `connection ${i + 1} of ${budget} served`);
    open.push(s);
  }
  const extra = 3 * FD_LIMIT;
  let refused = 0;
  for (let i = 0; i < extra; i++) if (!(await echoed(port, 1000))) refused++;
  assert.equal(refused, extra, 'every connection beyond the budget is refused');
  assert.equal(child.proc.exitCode, null, 'the proxy is alive');

  // The open connections keep transferring, exactly.
  await Promise.all(open.map((s, i) => echoesExactly(s, pattern(64 * 1024, i + 1))));
  const doc = await stats(adminPort);
  assert.equal(doc.connections.refused['resource_exhausted'], extra);
  assert.equal(child.logs.filter((l) => l['msg'] === EXHAUSTED).length, 1, 'logged once, not per connection');

  // Closing them lets new connections in again, without any help.
  for (const s of open.splice(0)) s.destroy();
  const again = (await waitFor(() => echoed(port, 500), 5000, 'a connection served again'))!;
  again.destroy();
  assert.equal(child.logs.filter((l) => l['msg'] === EXHAUSTED).length, 1);
  assert.equal(child.proc.exitCode, null);
});

test(`ulimit -n ${FD_LIMIT}: a dial that hits EMFILE closes that client as resource_exhausted, blames no target, and the proxy recovers`, async (t) => {
  const { child, port, adminPort } = await startLimited(t);
  // Admin connections (not in the budget) take every descriptor left; libuv's reserve trick
  // closes the first admin connection it cannot accept. Each, once answered, starts a second
  // request it never finishes, so the admin server keeps it for requestTimeout (10 s) rather
  // than its keep-alive timeout (5 s), which a loaded machine could reach before the end.
  const admin: net.Socket[] = [];
  t.after(() => admin.forEach((s) => s.destroy()));
  // Bounded: an admin connection that gets neither an answer nor a close counts as not answered.
  const answered = (s: net.Socket) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      s.once('close', () => clearTimeout(timer));
      s.once('data', () => {
        clearTimeout(timer);
        s.write('PUT /tiers/held HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{');
        resolve(true);
      });
      s.once('close', () => resolve(false));
      s.once('error', () => resolve(false));
      s.write('GET /health HTTP/1.1\r\nhost: x\r\n\r\n');
    });
  for (let i = 0; i < FD_LIMIT; i++) {
    const s = net.connect({ port: adminPort, host: '127.0.0.1' });
    s.on('error', () => {});
    if (!(await answered(s))) break;
    admin.push(s);
  }
  assert.ok(admin.length > 10 && admin.length < FD_LIMIT, `${admin.length} admin connections held`);

  // Free one descriptor at a time: the accept takes it and the dial finds none. (A descriptor the
  // proxy itself held for a moment, its counters file say, can let one through: it is kept open
  // and takes two, so the next round is short again.)
  // The proxy's own descriptors (the pid is node's: sh execs it): the freed descriptor shows as one
  // fewer open file in the proxy (a loaded machine can take longer than a fixed 100 ms to close
  // it). Up to 1 s: the proxy may also reuse it at once (an accept waiting in the backlog), and
  // then the round goes on as before.
  const proxyFds = () => readdirSync(`/proc/${child.proc.pid}/fd`).length;
  let dialFailed = false;
  for (let i = 0; i < 8 && !dialFailed; i++) {
    const before = proxyFds();
    admin.pop()!.destroy();
    await waitFor(() => proxyFds() < before, 1000).catch(() => {});
    const served = await echoed(port, 1000);
    if (served) admin.push(served);
    dialFailed = child.logs.some((l) => l['msg'] === 'connection closed' && l['reason'] === 'resource_exhausted' && l['error'] === 'EMFILE');
  }
  assert.ok(dialFailed, `a dial failed with EMFILE and closed its client as resource_exhausted (${admin.length} admin connections held; logs: ${JSON.stringify(child.logs.slice(-5))})`);
  assert.equal(child.proc.exitCode, null, 'the proxy is alive');

  for (const s of admin.splice(0)) s.destroy();
  const again = (await waitFor(() => echoed(port, 500), 5000, 'a connection served again'))!;
  await echoesExactly(again, pattern(64 * 1024, 7));
  again.destroy();
  const doc = await stats(adminPort);
  assert.ok((doc.connections.byReason['resource_exhausted'] ?? 0) >= 1);
  const exhausted = child.logs.filter((l) => l['msg'] === EXHAUSTED);
  assert.equal(exhausted.length, 1, 'logged once');
  assert.equal(exhausted[0]!['code'], 'EMFILE');
  const status = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as { apps: { targets: { health: string }[] }[] };
  assert.equal(status.apps[0]!.targets[0]!.health, 'healthy', 'the target is not blamed for our lack of descriptors');
  assert.ok(!child.logs.some((l) => l['msg'] === 'target unhealthy'));
});

test(`ulimit -n ${FD_LIMIT}: a limits.maxConnections the limit cannot hold is warned about at start`, async (t) => {
  const { child } = await startLimited(t, { limits: { maxConnections: 1000 } });
  const warning = await child.waitLog((l) => l['maxConnections'] === 1000, 2000, 'the warning');
  assert.equal(warning['level'], 40);
  assert.match(String(warning['msg']), /^limits\.maxConnections 1000 needs 2000 descriptors but ulimit -n is 64: connections beyond \d+ will be refused/);
});
