/**
 * The dashboard's files over real sockets: the page at `/` and `/dashboard`, every script module
 * and style it loads with its content type and ETag (a 304 when unchanged), byte for byte the
 * built files; nothing outside the folder (`..` in any spelling), nor a file of it that is not
 * one of the page's, is served. With a token, only the page's files are public.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { config, proxyFor, ROOT, tier } from '../helpers.js';

const BUILT = join(ROOT, 'dist/src/admin/dashboard');
const TOKEN = 'correct-horse-battery-staple';

async function start(t: TestContext, token?: string): Promise<string> {
  const admin = { host: '127.0.0.1', port: 0, ...(token !== undefined ? { token } : {}) };
  const proxy = await proxyFor(t, config([], { admin, tiers: { free: tier('free') } }));
  return `http://127.0.0.1:${proxy.adminPort}`;
}

/** A request whose path goes out exactly as written (fetch would resolve `..` first). */
function rawGet(origin: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${origin}/`, { path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** The page's script and style, and every module main.js imports, transitively. */
async function pageFiles(origin: string): Promise<Map<string, string>> {
  const html = await (await fetch(`${origin}/`)).text();
  const found = new Map<string, string>();
  const todo = [...html.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map((m) => m[1]!);
  while (todo.length > 0) {
    const path = todo.pop()!;
    if (found.has(path)) continue;
    const res = await fetch(origin + path);
    assert.equal(res.status, 200, path);
    const text = await res.text();
    found.set(path, text);
    for (const m of text.matchAll(/^import .* from '\.\/([\w-]+\.js)';$/gm)) todo.push(`/dashboard/${m[1]}`);
  }
  return found;
}

test('the page, and each of its files with its content type, an ETag and a 304 when unchanged', async (t) => {
  const origin = await start(t);
  for (const path of ['/', '/dashboard']) {
    const res = await fetch(origin + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'; style-src 'self'; connect-src 'self'/);
    assert.equal(await res.text(), readFileSync(join(BUILT, 'page.html'), 'utf8'));
  }

  const files = await pageFiles(origin);
  assert.deepEqual([...files.keys()].sort(), [
    '/dashboard/chart.js', '/dashboard/connections.js', '/dashboard/dom.js', '/dashboard/fleet.js', '/dashboard/format.js',
    '/dashboard/header.js', '/dashboard/history.js', '/dashboard/main.js', '/dashboard/reload.js', '/dashboard/style.css',
    '/dashboard/tables.js', '/dashboard/tiers.js', '/dashboard/usage.js',
  ]);
  for (const [path, text] of files) {
    assert.equal(text, readFileSync(join(BUILT, path.slice('/dashboard/'.length)), 'utf8'), path);
    const res = await fetch(origin + path);
    await res.arrayBuffer();
    const type = path.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
    assert.equal(res.headers.get('content-type'), type, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('cache-control'), 'no-cache', path);
    const etag = res.headers.get('etag');
    assert.match(etag ?? '', /^"[\w-]{22}"$/, path);

    for (const given of [etag!, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await fetch(origin + path, { headers: { 'if-none-match': given } });
      assert.equal(again.status, 304, `${path} If-None-Match: ${given}`);
      assert.equal(again.headers.get('etag'), etag);
      assert.equal(await again.text(), '');
    }
    const changed = await fetch(origin + path, { headers: { 'if-none-match': '"something-else"' } });
    assert.equal(changed.status, 200);
    assert.equal(await changed.text(), text);
  }
  // The source maps too, for a browser's developer tools.
  const map = await fetch(`${origin}/dashboard/main.js.map`);
  assert.equal(map.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(((await map.json()) as { file: string }).file, 'main.js');
});

// Paths that reach for a file outside the folder, or a file of it that is not one of the page's.
const OUTSIDE = [
  '/dashboard/../../package.json',
  '/dashboard/..%2F..%2F..%2F..%2Fpackage.json',
  '/dashboard/%2e%2e/%2e%2e/%2e%2e/%2e%2e/package.json',
  '/dashboard/..%2Fdashboard.js',
  '/dashboard/..%5Cdashboard.js',
  '/dashboard/%2Fetc%2Fpasswd',
  '/dashboard/main.d.ts',
  '/dashboard/page.html',
  '/dashboard/',
];

test('nothing outside the folder, and nothing in it but the page\'s files, is served', async (t) => {
  const origin = await start(t);
  for (const path of OUTSIDE) {
    const res = await rawGet(origin, path);
    if (path === '/dashboard/') {
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8', 'a trailing slash is the page itself');
      continue;
    }
    assert.equal(res.status, 404, path);
    assert.equal(JSON.parse(res.body).code, 'SHAPER_ERR_ADMIN_NOT_FOUND', path);
  }
});

test('with a token: the page\'s files are public, the page and every other path are not', async (t) => {
  const origin = await start(t, TOKEN);
  assert.equal((await rawGet(origin, '/dashboard/main.js')).status, 200);
  assert.equal((await rawGet(origin, '/dashboard/style.css')).status, 200);
  for (const path of [...OUTSIDE, '/', '/dashboard', '/dashboard/nope.js', '/dashboard/main.js/x', '/stats']) {
    const res = await rawGet(origin, path);
    assert.equal(res.status, 401, path);
    assert.equal(JSON.parse(res.body).code, 'SHAPER_ERR_ADMIN_AUTH', path);
  }
});
