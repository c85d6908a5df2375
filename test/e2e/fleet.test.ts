/**
 * Fleet mode end to end: a real redis-server and two or three proxies as CLI child processes.
 * Fleet-wide maxConnections, shares that follow each instance's demand, admin changes reaching
 * the other instances (and staying in Redis for a new one), and Redis killed mid-transfer:
 * traffic goes on, and shared shaping comes back with Redis.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import { backendFor, cliFor, connect, rawServer, tempDir, waitFor, type Child } from '../helpers.js';
import { haveRedis, RedisServer } from '../redis.js';
import type { FleetView } from '../../src/cluster/fleet.js';

type Log = Record<string, unknown>;

const NO_REDIS = 'redis-server not installed (.ci/run installs it)';

interface Member {
  name: string;
  child: Child;
  port: number;
  admin: number;
  get(pathname: string): Promise<unknown>;
  send(method: string, pathname: string, body: unknown): Promise<{ status: number; body: unknown }>;
  cluster(): Promise<FleetView>;
}

/** One instance of the fleet as a child process; killed after the test. */
async function member(t: TestContext, dir: string, name: string, redis: RedisServer, shaping: Record<string, unknown>, target: string): Promise<Member> {
  const file = path.join(dir, `${name}.json`);
  const config = {
    bind: '127.0.0.1',
    admin: { listen: '127.0.0.1:0' },
    health: { interval: '10s' },
    drainTimeout: '0s',
    apps: [{ name: 'web', ports: [0], targets: [target] }],
    ...shaping,
    // Generous timeouts: on a loaded CI machine a slow Redis answer must not look like an outage
    // (the instance would then admit on its own fallback share).
    cluster: { redis: redis.url, instance: name, rebalanceInterval: '100ms', memberTimeout: '3s', redisTimeout: '2s' },
  };
  await fs.writeFile(file, JSON.stringify(config));
  const child = cliFor(t, ['--config', file]);
  const app = await child.waitLog((l) => l['msg'] === 'listening' && l['app'] === 'web', 10_000, `${name} listening`);
  const admin = await child.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'admin', 10_000, `${name} admin`);
  const adminPort = admin['port'] as number;
  const send = async (method: string, pathname: string, body: unknown) => {
    const res = await fetch(`http://127.0.0.1:${adminPort}${pathname}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const m: Member = {
    name,
    child,
    port: app['port'] as number,
    admin: adminPort,
    get: async (pathname) => (await send('GET', pathname, undefined)).body,
    send,
    cluster: async () => ((await m.get('/status')) as { cluster: FleetView }).cluster,
  };
  return m;
}

interface TestFleet {
  redis: RedisServer;
  members: Member[];
  /** One more instance on the same Redis and config. */
  add(name: string): Promise<Member>;
}

/** A redis-server and one instance per name, all on `shaping` and `target`; everything stopped after the test. */
async function fleet(t: TestContext, names: string[], shaping: Record<string, unknown>, target: string): Promise<TestFleet> {
  const dir = await tempDir(t, 'shaper-fleet-');
  const redis = await RedisServer.start(t);
  const add = (name: string) => member(t, dir, name, redis, shaping, target);
  return { redis, members: await Promise.all(names.map(add)), add };
}

/** A backend that streams bytes to every client until it goes away. */
async function streamer(t: TestContext): Promise<string> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const { address } = await rawServer(
    t,
    (s) => {
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    },
    { allowHalfOpen: false },
  );
  return address;
}

interface Download {
  bytes: number;
  closed: boolean;
  socket: net.Socket;
}

async function download(t: TestContext, port: number): Promise<Download> {
  const socket = await connect(port);
  const d: Download = { bytes: 0, closed: false, socket };
  socket.on('data', (b: Buffer) => (d.bytes += b.length));
  socket.on('close', () => (d.closed = true));
  socket.on('error', () => {});
  t.after(() => socket.destroy());
  return d;
}

const shareOf = (view: FleetView, scope: string) => view.shares.find((s) => s.scope === scope)?.share;
const near = (x: number | undefined, want: number, tol = 0.02) => x !== undefined && Math.abs(x - want) <= tol;

/** Connects and echoes one line: true if the proxy admitted the connection, false if it closed it. */
async function admitted(port: number, sockets: net.Socket[]): Promise<boolean> {
  const s = await connect(port);
  s.on('error', () => {});
  const got = await new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`port ${port}: neither an echo nor a close within 5 s`)), 5000);
    const refused = () => (clearTimeout(timer), resolve(false));
    s.once('data', () => (clearTimeout(timer), resolve(true)));
    // A refusal is a FIN when the proxy closes before our bytes arrive (the RST for them then goes
    // unseen by a half-open socket), an RST otherwise.
    s.once('end', refused);
    s.once('close', refused);
    s.write('hello\n');
  });
  if (got) sockets.push(s);
  else s.destroy();
  return got;
}

test('maxConnections holds across the fleet, and a closed connection frees its slot for any instance', async (t) => {
  if (!haveRedis()) return t.skip(NO_REDIS);
  const shaping = { tiers: { gold: { maxConnections: 4 } }, customers: [{ id: 'acme', tier: 'gold', match: {} }] };
  const [a, b] = (await fleet(t, ['a', 'b'], shaping, (await backendFor(t, 'echo')).address)).members as [Member, Member];
  await waitFor(async () => (await a.cluster()).members.filter((m) => m.live).length === 2, 5000, 'two members');

  const open: net.Socket[] = [];
  t.after(() => open.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) assert.equal(await admitted(a.port, open), true, `a: connection ${i + 1} of 4`);
  assert.equal(await admitted(b.port, open), true, 'b: connection 4 of 4');
  assert.equal(await admitted(b.port, open), false, 'b: a 5th connection of the customer is refused');
  assert.equal(await admitted(a.port, open), false, 'a: and so it is here');

  open.shift()!.destroy(); // one of a's
  await waitFor(() => admitted(b.port, open), 3000, 'b admits once a connection of a closed');
  assert.equal(await admitted(a.port, open), false, 'the fleet is full again');
  const closed = await a.child.waitLog((l: Log) => l['msg'] === 'connection closed' && l['reason'] === 'rejected');
  assert.equal(closed['customer'] ?? 'acme', 'acme');
});

test('each instance gets a share of the customer cap in proportion to its connections that want more', async (t) => {
  if (!haveRedis()) return t.skip(NO_REDIS);
  const shaping = { tiers: { gold: { customer: { down: '256KiB/s' } } }, customers: [{ id: 'acme', tier: 'gold', match: {} }] };
  const [a, b] = (await fleet(t, ['a', 'b'], shaping, await streamer(t))).members as [Member, Member];

  const downloads = [await download(t, a.port), ...(await Promise.all([1, 2, 3].map(() => download(t, b.port))))];
  await waitFor(async () => near(shareOf(await a.cluster(), 'customer:acme:down'), 0.25), 5000, 'a\'s share 1/4');
  const share = await waitFor(async () => {
    const view = (await b.cluster()).shares.find((x) => x.scope === 'customer:acme:down');
    return view && view.demand === 3 && view.fleetDemand === 4 && near(view.share, 0.75) ? view : undefined;
  }, 5000, 'b\'s share 3/4 for 3 of the fleet\'s 4 wanting connections');
  assert.equal(share!.held, 0, 'no connection cap holds them');
  // the same for an operator: shaper-proxy ctl fleet (a snapshot: a download may be between reads)
  const ctl = cliFor(t, ['ctl', 'fleet', '--admin', `http://127.0.0.1:${b.admin}`]);
  assert.equal(await ctl.exited, 0, ctl.stderr);
  assert.match(ctl.stdout, /^instance b, redis redis:\/\/127\.0\.0\.1:\d+\/? up since /);
  assert.match(ctl.stdout, /^b \(this one\)\s+live\s+\d+ms/m);
  assert.match(ctl.stdout, /^a\s+live/m);
  assert.match(ctl.stdout, /^customer:acme:down\s+[0-3]\s+0\s+[0-4]\s+0\s+[01]\.\d{3}$/m);

  // b's downloads stop wanting: a takes the whole cap.
  for (const d of downloads.slice(1)) d.socket.destroy();
  await waitFor(async () => near(shareOf(await a.cluster(), 'customer:acme:down'), 1), 5000, 'a takes the whole cap');
  assert.ok(downloads[0]!.bytes > 0);
});

