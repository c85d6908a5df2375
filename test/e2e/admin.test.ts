/**
 * The admin API for tiers, customers and connections over real sockets: shapes of the answers,
 * 400s that change nothing, live connections following a change, the state file, reloads, and
 * `shaper-proxy ctl` as a child process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCtl } from '../../src/ctl.js';
import { app, backendFor, config, connect, ctl, freePort, pattern, proxyFor, readAll, sha256, tempDir, tier, waitFor, type TestProxy } from '../helpers.js';

const U = Infinity;
const ADMIN = { host: '127.0.0.1', port: 0 };
interface Answer {
  status: number;
  body: any;
}

async function api(proxy: TestProxy, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}${path}`, {
    method,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await res.json() };
}

const tiers = () => ({
  free: tier('free', { connection: { down: 200_000, up: U }, maxConnections: 10 }),
  gold: tier('gold', { connection: { down: 50_000_000, up: U }, weight: 3 }),
});
const acme = (tierName: string) => ({ id: 'acme', tier: tierName, match: { sources: ['127.0.0.0/8'] } });

test('GET, PUT and DELETE of tiers and customers; the answers\' shapes', async (t) => {
  const b = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), customers: [acme('free')] }));

  const list = await api(proxy, 'GET', '/tiers');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body[0], {
    name: 'free',
    source: 'config',
    rtt: 50,
    weight: 1,
    connection: { down: 200_000, up: 'unlimited' },
    customer: { down: 'unlimited', up: 'unlimited' },
    total: { down: 'unlimited', up: 'unlimited' },
    maxConnections: 10,
    connectionRate: null,
    customers: 1,
    connections: 0,
  });
  assert.deepEqual(list.body.map((x: { name: string }) => x.name), ['free', 'gold']);

  const put = await api(proxy, 'PUT', '/tiers/silver', { rtt: '20ms', connection: { down: '8mbit', up: '1mbit', burst: '64KiB' }, connectionRate: '5/s' });
  assert.equal(put.status, 200);
  assert.deepEqual(
    { ...put.body, connection: put.body.connection },
    {
      name: 'silver',
      source: 'runtime',
      rtt: 20,
      weight: 1,
      connection: { down: 1_000_000, up: 125_000, burstDown: 65_536, burstUp: 65_536 },
      customer: { down: 'unlimited', up: 'unlimited' },
      total: { down: 'unlimited', up: 'unlimited' },
      maxConnections: null,
      connectionRate: { count: 5, per: 1000 },
      customers: 0,
      connections: 0,
    },
  );
  assert.equal((await api(proxy, 'GET', '/tiers/silver')).body.source, 'runtime');
  assert.equal((await api(proxy, 'GET', '/tiers/nope')).status, 404);

  const customers = await api(proxy, 'GET', '/customers');
  assert.deepEqual(customers.body, [{ id: 'acme', tier: 'free', match: { sources: ['127.0.0.0/8'] }, source: 'config', dynamic: false, connections: 0 }]);
  const bob = await api(proxy, 'PUT', '/customers/bob', { tier: 'silver', match: { apps: ['web'], ports: [5001] } });
  assert.equal(bob.status, 200);
  assert.deepEqual(bob.body, { id: 'bob', tier: 'silver', match: { apps: ['web'], ports: [5001] }, source: 'runtime', dynamic: false, connections: 0 });
  assert.equal((await api(proxy, 'GET', '/customers/bob')).body.tier, 'silver');
  assert.deepEqual(proxy.config.customers.map((c) => c.id), ['acme', 'bob']);
  assert.equal(proxy.shaper.customers.get('bob')!.tier, 'silver');

  assert.deepEqual((await api(proxy, 'DELETE', '/customers/acme')).body, { deleted: 'acme' });
  assert.deepEqual((await api(proxy, 'DELETE', '/customers/bob')).body, { deleted: 'bob' });
  assert.equal((await api(proxy, 'DELETE', '/customers/bob')).status, 404);
  assert.deepEqual((await api(proxy, 'GET', '/customers')).body, []);
  assert.equal(proxy.shaper.customers.size, 0);
  // The config as loaded is untouched; the state holds a deletion marker for acme only.
  assert.deepEqual(proxy.baseConfig.customers.map((c) => c.id), ['acme']);
  assert.deepEqual(proxy.store.runtime.customers, { acme: null });
});

test('invalid bodies get 400 with the key path, and nothing changes', async (t) => {
  const b = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), customers: [acme('free')] }));
  const before = { tiers: (await api(proxy, 'GET', '/tiers')).body, customers: (await api(proxy, 'GET', '/customers')).body };
  const config0 = proxy.config;

  const cases: [string, string, unknown, RegExp][] = [
    ['PUT', '/tiers/free', { connection: { down: 'fast' } }, /^tiers\.free\.connection\.down: "fast" is not a rate/],
    ['PUT', '/tiers/free', { conection: {} }, /^tiers\.free\.conection: unknown key \(did you mean "connection"\?\)/],
    ['PUT', '/tiers/free', [1], /^tiers\.free: must be an object/],
    ['PUT', '/tiers/free', undefined, /^tiers\.free: must be an object/],
    ['PUT', '/tiers/bad%20name', {}, /^tiers\["bad name"\]: "bad name" is not a valid tier name/],
    ['PUT', '/tiers/free', '{"connection": ', /^body is not JSON/],
    ['PUT', '/customers/acme', { tier: 'platinum', match: {} }, /^customers\.acme\.tier: "platinum" is not a tier \(tiers: free, gold\)/],
    ['PUT', '/customers/acme', { tier: 'gold', match: { sources: ['10.0.0.0/33'] } }, /^customers\.acme\.match\.sources\[0\]: /],
    ['PUT', '/customers/acme', { tier: 'gold', match: { apps: ['api'] } }, /^customers\.acme\.match\.apps\[0\]: no app named "api"/],
    ['PUT', '/customers/acme', { tier: 'gold' }, /^customers\.acme\.match: required/],
    ['PUT', '/customers/acme', { tier: 'gold', match: {}, extra: 1 }, /^customers\.acme\.extra: unknown key/],
    ['PUT', '/customers/acme', { id: 'other', tier: 'gold', match: {} }, /^customers\.acme\.id: "other" differs/],
  ];
  for (const [method, path, body, error] of cases) {
    const r = await api(proxy, method, path, body);
    assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error, error);
  }
  assert.equal((await api(proxy, 'DELETE', '/customers/nobody')).status, 404);
  assert.equal((await api(proxy, 'PATCH', '/tiers/free', {})).status, 405);

  assert.deepEqual((await api(proxy, 'GET', '/tiers')).body, before.tiers);
  assert.deepEqual((await api(proxy, 'GET', '/customers')).body, before.customers);
  assert.equal(proxy.config, config0);
  assert.deepEqual(proxy.store.runtime.tiers, {});
  assert.deepEqual(proxy.store.runtime.customers, {});
});

test('PUT /tiers raising a rate speeds up a live download without reconnecting', async (t) => {
  const size = 3_000_000;
  const b = await backendFor(t, 'source', { sourceBytes: size });
  const proxy = await proxyFor(t, config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), defaultTier: 'free' }), { backends: [b] });
  const s = await connect(proxy.portOf('web'));
  const got = readAll(s);
  await waitFor(() => proxy.connections.size === 1 && [...proxy.connections][0]!.bytesDown > 0, 3000, 'download to start');

  const live = await api(proxy, 'GET', '/connections');
  assert.equal(live.body.length, 1);
  const conn = live.body[0];
  assert.equal(conn.customer, '127.0.0.1');
  assert.equal(conn.tier, 'free');
  assert.equal((await api(proxy, 'GET', '/customers')).body[0].dynamic, true);
  assert.equal((await api(proxy, 'GET', '/tiers/free')).body.connections, 1);

  // Shaped so far: nowhere near done (unshaped, loopback would have delivered it all by now).
  const live0 = [...proxy.connections][0]!;
  assert.ok(live0.bytesDown < size / 2);
  const downNode = live0.shaped!.streams!.down.node;
  assert.equal(downNode.bucket!.rate, 200_000);
  const r = await api(proxy, 'PUT', '/tiers/free', { connection: { down: '50MB/s' } });
  assert.equal(r.status, 200);
  // The live connection's own bucket now runs at the new rate (the speed-up is the bench's: shaping case 5).
  assert.equal(downNode.bucket!.rate, 50_000_000);
  const data = await got;
  s.destroy();
  assert.equal(sha256(data), sha256(pattern(size)));
  assert.equal(b.accepted, 1); // no reconnect
});

test('PUT /customers moving a customer to gold: its live connection follows; GET /connections shows it', async (t) => {
  const size = 3_000_000;
  const b = await backendFor(t, 'source', { sourceBytes: size });
  const proxy = await proxyFor(t, config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), customers: [acme('free')] }), { backends: [b] });
  const s = await connect(proxy.portOf('web'));
  const got = readAll(s);
  await waitFor(() => proxy.connections.size === 1 && [...proxy.connections][0]!.bytesDown > 0, 3000, 'download to start');

  const list = (await api(proxy, 'GET', '/connections')).body;
  assert.equal(list.length, 1);
  const c = list[0];
  assert.deepEqual(Object.keys(c).sort(), ['app', 'bytesDown', 'bytesUp', 'client', 'clientCert', 'customer', 'dataPlane', 'durationMs', 'id', 'rateDown', 'rateUp', 'sni', 'started', 'target', 'tier'].sort());
  assert.equal(c.dataPlane, [...proxy.connections][0]!.dataPlane);
  assert.equal(c.app, 'web');
  assert.equal(c.target, b.address);
  assert.equal(c.customer, 'acme');
  assert.equal(c.tier, 'free');
  assert.match(c.client, /^127\.0\.0\.1:\d+$/);
  assert.ok(!Number.isNaN(Date.parse(c.started)));
  for (const k of ['durationMs', 'bytesUp', 'bytesDown', 'rateUp', 'rateDown']) assert.equal(typeof c[k], 'number', k);
  assert.ok(c.bytesDown > 0 && c.rateDown > 0, JSON.stringify(c));

  const live0 = [...proxy.connections][0]!;
  assert.ok(live0.bytesDown < size / 2);
  const downNode = live0.shaped!.streams!.down.node;
  assert.equal(downNode.bucket!.rate, 200_000);
  const r = await api(proxy, 'PUT', '/customers/acme', { tier: 'gold', match: { sources: ['127.0.0.0/8'] } });
  assert.equal(r.status, 200);
  assert.equal(r.body.connections, 1);
  assert.equal(proxy.shaper.customers.get('acme')!.tier, 'gold');
  // The live connection follows: gold's connection cap on its own bucket, under gold's tier node.
  assert.equal(downNode.bucket!.rate, 50_000_000);
  assert.equal(downNode.parent?.parent, proxy.shaper.tiers.get('gold')!.nodes.down);
  const data = await got;
  s.destroy();
  assert.equal(sha256(data), sha256(pattern(size)));
  assert.equal(b.accepted, 1);
});

test('changes go to the state file (atomically) and a new proxy on the same file re-applies them', async (t) => {
  const dir = await tempDir(t, 'shaper-admin-');
  const stateFile = join(dir, 'proxy.state.json');
  const b = await backendFor(t, 'echo');
  const cfg = () => config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), customers: [acme('free')], stateFile });

  const first = await proxyFor(t, cfg());
  assert.equal((await api(first, 'PUT', '/tiers/gold', { connection: { down: '1gbit' } })).status, 200);
  assert.equal((await api(first, 'PUT', '/tiers/platinum', { connection: { down: '10gbit' } })).status, 200);
  assert.equal((await api(first, 'PUT', '/customers/bob', { tier: 'platinum', match: { sources: ['10.9.0.0/16'] } })).status, 200);
  assert.equal((await api(first, 'DELETE', '/customers/acme')).status, 200);
  await first.stop();
  const saved = JSON.parse(await readFile(stateFile, 'utf8'));
  assert.deepEqual(saved, {
    version: 1,
    tiers: { gold: { connection: { down: '1gbit' } }, platinum: { connection: { down: '10gbit' } } },
    customers: { bob: { tier: 'platinum', match: { sources: ['10.9.0.0/16'] } }, acme: null },
    configTiers: ['free', 'gold'],
  });
  // No temp files left (the counters file may sit beside the state file).
  assert.deepEqual((await readdir(dir)).filter((f) => f !== 'proxy.stats.json'), ['proxy.state.json']);

  const second = await proxyFor(t, cfg());
  const byName = Object.fromEntries((await api(second, 'GET', '/tiers')).body.map((x: { name: string }) => [x.name, x]));
  assert.equal(byName.gold.source, 'runtime');
  assert.equal(byName.gold.connection.down, 125_000_000);
  assert.equal(byName.platinum.connection.down, 1_250_000_000);
  assert.equal(byName.free.source, 'config');
  assert.deepEqual((await api(second, 'GET', '/customers')).body.map((c: { id: string }) => c.id), ['bob']);
  assert.equal(second.shaper.customers.get('bob')!.tier, 'platinum');
  assert.equal(second.shaper.customers.has('acme'), false);
});

test('a change that cannot be saved answers 500 SHAPER_ERR_STATE, saying it is in force but not kept', async (t) => {
  const dir = await tempDir(t, 'shaper-admin-');
  await writeFile(join(dir, 'not-a-dir'), '');
  const b = await backendFor(t, 'echo');
  const stateFile = join(dir, 'not-a-dir', 'state.json');
  const proxy = await proxyFor(t, config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), stateFile }));
  const r = await api(proxy, 'PUT', '/tiers/gold', { connection: { down: '1gbit' } });
  assert.equal(r.status, 500);
  assert.equal(r.body.code, 'SHAPER_ERR_STATE');
  assert.match(r.body.error, /cannot write the state file .*not-a-dir.*the change is in force but will be lost at restart/);
  assert.equal(proxy.config.tiers['gold']!.connection.down, 125_000_000);
});

test('a reload keeps runtime changes unless the new config removes their tier', async (t) => {
  const dir = await tempDir(t, 'shaper-admin-');
  const stateFile = join(dir, 'state.json');
  const b = await backendFor(t, 'echo');
  const apps = [app('web', [b.address])];
  const withSilver = () => config(apps, { admin: ADMIN, tiers: { ...tiers(), silver: tier('silver') }, customers: [acme('free')], stateFile });
  const proxy = await proxyFor(t, withSilver());
  await api(proxy, 'PUT', '/tiers/silver', { connection: { down: '4mbit' } });
  await api(proxy, 'PUT', '/tiers/platinum', { connection: { down: '1gbit' } });
  await api(proxy, 'PUT', '/customers/bob', { tier: 'silver', match: { sources: ['10.2.0.0/16'] } });
  await api(proxy, 'PUT', '/customers/acme', { tier: 'platinum', match: { sources: ['127.0.0.0/8'] } });

  // The same config again: everything stays.
  proxy.reload(withSilver());
  const names = async () => (await api(proxy, 'GET', '/tiers')).body.map((x: { name: string; source: string }) => `${x.name}:${x.source}`);
  assert.deepEqual(await names(), ['free:config', 'gold:config', 'silver:runtime', 'platinum:runtime']);
  assert.equal(proxy.config.tiers['silver']!.connection.down, 500_000);
  assert.deepEqual(proxy.config.customers.map((c) => `${c.id}:${c.tier}`), ['acme:platinum', 'bob:silver']);

  // A config without silver: its override and bob go; platinum (runtime-only) and acme's move stay.
  proxy.reload(config(apps, { admin: ADMIN, tiers: tiers(), customers: [acme('free')], stateFile }));
  assert.deepEqual(await names(), ['free:config', 'gold:config', 'platinum:runtime']);
  assert.deepEqual(proxy.config.customers.map((c) => `${c.id}:${c.tier}`), ['acme:platinum']);
  assert.equal(proxy.shaper.customers.has('bob'), false);
  assert.equal(proxy.shaper.tiers.has('silver'), false);
  await proxy.store.flush();
  const saved = JSON.parse(await readFile(stateFile, 'utf8'));
  assert.deepEqual(Object.keys(saved.tiers), ['platinum']);
  assert.deepEqual(Object.keys(saved.customers), ['acme']);

  // Adding silver back does not bring the old override back.
  proxy.reload(withSilver());
  assert.equal((await api(proxy, 'GET', '/tiers/silver')).body.source, 'config');
});

test('ctl as a child process: a table of tiers, --json, moving a customer to another tier', async (t) => {
  const b = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), customers: [acme('free')] }));
  const url = `http://127.0.0.1:${proxy.adminPort}`;

  const [tiersTable, customersJson, moved] = await Promise.all([
    ctl(['tiers', '--admin', url]),
    ctl(['customers', '--json'], { SHAPER_ADMIN_URL: url }),
    ctl(['customer', 'acme', '--tier', 'gold', '--admin', url]),
  ]);
  assert.equal(tiersTable.code, 0, tiersTable.stderr);
  const lines = tiersTable.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^NAME\s+SOURCE\s+CONN-DOWN/);
  assert.match(lines[1]!, /^free\s+config\s+1\.6mbit\s+unlimited/);
  assert.match(lines[2]!, /^gold\s+config\s+400mbit/);

  assert.equal(customersJson.code, 0, customersJson.stderr);
  assert.equal(JSON.parse(customersJson.stdout)[0].id, 'acme');

  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, /customer acme saved/);
  const acmeNow = (await api(proxy, 'GET', '/customers/acme')).body;
  assert.equal(acmeNow.tier, 'gold');
  assert.deepEqual(acmeNow.match, { sources: ['127.0.0.0/8'] }); // its match stayed
  assert.equal(proxy.shaper.customers.get('acme')!.tier, 'gold');

  const refused = await ctl(['customer', 'acme', '--tier', 'platinum', '--admin', url]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^shaper-proxy ctl: customers\.acme\.tier: "platinum" is not a tier/);
});

/** runCtl in this process, its output captured (quicker than a child for the finer points). */
async function ctlHere(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = { code: 0, stdout: '', stderr: '' };
  r.code = await runCtl(args, {}, { stdout: (s) => void (r.stdout += s), stderr: (s) => void (r.stderr += s) });
  return r;
}

