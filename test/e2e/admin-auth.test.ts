/**
 * Admin API hardening over real sockets: the bearer token (401s that change nothing, the
 * dashboard's ?token=), the constant-time compare, the config error for a non-loopback
 * admin.listen without a token (parseConfig and `--check`), `ctl --token`, and the 413 for an
 * oversized body.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { AdminTokens, isLoopbackHost } from '../../src/admin/auth.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { config, ctl, proxyFor, runToEnd, tempDir, tier, type TestProxy } from '../helpers.js';

const TOKEN = 'correct-horse-battery-staple';
const U = Infinity;
const noEnv = {};

/** A proxy with an admin server (and `token`) and one tier, stopped after the test. */
function start(t: TestContext, token: string | undefined): Promise<TestProxy> {
  const cfg: ProxyConfig = config([], {
    admin: { host: '127.0.0.1', port: 0, ...(token !== undefined ? { token } : {}) },
    tiers: { free: tier('free', { connection: { down: 200_000, up: U } }) },
  });
  return proxyFor(t, cfg);
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function api(proxy: TestProxy, method: string, p: string, opts: { token?: string; auth?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.auth !== undefined) headers['authorization'] = opts.auth;
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}${p}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // the dashboard page
  }
  return { status: res.status, headers: res.headers, body };
}

function assert401(a: Answer, what: string): void {
  assert.equal(a.status, 401, what);
  assert.equal(a.body.code, 'SHAPER_ERR_ADMIN_AUTH', what);
  assert.equal(typeof a.body.error, 'string', what);
  assert.match(a.headers.get('www-authenticate') ?? '', /^Bearer\b/, what);
}

const PAID = { connection: { down: '8mbit' } };

test('with a token: no header or a wrong one is 401 and changes nothing; the right one works', async (t) => {
  const proxy = await start(t, TOKEN);

  assert401(await api(proxy, 'GET', '/tiers'), 'GET without a header');
  assert401(await api(proxy, 'PUT', '/tiers/paid', { body: PAID }), 'PUT without a header');
  assert401(await api(proxy, 'PUT', '/tiers/paid', { token: 'wrong-token-wrong-token', body: PAID }), 'PUT with a wrong token');
  assert401(await api(proxy, 'PUT', '/tiers/paid', { token: TOKEN.slice(0, -1), body: PAID }), 'PUT with a prefix of the token');
  assert401(await api(proxy, 'PUT', '/tiers/paid', { token: TOKEN + 'x', body: PAID }), 'PUT with the token and more');
  assert401(await api(proxy, 'PUT', '/tiers/paid', { auth: TOKEN, body: PAID }), 'no "Bearer" scheme');
  assert401(await api(proxy, 'PUT', '/tiers/paid', { auth: `Basic ${TOKEN}`, body: PAID }), 'Basic scheme');
  assert401(await api(proxy, 'DELETE', '/tiers/free'), 'DELETE without a header');
  assert401(await api(proxy, 'GET', '/stats'), '/stats without a header');
  assert401(await api(proxy, 'GET', `/stats?token=${TOKEN}`), '?token= is for the dashboard page only');
  assert401(await api(proxy, 'GET', '/nonexistent'), 'even a 404 path needs the token');

  // Nothing changed.
  assert.deepEqual(Object.keys(proxy.config.tiers), ['free']);
  const list = await api(proxy, 'GET', '/tiers', { token: TOKEN });
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.map((x: { name: string }) => x.name), ['free']);

  // The right token: the change is made.
  const put = await api(proxy, 'PUT', '/tiers/paid', { token: TOKEN, body: PAID });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.name, 'paid');
  assert.deepEqual(Object.keys(proxy.config.tiers).sort(), ['free', 'paid']);
  assert.equal((await api(proxy, 'GET', '/stats', { auth: `bearer ${TOKEN}` })).status, 200, 'the scheme is case-insensitive');
});

test('with a token: the dashboard page takes ?token= and its fetches send the header', async (t) => {
  const proxy = await start(t, TOKEN);
  assert401(await api(proxy, 'GET', '/'), 'page without a token');
  assert401(await api(proxy, 'GET', '/?token=nope-nope-nope-nope'), 'page with a wrong token');
  const page = await api(proxy, 'GET', `/?token=${encodeURIComponent(TOKEN)}`);
  assert.equal(page.status, 200);
  assert.equal(typeof page.body, 'string');
  assert.match(page.body, /<script type="module" src="\/dashboard\/main\.js">/);
  assert.equal((await api(proxy, 'GET', '/', { token: TOKEN })).status, 200);
  // Its script and style need no token (a browser sends no header for them); they hold no data.
  const script = await api(proxy, 'GET', '/dashboard/main.js');
  assert.equal(script.status, 200);
  assert.match(script.body, /authorization: `Bearer \$\{token\}`/);
  assert.equal((await api(proxy, 'GET', '/dashboard/style.css')).status, 200);
  assert401(await api(proxy, 'GET', '/dashboard/nope.js'), 'only the files the page has are public');
  assert.equal((await api(proxy, 'POST', '/dashboard/main.js')).status, 401, 'and only to GET');
});