test('an admin change on one instance reaches the others, and stays in Redis for an instance that starts later', async (t) => {
  if (!haveRedis()) return t.skip(NO_REDIS);
  const shaping = {
    tiers: { free: { connection: { down: '1mbit' } }, gold: { connection: { down: '100mbit' } } },
    customers: [{ id: 'acme', tier: 'free', match: {} }],
  };
  const f = await fleet(t, ['a', 'b'], shaping, (await backendFor(t, 'echo')).address);
  const [a, b] = f.members as [Member, Member];

  const put = await a.send('PUT', '/tiers/gold', { connection: { down: '200mbit' }, maxConnections: 50 });
  assert.equal(put.status, 200);
  await waitFor(async () => ((await b.get('/tiers/gold')) as { connection: { down: number } }).connection.down === 25_000_000, 3000, 'the tier change on b');
  assert.equal(((await b.get('/tiers/gold')) as { source: string }).source, 'runtime');

  assert.equal((await b.send('PUT', '/customers/acme', { tier: 'gold', match: {} })).status, 200);
  await waitFor(async () => ((await a.get('/customers/acme')) as { tier: string }).tier === 'gold', 3000, 'the customer move on a');
  assert.equal((await b.send('PUT', '/customers/beta', { tier: 'free', match: { sources: ['10.9.0.0/16'] } })).status, 200);
  await waitFor(async () => (await a.send('GET', '/customers/beta', undefined)).status === 200, 3000, 'the new customer on a');
  assert.equal((await a.send('DELETE', '/customers/beta', undefined)).status, 200);
  await waitFor(async () => (await b.send('GET', '/customers/beta', undefined)).status === 404, 3000, 'the deletion on b');

  const c = await f.add('c');
  await waitFor(async () => ((await c.get('/customers/acme')) as { tier: string }).tier === 'gold', 3000, 'c adopts the fleet\'s changes');
  assert.equal(((await c.get('/tiers/gold')) as { maxConnections: number }).maxConnections, 50);
  await c.child.waitLog((l: Log) => l['msg'] === 'cluster: tiers and customers updated from the fleet');
});