test('ctl: a tier from a file, creating and deleting a customer, connections, and errors', async (t) => {
  const b = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [b.address])], { admin: ADMIN, tiers: tiers(), customers: [acme('free')] }));
  const url = `http://127.0.0.1:${proxy.adminPort}`;
  const dir = await tempDir(t, 'shaper-admin-');

  const file = join(dir, 'silver.json');
  await writeFile(file, JSON.stringify({ connection: { down: '10mbit', up: '2mbit' } }));
  const fromFile = await ctlHere(['tier', 'silver', '--file', file, '--json', '--admin', url]);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.equal(JSON.parse(fromFile.stdout).connection.down, 1_250_000);
  assert.equal((await api(proxy, 'GET', '/tiers/silver')).body.source, 'runtime');

  const created = await ctlHere(['customer', 'bob', '--tier', 'silver', '--source', '10.1.0.0/16', '--port', '5001', '--admin', url]);
  assert.equal(created.code, 0, created.stderr);
  assert.deepEqual((await api(proxy, 'GET', '/customers/bob')).body.match, { sources: ['10.1.0.0/16'], ports: [5001] });
  const shown = await ctlHere(['customer', 'bob', '--admin', url]);
  assert.match(shown.stdout, /^ID\s+TIER\s+SOURCE\s+MATCH\s+CONNECTIONS\nbob\s+silver\s+runtime\s+sources=10\.1\.0\.0\/16 ports=5001\s+0\n$/);

  const deleted = await ctlHere(['customer', 'bob', '--delete', '--admin', url]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, 'customer bob deleted\n');
  assert.equal((await api(proxy, 'GET', '/customers/bob')).status, 404);

  const s = await connect(proxy.portOf('web'));
  t.after(() => s.destroy());
  await waitFor(() => proxy.connections.size === 1 && [...proxy.connections][0]!.target, 3000, 'a connection');
  const conns = await ctlHere(['connections', '--admin', url]);
  assert.match(conns.stdout, /^ID\s+CLIENT\s+APP\s+TARGET\s+CUSTOMER\s+TIER\s+AGE/);
  assert.match(conns.stdout.split('\n')[1]!, new RegExp(`127\\.0\\.0\\.1:\\d+\\s+web\\s+${b.address.replace(/\./g, '\\.')}\\s+acme\\s+free`));

  await writeFile(join(dir, 'bad.json'), JSON.stringify({ connection: { down: 'fast' } }));
  const badFile = await ctlHere(['tier', 'gold', '--file', join(dir, 'bad.json'), '--admin', url]);
  assert.equal(badFile.code, 1);
  assert.match(badFile.stderr, /tiers\.gold\.connection\.down: "fast" is not a rate/);
  assert.equal(proxy.config.tiers['gold']!.connection.down, 50_000_000);

  const missing = await ctlHere(['customer', 'nobody', '--tier', 'gold', '--admin', url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /customer "nobody" does not exist; to create it give --tier and its match/);

  const usage = await ctlHere(['tiers', '--bogus']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /Unknown option '--bogus'[\s\S]*Usage: shaper-proxy ctl/);
  const noFile = await ctlHere(['tier', 'gold', '--file', join(dir, 'none.json'), '--admin', url]);
  assert.equal(noFile.code, 1);
  assert.match(noFile.stderr, /--file: cannot read .*none\.json/);
});

test('ctl against a closed port exits 1 and says which URL and what to check', async () => {
  const port = await freePort();
  const r = await ctl(['tiers'], { SHAPER_ADMIN_URL: `http://127.0.0.1:${port}` });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`cannot connect to the admin API at http://127\\.0\\.0\\.1:${port}/ \\(connection refused\\): is the proxy running`));
});