test('without a token, loopback needs no header', async (t) => {
  const proxy = await start(t, undefined);
  assert.equal((await api(proxy, 'GET', '/tiers')).status, 200);
  assert.equal((await api(proxy, 'GET', '/tiers', { token: 'anything-at-all-here' })).status, 200);
});

test('AdminTokens compares in constant time whatever the lengths, and gives the role of the token', () => {
  const tokens = new AdminTokens({ token: TOKEN, tokens: [{ token: 'ünïcødé-tøken-1234', role: 'read' }, { token: `${TOKEN}-op`, role: 'operate' }] });
  assert.equal(tokens.none, false);
  assert.equal(tokens.roleOf(TOKEN), 'admin');
  assert.equal(tokens.roleOf('ünïcødé-tøken-1234'), 'read');
  assert.equal(tokens.roleOf(`${TOKEN}-op`), 'operate');
  for (const wrong of ['', TOKEN.slice(0, 1), TOKEN.slice(0, -1), TOKEN + TOKEN, 'x'.repeat(10_000), TOKEN.toUpperCase(), `${TOKEN}-o`]) {
    assert.equal(tokens.roleOf(wrong), undefined, wrong.slice(0, 40));
  }
  assert.equal(new AdminTokens(null).none, true);
  assert.equal(new AdminTokens({}).none, true);
});

test('isLoopbackHost', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
});

// ---- config ----------------------------------------------------------------------------------

const APP = { name: 'web', ports: [5001], targets: ['127.0.0.1:9001'] };

function problemsOf(raw: unknown, env: NodeJS.ProcessEnv = noEnv): string {
  try {
    parseConfig(raw, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.join('\n');
  }
  assert.fail('parseConfig did not throw');
}

test('config: a non-loopback admin.listen without a token is refused, naming admin.token', () => {
  assert.equal(
    problemsOf({ apps: [APP], admin: { listen: '0.0.0.0:9900' } }),
    'admin.token: required when admin.listen is not a loopback address ("0.0.0.0:9900"); set a token of at least 16 characters or listen on 127.0.0.1',
  );
  assert.match(problemsOf({ apps: [APP], admin: '[::]:9900' }), /^admin\.token: required when admin\.listen is not a loopback address \("\[::\]:9900"\)/);
  assert.match(problemsOf({ apps: [APP] }, { SHAPER_ADMIN_LISTEN: '10.1.2.3:9900' }), /^admin\.token: required/);
  // Too short, or not a string: the token's own problem (without echoing the token).
  const short = problemsOf({ apps: [APP], admin: { listen: '127.0.0.1:9900', token: 'short-secret' } });
  assert.match(short, /^admin\.token: must be a string of at least 16 characters/);
  assert.doesNotMatch(short, /short-secret/);
  assert.match(problemsOf({ apps: [APP], admin: { listen: '0.0.0.0:9900', token: 12 } }), /^admin\.token: /);
  assert.match(problemsOf({ apps: [APP], admin: { listen: '127.0.0.1:9900', tokn: TOKEN } }), /^admin\.tokn: unknown key \(did you mean "token"\?\)/);
});

test('config: loopback needs no token; a token from the config or SHAPER_ADMIN_TOKEN', () => {
  assert.deepEqual(parseConfig({ apps: [APP] }, noEnv).admin, { host: '127.0.0.1', port: 9900 });
  assert.deepEqual(parseConfig({ apps: [APP], admin: 'localhost:9900' }, noEnv).admin, { host: 'localhost', port: 9900 });
  assert.deepEqual(parseConfig({ apps: [APP], admin: { listen: '0.0.0.0:9900', token: TOKEN } }, noEnv).admin, {
    host: '0.0.0.0',
    port: 9900,
    token: TOKEN,
  });
  assert.deepEqual(parseConfig({ apps: [APP], admin: '0.0.0.0:9900' }, { SHAPER_ADMIN_TOKEN: TOKEN }).admin, {
    host: '0.0.0.0',
    port: 9900,
    token: TOKEN,
  });
  assert.deepEqual(parseConfig({ apps: [APP] }, { SHAPER_ADMIN_TOKEN: '' }).admin, { host: '127.0.0.1', port: 9900 }, 'an empty env is none');
  // A token on loopback is kept (and then required).
  assert.equal(parseConfig({ apps: [APP], admin: { token: TOKEN } }, noEnv).admin?.token, TOKEN);
});

test('--check on a non-loopback admin.listen without a token exits 2 naming admin.token', async (t) => {
  const dir = await tempDir(t, 'shaper-auth-');
  const file = path.join(dir, 'open.json');
  await fs.writeFile(file, JSON.stringify({ bind: '127.0.0.1', admin: { listen: '0.0.0.0:9900' }, apps: [APP] }));
  const r = await runToEnd(['--config', file, '--check'], { SHAPER_ADMIN_TOKEN: '' });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /SHAPER_ERR_CONFIG: .*admin\.token: required when admin\.listen is not a loopback address \("0\.0\.0\.0:9900"\)/);

  const ok = await runToEnd(['--config', file, '--check'], { SHAPER_ADMIN_TOKEN: TOKEN });
  assert.equal(ok.code, 0, ok.stderr);
});

