/**
 * Admin roles over real sockets: every route × every role (403 with a code, nothing changed, for a
 * role that may not); DELETE /connections/:id; DELETE /tiers/:name (409 while in use, the marker
 * in the state file, a restart keeps it); the drain (listeners closed, /ready 503, open connections
 * go on, undrain); the config of tokens; admin.tls; `shaper-proxy ctl` with each role, over HTTPS too.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { AdminConfig, ProxyConfig } from '../../src/config/types.js';
import { app, backendFor, cliFor, config, connect, ctl, echoesExactly, freePort, pemFile, proxyFor, readAll, TEST_CA, tempDir, tier, TLS_DIR, waitFor, type TestProxy } from '../helpers.js';

const READ = 'read-token-0123456789';
const OPERATE = 'operate-token-0123456789';
const ADMIN = 'admin-token-0123456789';
const TOKENS: AdminConfig['tokens'] = [
  { token: READ, role: 'read' },
  { token: OPERATE, role: 'operate' },
];
const ROLES = [
  ['read', READ],
  ['operate', OPERATE],
  ['admin', ADMIN],
] as const;
type Role = (typeof ROLES)[number][0];
const RANK: Record<Role, number> = { read: 0, operate: 1, admin: 2 };

interface Answer {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** One admin request (http or https, trusting the test CA), JSON in and out. */
function call(proxy: TestProxy, method: string, p: string, token?: string, body?: unknown, scheme: 'http' | 'https' = 'http'): Promise<Answer> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const headers = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(data ? { 'content-type': 'application/json' } : {}) };
  return new Promise((resolve, reject) => {
    const req = (scheme === 'https' ? https : http).request({ host: '127.0.0.1', port: proxy.adminPort, method, path: p, ca: TEST_CA, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // the dashboard page, the metrics
        }
        resolve({ status: res.statusCode!, body: parsed, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A proxy with three roles' tokens, tiers free (defaultTier, acme's), gold and spare, and one open echo connection. */
async function rolesProxy(t: TestContext, extra: Partial<ProxyConfig> = {}, adminExtra: Partial<AdminConfig> = {}) {
  const backend = await backendFor(t, 'echo');
  const cfg = config([app('web', [backend.address])], {
    admin: { host: '127.0.0.1', port: 0, token: ADMIN, tokens: TOKENS, ...adminExtra },
    tiers: { free: tier('free'), gold: tier('gold'), spare: tier('spare') },
    customers: [{ id: 'acme', tier: 'free', match: { sources: ['10.0.0.0/8'] } }],
    defaultTier: 'free',
    ...extra,
  });
  const proxy = await proxyFor(t, cfg, { backends: [backend] });
  const client = await connect(proxy.portOf('web'));
  t.after(() => client.destroy());
  await echoesExactly(client, Buffer.from('hello'));
  return { proxy, backend, client, id: [...proxy.connections][0]!.id };
}

/** What a forbidden request must leave as it was. */
function state(proxy: TestProxy): string {
  return JSON.stringify({ tiers: proxy.config.tiers, customers: proxy.config.customers, runtime: proxy.store.runtime, open: proxy.connections.size, draining: proxy.acceptor.draining });
}

test('every route × every role: a role that may not gets 403 SHAPER_ERR_ADMIN_FORBIDDEN and nothing changes', async (t) => {
  const { proxy, client, id } = await rolesProxy(t);
  const ended = readAll(client);
  const routes: [method: string, path: string, body: unknown, needs: Role][] = [
    ['GET', '/health', undefined, 'read'],
    ['GET', '/ready', undefined, 'read'],
    ['GET', '/status', undefined, 'read'],
    ['GET', '/stats', undefined, 'read'],
    ['GET', '/metrics', undefined, 'read'],
    ['GET', '/', undefined, 'read'],
    ['GET', '/tiers', undefined, 'read'],
    ['GET', '/tiers/free', undefined, 'read'],
    ['GET', '/customers', undefined, 'read'],
    ['GET', '/customers/acme', undefined, 'read'],
    ['GET', '/connections', undefined, 'read'],
    ['POST', '/drain', undefined, 'operate'],
    ['POST', '/undrain', undefined, 'operate'],
    ['POST', '/reload', undefined, 'operate'],
    ['PUT', '/tiers/gold', { connection: { down: '8mbit' } }, 'admin'],
    ['PUT', '/customers/beta', { tier: 'gold', match: { sources: ['10.9.0.0/16'] } }, 'admin'],
    ['DELETE', '/customers/beta', undefined, 'admin'],
    ['DELETE', '/tiers/spare', undefined, 'admin'],
    ['DELETE', `/connections/${id}`, undefined, 'operate'],
  ];
  for (const [method, p, body, needs] of routes) {
    for (const [role, token] of ROLES) {
      if (RANK[role] >= RANK[needs]) continue;
      const before = state(proxy);
      const a = await call(proxy, method, p, token, body);
      const what = `${role} ${method} ${p}`;
      assert.equal(a.status, 403, what);
      assert.equal(a.body.code, 'SHAPER_ERR_ADMIN_FORBIDDEN', what);
      assert.equal(a.body.error, `the token's role "${role}" may not ${method} ${p.replace(/\/(gold|beta|spare|\d+)$/, (_m, x: string) => `/${/^\d+$/.test(x) ? ':id' : p.startsWith('/tiers') ? ':name' : ':id'}`)} (that needs "${needs}")`, what);
      assert.equal(a.headers['connection'], 'close', `${what}: the body is never read`);
      assert.equal(state(proxy), before, `${what}: nothing changed`);
    }
    // The roles that may: past the role check. (A DELETE done once is a 404 the next time; reload
    // of a proxy without a config file is a 400.)
    for (const [role, token] of ROLES) {
      if (RANK[role] < RANK[needs]) continue;
      const a = await call(proxy, method, p, token, body);
      const what = `${role} ${method} ${p}: ${JSON.stringify(a.body).slice(0, 200)}`;
      if (p === '/reload') assert.equal(a.status, 400, what);
      else if (method === 'DELETE' && RANK[role] > RANK[needs]) assert.equal(a.status, 404, what);
      else assert.equal(a.status, 200, what);
    }
  }
  // What the allowed ones did.
  assert.equal(proxy.config.tiers['gold']!.connection.down, 1e6);
  assert.deepEqual(Object.keys(proxy.config.tiers).sort(), ['free', 'gold']);
  assert.equal(proxy.acceptor.draining, false);
  await ended;
  await waitFor(() => proxy.closedByReason.get('killed') === 1, 2000, 'the killed connection');
});

test('DELETE /connections/:id closes that connection with reason killed, and only it; an unknown id is 404', async (t) => {
  const { proxy, client, id } = await rolesProxy(t);
  const other = await connect(proxy.portOf('web'));
  t.after(() => other.destroy());
  await echoesExactly(other, Buffer.from('other'));
  assert.equal((await call(proxy, 'DELETE', '/connections/999999', OPERATE)).status, 404);
  assert.equal((await call(proxy, 'DELETE', '/connections/abc', OPERATE)).body.code, 'SHAPER_ERR_ADMIN_NOT_FOUND');
  const ended = readAll(client);
  const killed = await call(proxy, 'DELETE', `/connections/${id}`, OPERATE);
  assert.equal(killed.status, 200);
  assert.equal(killed.body.killed, id);
  assert.equal(killed.body.app, 'web');
  assert.match(killed.body.client, /^127\.0\.0\.1:\d+$/);
  await ended; // the client sees its connection end
  await waitFor(() => proxy.closedByReason.get('killed') === 1, 2000, 'close reason killed');
  await echoesExactly(other, Buffer.from('still here'));
  assert.equal(proxy.connections.size, 1);
});

test('DELETE /tiers/:name: 409 while a customer, defaultTier or a connection uses it; a config tier is deleted with a marker a restart keeps', async (t) => {
  const dir = await tempDir(t);
  const stateFile = path.join(dir, 'state.json');
  const extra = { stateFile, defaultTier: 'gold', global: { down: 100e6, up: Infinity } };
  const { proxy } = await rolesProxy(t, extra);
  const conflict = async (name: string, why: RegExp) => {
    const a = await call(proxy, 'DELETE', `/tiers/${name}`, ADMIN);
    assert.equal(a.status, 409, name);
    assert.equal(a.body.code, 'SHAPER_ERR_ADMIN_CONFLICT');
    assert.match(a.body.error, why);
    assert.ok(proxy.config.tiers[name], `${name} is still there`);
  };
  await conflict('free', /^tier "free" is in use \(customers acme\): move them to another tier first$/);
  await conflict('gold', /it is defaultTier; 1 open connection\)/);
  assert.equal((await call(proxy, 'DELETE', '/tiers/nope', ADMIN)).status, 404);

  // A tier made at runtime is forgotten; one of the config leaves a marker.
  assert.equal((await call(proxy, 'PUT', '/tiers/extra', ADMIN, { total: { down: '8mbit', min: '4mbit' } })).status, 200);
  assert.deepEqual((await call(proxy, 'DELETE', '/tiers/extra', ADMIN)).body, { deleted: 'extra' });
  assert.deepEqual((await call(proxy, 'DELETE', '/tiers/spare', ADMIN)).body, { deleted: 'spare' });
  assert.equal((await call(proxy, 'GET', '/tiers/spare', READ)).status, 404);
  const saved = JSON.parse(await fs.readFile(stateFile, 'utf8'));
  assert.deepEqual(saved.tiers, { spare: null });

  // A minimum that no longer fits under global: 400 by key path, nothing changed.
  const tooMuch = await call(proxy, 'PUT', '/tiers/gold', ADMIN, { total: { min: { down: '900mbit' } } });
  assert.equal(tooMuch.status, 400);
  assert.match(tooMuch.body.error, /^global\.down: the tiers' guaranteed minimums add up to 900 Mbit\/s \(tiers\.gold\.total\.min 900 Mbit\/s\), more than global\.down 800 Mbit\/s/);
  assert.equal(proxy.config.tiers['gold']!.total.minDown, undefined);

  // A restart from the same config and state file: spare stays deleted.
  await proxy.stop();
  const again = await proxyFor(t, proxy.baseConfig);
  assert.deepEqual(Object.keys(again.config.tiers).sort(), ['free', 'gold']);
  assert.ok(again.baseConfig.tiers['spare'], 'the config still has it; the state deletes it');
});

test('drain: listeners close, /ready answers 503, open connections go on; undrain accepts again', async (t) => {
  const backend = await backendFor(t, 'echo');
  const port = await freePort();
  const proxy = await proxyFor(t, config([{ ...app('web', [backend.address]), ports: [port] }], { admin: { host: '127.0.0.1', port: 0, tokens: TOKENS } }), { backends: [backend] });
  const open = await connect(port);
  t.after(() => open.destroy());
  await echoesExactly(open, Buffer.from('before'));
  assert.equal((await call(proxy, 'GET', '/ready', READ)).status, 200);
  const drained = await call(proxy, 'POST', '/drain', OPERATE);
  assert.deepEqual([drained.status, drained.body], [200, { draining: true, connections: 1 }]);
  const ready = await call(proxy, 'GET', '/ready', READ);
  assert.deepEqual([ready.status, ready.body], [503, { status: 'draining' }]);
  await assert.rejects(connect(port), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  await echoesExactly(open, Buffer.from('the open one goes on'));
  // A reload while draining does not open the ports again.
  proxy.reload(proxy.baseConfig);
  await assert.rejects(connect(port), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  assert.deepEqual((await call(proxy, 'POST', '/drain', OPERATE)).body, { draining: true, connections: 1 }, 'draining twice is draining');

  assert.deepEqual((await call(proxy, 'POST', '/undrain', OPERATE)).body, { draining: false, connections: 1 });
  await waitFor(async () => (await call(proxy, 'GET', '/ready', READ)).status === 200, 3000, 'ready again');
  const after = await connect(port);
  await echoesExactly(after, Buffer.from('after'));
  after.destroy();
  open.destroy();
});

test('admin.tokens in the config: roles, each token once, at least 16 characters; tokens alone are enough off loopback', () => {
  const apps = [{ name: 'web', ports: [5001], targets: ['127.0.0.1:9001'] }];
  const c = parseConfig({ apps, admin: { listen: '0.0.0.0:9900', tokens: [{ token: READ, role: 'read' }] } }, {});
  assert.deepEqual(c.admin, { host: '0.0.0.0', port: 9900, tokens: [{ token: READ, role: 'read' }] });
  assert.throws(
    () =>
      parseConfig(
        {
          apps,
          admin: {
            token: ADMIN,
            tokens: [{ token: 'short', role: 'read' }, { token: READ, role: 'root' }, { token: ADMIN, role: 'read' }, { token: READ, role: 'operate' }, 'x'],
          },
        },
        {},
      ),
    (err: ConfigError) => {
      assert.deepEqual(err.problems, [
        'admin.tokens[0].token: must be a string of at least 16 characters, e.g. from `openssl rand -hex 32` (got 5 characters)',
        'admin.tokens[1].role: "root" is not one of read, operate, admin',
        'admin.tokens[4]: must be an object like {"token": "...", "role": "read"} (got "x")',
        'admin.tokens[2].token: is the same token as admin.token (give each role its own token)',
        'admin.tokens[3].token: is the same token as admin.tokens[1].token (give each role its own token)',
      ]);
      return true;
    },
  );
  assert.throws(() => parseConfig({ apps, admin: { tls: { cert: path.join(TLS_DIR, 'server.pem'), key: path.join(TLS_DIR, 'other-key.pem') } } }, {}), /admin\.tls\.key: ".*other-key\.pem" is not the key of the certificate/);
  assert.throws(() => parseConfig({ apps, admin: { tls: { cert: 'nope.pem' } } }, {}), /admin\.tls\.key: required, the private key file/);
});

test('admin.tls: HTTPS with the roles; plain HTTP is refused; ctl works over it with the CA in NODE_EXTRA_CA_CERTS', async (t) => {
  const { proxy } = await rolesProxy(t, {}, { tls: { cert: pemFile('server'), key: pemFile('server-key') } });
  const ok = await call(proxy, 'GET', '/tiers', READ, undefined, 'https');
  assert.equal(ok.status, 200);
  assert.equal((await call(proxy, 'GET', '/tiers', undefined, undefined, 'https')).status, 401);
  assert.equal((await call(proxy, 'POST', '/drain', READ, undefined, 'https')).body.code, 'SHAPER_ERR_ADMIN_FORBIDDEN');
  // Plain HTTP on the HTTPS port gets no answer of the API.
  const plain = await new Promise<string>((resolve) => {
    const s = net.connect(proxy.adminPort!, '127.0.0.1', () => s.write('GET /tiers HTTP/1.1\r\nhost: x\r\n\r\n'));
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', () => {});
  });
  assert.doesNotMatch(plain, /"name": "free"/);

  // A reload with other certificate files: the next connections get them, on the same port.
  const served = () =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: proxy.adminPort!, servername: 'localhost', rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.destroy();
      });
      s.on('error', reject);
    });
  const port = proxy.adminPort;
  const before = await served();
  proxy.reload({ ...proxy.baseConfig, admin: { ...proxy.baseConfig.admin!, tls: { cert: pemFile('server2'), key: pemFile('server2-key') } } });
  assert.equal(proxy.adminPort, port);
  const after = await served();
  assert.notEqual(after, before);
  assert.equal(after, new X509Certificate(pemFile('server2').pem).fingerprint256);
  assert.equal((await call(proxy, 'GET', '/tiers', READ, undefined, 'https')).status, 200);

  const url = `https://127.0.0.1:${proxy.adminPort}`;
  const withCa = { NODE_EXTRA_CA_CERTS: path.join(TLS_DIR, 'ca.pem') };
  const tiers = await ctl(['tiers', '--admin', url, '--token', READ], withCa);
  assert.equal(tiers.code, 0, tiers.stderr);
  assert.match(tiers.stdout, /^free\s/m);
  const untrusted = await ctl(['tiers', '--admin', url, '--token', READ]);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /cannot reach the admin API at https:\/\/127\.0\.0\.1:\d+\/ \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/);
});

test('shaper-proxy ctl with each role: what a role may do works, the rest exits 1 with the 403 and changes nothing', async (t) => {
  const { proxy, id } = await rolesProxy(t);
  const url = `http://127.0.0.1:${proxy.adminPort}`;
  const run = (token: string, ...args: string[]) => ctl([...args, '--admin', url, '--token', token]);
  for (const [, token] of ROLES) {
    const r = await run(token, 'tiers');
    assert.equal(r.code, 0, r.stderr);
  }
  const forbidden = async (token: string, ...args: string[]) => {
    const before = state(proxy);
    const r = await run(token, ...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^shaper-proxy ctl: the token's role "(read|operate)" may not /);
    assert.equal(state(proxy), before);
  };
  await forbidden(READ, 'drain');
  await forbidden(READ, 'kill', String(id));
  await forbidden(READ, 'reload');
  await forbidden(OPERATE, 'tier', 'spare', '--delete');
  await forbidden(OPERATE, 'customer', 'acme', '--tier', 'gold');
  const drain = await run(OPERATE, 'drain');
  assert.equal(drain.code, 0, drain.stderr);
  assert.equal(drain.stdout, 'draining: not accepting, 1 connection(s) open\n');
  assert.equal((await run(OPERATE, 'undrain')).stdout, 'accepting, 1 connection(s) open\n');
  const kill = await run(OPERATE, 'kill', String(id));
  assert.match(kill.stdout, new RegExp(`^connection ${id} \\(127\\.0\\.0\\.1:\\d+, app web\\) closed\\n$`));
  const del = await run(ADMIN, 'tier', 'spare', '--delete');
  assert.deepEqual([del.code, del.stdout], [0, 'tier spare deleted\n']);
  const inUse = await run(ADMIN, 'tier', 'free', '--delete');
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /tier "free" is in use/);
});

test('POST /reload through the CLI: read may not, operate may (ctl reload)', async (t) => {
  const dir = await tempDir(t);
  const backend = await backendFor(t, 'echo');
  const adminPort = await freePort();
  const file = path.join(dir, 'proxy.json');
  const body = (down: string) => ({
    apps: [{ name: 'web', ports: [0], bind: '127.0.0.1', targets: [backend.address] }],
    admin: { listen: `127.0.0.1:${adminPort}`, tokens: [{ token: READ, role: 'read' }, { token: OPERATE, role: 'operate' }] },
    tiers: { free: { connection: { down } } },
    watch: false,
    log: { level: 'warn' },
  });
  await fs.writeFile(file, JSON.stringify(body('1mbit')));
  const child = cliFor(t, ['--config', file]);
  const url = `http://127.0.0.1:${adminPort}`;
  await waitFor(async () => (await ctl(['tiers', '--admin', url, '--token', READ])).code === 0, 10_000, 'the proxy to answer');
  await fs.writeFile(file, JSON.stringify(body('2mbit')));
  const refused = await ctl(['reload', '--admin', url, '--token', READ]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /may not POST \/reload \(that needs "operate"\)/);
  const tiers = JSON.parse((await ctl(['tiers', '--json', '--admin', url, '--token', READ])).stdout);
  assert.equal(tiers[0].connection.down, 125_000, 'not reloaded');
  const done = await ctl(['reload', '--admin', url, '--token', OPERATE]);
  assert.equal(done.code, 0, done.stderr);
  const after = JSON.parse((await ctl(['tiers', '--json', '--admin', url, '--token', READ])).stdout);
  assert.equal(after[0].connection.down, 250_000);
  await child.kill();
});
