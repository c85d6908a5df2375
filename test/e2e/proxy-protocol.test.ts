import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { encodeProxyHeader, parseProxyHeader } from '../../src/identify/proxy-protocol.js';
import { app, backendFor, config, connect, pattern, proxyFor, rawServer, readAll, roundTrip, sha256, tier, waitFor } from '../helpers.js';

const unlimited = tier('lb');

/** A backend that keeps every byte of each connection, answered with "ok" after the client's FIN. */
async function rawBackend(t: TestContext) {
  const got: Buffer[] = [];
  const { address } = await rawServer(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      got.push(Buffer.concat(chunks));
      s.end('ok');
    });
  });
  return { address, got };
}

test('acceptProxyProtocol: the header names the client for customer matching; the data arrives without it', async (t) => {
  const backend = await backendFor(t, 'echo');
  const proxy = await proxyFor(
    t,
    config([app('web', [backend.address], { acceptProxyProtocol: true })], {
      tiers: { lb: unlimited },
      customers: [{ id: 'acme', tier: 'lb', match: { sources: ['10.1.0.0/16'] } }],
    }),
    { backends: [backend] },
  );
  for (const header of [
    Buffer.from('PROXY TCP4 10.1.2.3 10.0.0.1 40000 80\r\n'),
    encodeProxyHeader('v2', { address: '10.1.9.9', port: 40001 }, { address: '10.0.0.1', port: 80 }),
  ]) {
    const s = await connect(proxy.portOf('web'));
    const data = pattern(200_000, header.length);
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    // The header and the first bytes in one write: the rest must be put back, not lost.
    s.write(Buffer.concat([header, data.subarray(0, 1000)]));
    s.write(data.subarray(1000));
    await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) >= data.length, 5000, 'the echo');
    assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
    const conn = [...proxy.connections][0]!;
    const expected = parseProxyHeader(header);
    assert.equal(expected.kind, 'ok');
    assert.equal(`${conn.clientAddress}:${conn.clientPort}`, `${expected.kind === 'ok' && expected.source!.address}:${expected.kind === 'ok' && expected.source!.port}`);
    assert.equal(conn.shaped?.customer.id, 'acme');
    s.destroy();
    await waitFor(() => proxy.connections.size === 0, 2000, 'the connection to close');
  }
});

test('acceptProxyProtocol: a missing or malformed header closes without dialing and is counted', async (t) => {
  const backend = await backendFor(t, 'collect');
  const proxy = await proxyFor(t, config([app('web', [backend.address], { acceptProxyProtocol: true })]), { backends: [backend] });
  const bad = [
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    Buffer.from('PROXY TCP4 10.1.2.3 10.0.0.1 99999 80\r\n'),
    Buffer.from('PROXY ' + 'x'.repeat(200)),
    Buffer.from('\r\n\r\n\0\r\nQUIT\n\x31\x11\0\0'),
  ];
  for (const b of bad) {
    const answer = await roundTrip(proxy.portOf('web'), b);
    assert.equal(answer.length, 0);
  }
  // A client that ends before its header is complete.
  assert.equal((await roundTrip(proxy.portOf('web'), Buffer.from('PROXY TCP4 10.1'))).length, 0);
  await waitFor(() => proxy.closedByReason.get('proxy_protocol') === bad.length + 1, 2000, 'the closes to be counted');
  assert.equal(backend.accepted, 0);
  const metrics = await proxy.metrics.scrape();
  assert.match(metrics, /shaper_connections_closed_total\{reason="proxy_protocol"\} 5/);
});

test('acceptProxyProtocol: a client that sends nothing is closed after the header timeout', async (t) => {
  const backend = await backendFor(t, 'collect');
  const proxy = await proxyFor(t, config([app('web', [backend.address], { acceptProxyProtocol: true })]), { backends: [backend] });
  proxy.proxyHeaderTimeoutMs = 100;
  const s = await connect(proxy.portOf('web'));
  const got = await readAll(s); // resolves on the proxy's FIN
  s.destroy();
  assert.equal(got.length, 0);
  assert.equal(proxy.closedByReason.get('proxy_protocol'), 1);
  assert.equal(backend.accepted, 0);
});

for (const version of ['v1', 'v2'] as const) {
  test(`sendProxyProtocol ${version}: the target reads the header with the client address, then the data`, async (t) => {
    const backend = await rawBackend(t);
    const proxy = await proxyFor(t, config([app('web', [backend.address], { sendProxyProtocol: version })]));
    const s = await connect(proxy.portOf('web'));
    const clientPort = s.localPort;
    const data = pattern(100_000, 9);
    const answer = readAll(s);
    s.end(data);
    assert.equal((await answer).toString(), 'ok');
    const got = backend.got.find((b) => b.length > 0)!; // empty ones: health checks
    const header = parseProxyHeader(got);
    assert.equal(header.kind, 'ok');
    if (header.kind !== 'ok') return;
    assert.equal(header.version, version === 'v1' ? 1 : 2);
    assert.deepEqual(header.source, { address: '127.0.0.1', port: clientPort });
    assert.deepEqual(header.destination, { address: '127.0.0.1', port: proxy.portOf('web') });
    assert.equal(sha256(got.subarray(header.length)), sha256(data));
  });
}

test('accept and send together: the target gets the address of the incoming header', async (t) => {
  const backend = await rawBackend(t);
  const proxy = await proxyFor(t, config([app('web', [backend.address], { acceptProxyProtocol: true, sendProxyProtocol: 'v2' })]));
  const data = Buffer.from('hello after the header');
  const answer = await roundTrip(proxy.portOf('web'), Buffer.concat([Buffer.from('PROXY TCP6 2001:db8::5 2001:db8::1 5555 443\r\n'), data]));
  assert.equal(answer.toString(), 'ok');
  const got = backend.got.find((b) => b.length > 0)!; // empty ones: health checks
  const header = parseProxyHeader(got);
  assert.equal(header.kind, 'ok');
  if (header.kind !== 'ok') return;
  assert.deepEqual(header.source, { address: '2001:db8::5', port: 5555 });
  assert.deepEqual(header.destination, { address: '2001:db8::1', port: 443 });
  assert.equal(got.subarray(header.length).toString(), data.toString());
});