test('Redis killed mid-transfer: traffic goes on alone, logged once; Redis back: the fleet shares again', async (t) => {
  if (!haveRedis()) return t.skip(NO_REDIS);
  const shaping = { tiers: { gold: { customer: { down: '512KiB/s' } } }, customers: [{ id: 'acme', tier: 'gold', match: {} }] };
  const { redis, members } = await fleet(t, ['a', 'b'], shaping, await streamer(t));
  const [a, b] = members as [Member, Member];
  const da = await download(t, a.port);
  const db = await download(t, b.port);
  await waitFor(async () => near(shareOf(await a.cluster(), 'customer:acme:down'), 0.5), 5000, 'a shares half');

  await redis.stop();
  await waitFor(async () => (await a.cluster()).redis.state === 'down', 3000, 'a sees redis down');
  const before = da.bytes + db.bytes;
  await waitFor(() => da.bytes + db.bytes > before + 256 * 1024, 5000, 'bytes still flowing with redis down');
  assert.equal(da.closed || db.closed, false, 'no download was cut');
  const view = await a.cluster();
  assert.equal(view.fallback, true);
  assert.ok(near(shareOf(view, 'customer:acme:down'), 0.5), 'the last known share stays in force');
  const metrics = await (await fetch(`http://127.0.0.1:${a.admin}/metrics`)).text();
  assert.match(metrics, /^shaper_cluster_redis_up 0$/m);
  // a new connection while Redis is away is served too
  const echoAlone = await download(t, a.port);
  await waitFor(() => echoAlone.bytes > 0, 3000, 'a new download with redis down');

  await new Promise((r) => setTimeout(r, 500)); // a few failed reconnects: still one log line
  assert.equal(a.child.logs.filter((l) => String(l['msg']).startsWith('cluster: redis unreachable')).length, 1, 'logged once');

  await redis.start();
  await waitFor(async () => (await a.cluster()).redis.state === 'up' && (await b.cluster()).redis.state === 'up', 5000, 'both rejoin');
  // a now has 2 wanting downloads, b 1: shares 2/3 and 1/3 again
  await waitFor(async () => near(shareOf(await a.cluster(), 'customer:acme:down'), 2 / 3) && near(shareOf(await b.cluster(), 'customer:acme:down'), 1 / 3), 5000, 'shares back after redis returns');
  assert.equal(da.closed || db.closed || echoAlone.closed, false);
  assert.ok(a.child.logs.some((l) => l['msg'] === 'cluster: connected to redis, sharing caps with the fleet'));
});

test('two processes under one instance id: the mistake is logged', async (t) => {
  if (!haveRedis()) return t.skip(NO_REDIS);
  const [one, two] = (await fleet(t, ['same', 'same'], {}, (await backendFor(t, 'echo')).address)).members as [Member, Member];
  const said = (c: Child) => c.logs.some((l) => String(l['msg']).startsWith('cluster: another running process uses this instance id'));
  await waitFor(() => said(one.child) || said(two.child), 5000, 'the duplicate id logged');
});
