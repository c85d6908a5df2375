/** The admin router over a real HTTP server: status codes and JSON error bodies for requests it cannot route. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Router } from '../../src/admin/router.js';

async function serve(router: Router): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => void router.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('a method a path does not take: 405 with a code and the Allow header', async (t) => {
  const router = new Router().on('GET', '/tiers/:name', () => ({})).on('PUT', '/tiers/:name', () => ({}));
  const s = await serve(router);
  t.after(() => s.close());
  const res = await fetch(`${s.url}/tiers/gold`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'GET, PUT');
  const body = (await res.json()) as { error: string; code: string };
  assert.equal(body.code, 'SHAPER_ERR_ADMIN_METHOD');
  assert.match(body.error, /method POST not allowed on \/tiers\/gold \(allowed: GET, PUT\)/);
});

test('a malformed %-escape in the path is a 400, not a 500', async (t) => {
  let called = false;
  const router = new Router().on('PUT', '/tiers/:name', () => (called = true));
  const s = await serve(router);
  t.after(() => s.close());
  for (const name of ['%E0%A4%A', '%', '%zz']) {
    const res = await fetch(`${s.url}/tiers/${name}`, { method: 'PUT', body: '{}' });
    assert.equal(res.status, 400, name);
    const body = (await res.json()) as { error: string; code: string };
    assert.equal(body.code, 'SHAPER_ERR_ADMIN_BAD_REQUEST');
    assert.match(body.error, /malformed %-escape/);
  }
  assert.equal(called, false);
});

test('the admin server answers a request its HTTP parser refuses with a JSON error, not a bare 400', async (t) => {
  const { AdminServer } = await import('../../src/admin/server.js');
  const { silentLogger } = await import('../../src/log.js');
  const admin = new AdminServer('127.0.0.1', 0, new Router().on('PUT', '/tiers/:name', () => ({})), silentLogger());
  await admin.start();
  t.after(() => admin.close());
  const net = await import('node:net');
  const answer = await new Promise<string>((resolve, reject) => {
    const s = net.connect(admin.port!, '127.0.0.1', () => s.end(Buffer.from('PUT /tiers/\xfc HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}', 'latin1')));
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: string; code: string };
  assert.equal(body.code, 'SHAPER_ERR_ADMIN_BAD_REQUEST');
  assert.match(body.error, /malformed HTTP request \(HPE_/);
});