// ---- ctl -------------------------------------------------------------------------------------

test('ctl with --token or SHAPER_ADMIN_TOKEN works; without one or with a wrong one it exits 1 saying so', async (t) => {
  const proxy = await start(t, TOKEN);
  const url = `http://127.0.0.1:${proxy.adminPort}`;

  const none = await ctl(['tiers', '--admin', url]);
  assert.equal(none.code, 1);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /needs a token \(HTTP 401\): give --token TOKEN or set SHAPER_ADMIN_TOKEN/);

  const wrong = await ctl(['tiers', '--admin', url, '--token', 'wrong-token-wrong-token']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /refused the token \(HTTP 401\)/);

  const flag = await ctl(['tiers', '--admin', url, '--token', TOKEN, '--json']);
  assert.equal(flag.code, 0, flag.stderr);
  assert.deepEqual(JSON.parse(flag.stdout).map((x: { name: string }) => x.name), ['free']);

  const env = await ctl(['tiers', '--admin', url], { SHAPER_ADMIN_TOKEN: TOKEN });
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, /free/);

  const empty = await ctl(['tiers', '--admin', url, '--token', '']);
  assert.equal(empty.code, 2);
});

// ---- body size -------------------------------------------------------------------------------

/** Sends a raw HTTP request on its own connection; resolves to the status line and whether the server closed. */
function rawRequest(port: number, head: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', (err) => {
      // A reset after the answer arrived is fine; one before it is not.
      if (/^HTTP\/1\.1 \d+/.test(text)) resolve({ status: Number(text.slice(9, 12)), text });
      else reject(err);
    });
    socket.on('close', () => resolve({ status: Number(text.slice(9, 12)), text }));
    socket.write(head);
    socket.end(body);
  });
}

test('an oversized body is answered 413, changes nothing, and the server keeps serving', async (t) => {
  const proxy = await start(t, TOKEN);
  const big = Buffer.from(JSON.stringify({ connection: { down: '8mbit' }, pad: 'x'.repeat(70 * 1024) }));

  // Declared length over the limit.
  const declared = await rawRequest(
    proxy.adminPort!,
    `PUT /tiers/huge HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`,
    big,
  );
  assert.equal(declared.status, 413, declared.text);
  assert.match(declared.text, /SHAPER_ERR_ADMIN_BODY_TOO_LARGE/);
  assert.match(declared.text, /connection: close/i);

  // Chunked, so the size is only known while reading.
  const chunked = Buffer.concat([Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]);
  const streamed = await rawRequest(
    proxy.adminPort!,
    `PUT /tiers/huge HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
    chunked,
  );
  assert.equal(streamed.status, 413, streamed.text);

  // Without the token the body is not even read: 401.
  const anonymous = await api(proxy, 'PUT', '/tiers/huge', { body: JSON.parse(big.toString()) });
  assert.equal(anonymous.status, 401);

  assert.deepEqual(Object.keys(proxy.config.tiers), ['free'], 'nothing changed');
  assert.equal((await api(proxy, 'GET', '/tiers', { token: TOKEN })).status, 200, 'still serving');
  // A body just under the limit still goes through the normal validation (400 for the unknown key).
  const under = await api(proxy, 'PUT', '/tiers/fine', { token: TOKEN, body: { connection: { down: '8mbit' }, pad: 'x'.repeat(1000) } });
  assert.equal(under.status, 400);
});
