/**
 * TLS end to end over real sockets: termination (integrity and half-close both ways, shaped or not,
 * plaintext byte counts), SNI picking the customer, TLS to targets (verified, failed over, refused),
 * bad and slow handshakes, and PROXY protocol in front of TLS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import tls from 'node:tls';
import {
  app,
  backendFor,
  CLI,
  collected,
  config,
  connect,
  pattern,
  pemFile,
  proxyFor,
  readAll,
  roundTrip,
  serverTls,
  sha256,
  tier,
  tlsConnect,
  tlsTargetFor,
  waitFor,
  type TestProxy,
} from '../helpers.js';

/** Send `data` over TLS, half-close, and return what comes back until the proxy's FIN. */
async function tlsRoundTrip(port: number, data: Buffer, opts: tls.ConnectionOptions = {}): Promise<Buffer> {
  const s = await tlsConnect(port, opts);
  const answer = readAll(s);
  s.end(data);
  const got = await answer;
  s.destroy();
  return got;
}

async function metric(proxy: TestProxy, re: RegExp): Promise<void> {
  assert.match(await proxy.metrics.scrape(), re);
}

for (const shaped of [false, true]) {
  test(`tls termination${shaped ? ', shaped' : ''}: sha256 both ways, half-close each way, plaintext byte counts`, async (t) => {
    const collect = await backendFor(t, 'collect');
    const source = await backendFor(t, 'source', { sourceBytes: 300_000 });
    const cfg = config([app('up', [collect.address], { tls: serverTls() }), app('down', [source.address], { tls: serverTls() })], {
      // Shaped: rates high enough not to slow the test, so bytes go through the flows.
      ...(shaped ? { tiers: { t: tier('t', { connection: { down: 50e6, up: 50e6 } }) }, defaultTier: 't' } : {}),
    });
    const proxy = await proxyFor(t, cfg, { backends: [collect, source] });

    // Client -> backend, then the client's FIN: the answer still comes back over TLS.
    const data = pattern(1_000_000, 21);
    assert.equal((await tlsRoundTrip(proxy.portOf('up'), data)).toString(), collected(data));
    await waitFor(() => proxy.connections.size === 0, 3000, 'the connection to close');
    assert.equal(proxy.stats.closedBytesUp, data.length, 'bytes up are the plaintext');
    assert.equal(proxy.stats.closedBytesDown, collected(data).length);

    // Backend -> client, then the backend's FIN: the client can still send, and its bytes arrive.
    const s = await tlsConnect(proxy.portOf('down'));
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => s.once('end', r));
    assert.equal(sha256(Buffer.concat(chunks)), sha256(pattern(300_000)));
    const late = pattern(200_000, 22);
    const closed = new Promise((r) => s.once('close', r));
    s.end(late);
    await waitFor(() => source.received.length === 1, 3000, 'the bytes sent after the backend ended');
    assert.deepEqual(source.received[0], { sha: sha256(late), bytes: late.length });
    await closed;
    await waitFor(() => proxy.connections.size === 0, 3000, 'the connection to close');
    assert.equal(proxy.closedByReason.get('done'), 2);
    assert.equal(proxy.stats.closedBytesDown, collected(data).length + 300_000);
    assert.equal(proxy.shaper.customers.has('127.0.0.1'), shaped, 'shaped through the flows or piped');
  });
}

test('SNI picks the customer and tier (seen in /connections): exact, wildcard, any case, not the bare domain', async (t) => {
  const echo = await backendFor(t, 'echo');
  const proxy = await proxyFor(
    t,
    config([app('web', [echo.address], { tls: serverTls() })], {
      admin: { host: '127.0.0.1', port: 0 },
      tiers: { gold: tier('gold'), free: tier('free') },
      customers: [
        { id: 'shop', tier: 'gold', match: { sni: ['shop.example.com'] } },
        { id: 'wild', tier: 'free', match: { sni: ['*.example.com'] } },
      ],
    }),
    { backends: [echo] },
  );
  const cases: [string, string | null, string | null][] = [
    ['SHOP.example.com', 'shop', 'gold'],
    ['a.b.example.com', 'wild', 'free'],
    ['example.com', null, null],
  ];
  for (const [servername, customer, tierName] of cases) {
    // The certificate's "*.example.com" covers one label; the customer's wildcard covers more.
    const s = await tlsConnect(proxy.portOf('web'), { servername, checkServerIdentity: () => undefined });
    t.after(() => s.destroy());
    const back = new Promise((r) => s.once('data', r));
    s.write('ping');
    await back; // dialed and admitted
    const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/connections`);
    const conns = (await res.json()) as { sni: string | null; customer: string | null; tier: string | null }[];
    const view = conns.find((c) => c.sni === servername);
    assert.ok(view, `a connection with sni ${servername} in ${JSON.stringify(conns)}`);
    assert.equal(view.customer, customer, servername);
    assert.equal(view.tier, tierName, servername);
    s.destroy();
    await waitFor(() => proxy.connections.size === 0, 3000, 'the connection to close');
  }
  // `shaper-proxy ctl customers` shows the sni criterion.
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [CLI, 'ctl', 'customers', '--admin', `http://127.0.0.1:${proxy.adminPort}`], { timeout: 15_000 }, (err, out) => (err ? reject(err) : resolve(out))),
  );
  assert.match(stdout, /^shop\s+gold\s+config\s+sni=shop\.example\.com\s+0$/m);
  assert.match(stdout, /^wild\s+free\s+config\s+sni=\*\.example\.com\s+0$/m);
});

test('targetTls: the test CA verifies the target (by IP or by servername) and the bytes pass, shaped', async (t) => {
  const target = await tlsTargetFor(t);
  const proxy = await proxyFor(
    t,
    config(
      [
        app('by-ip', [target.address], { targetTls: { ca: pemFile('ca'), rejectUnauthorized: true } }),
        app('by-name', [target.address], { targetTls: { ca: pemFile('ca'), servername: 'backend.test', rejectUnauthorized: true }, tls: serverTls() }),
      ],
      // Shaped: the TLS backend socket reads into the down flow through 'data' (it takes no onread).
      { tiers: { t: tier('t', { connection: { down: 50e6, up: 50e6 } }) }, defaultTier: 't' },
    ),
  );
  const data = pattern(500_000, 23);
  assert.equal((await roundTrip(proxy.portOf('by-ip'), data)).toString(), collected(data));
  // TLS on both sides.
  assert.equal((await tlsRoundTrip(proxy.portOf('by-name'), data)).toString(), collected(data));
  assert.equal(proxy.stats.targetTlsFailures, 0);
});

test('targetTls: a target whose certificate does not verify fails the dial; the next target takes it, and with none the close is counted', async (t) => {
  const wrongName = await tlsTargetFor(t, 'server'); // signed by the test CA, but not for backend.test
  const good = await tlsTargetFor(t);
  const proxy = await proxyFor(
    t,
    config([
      app('failover', [wrongName.address, good.address], { targetTls: { ca: pemFile('ca'), servername: 'backend.test', rejectUnauthorized: true } }),
      app('wrong-ca', [good.address], { targetTls: { ca: pemFile('other-ca'), rejectUnauthorized: true } }),
    ]),
  );
  const data = pattern(100_000, 24);
  assert.equal((await roundTrip(proxy.portOf('failover'), data)).toString(), collected(data));
  const bad = proxy.upstreams.byAddress.get(wrongName.address)!;
  assert.equal(bad.health, 'unhealthy', 'marked down by the failed dial');
  assert.equal(bad.lastError, 'SHAPER_ERR_TARGET_TLS (ERR_TLS_CERT_ALTNAME_INVALID)', 'with the reason');
  assert.equal(proxy.stats.targetTlsFailures, 1);

  // Closed without an answer (a reset, as the proxy had unread bytes from the client).
  const answer = await roundTrip(proxy.portOf('wrong-ca'), data).catch((err: NodeJS.ErrnoException) => err.code);
  assert.ok(answer === 'ECONNRESET' || (Buffer.isBuffer(answer) && answer.length === 0), String(answer));
  await waitFor(() => proxy.closedByReason.get('no_target') === 1, 3000, 'the no_target close');
  assert.equal(proxy.stats.targetTlsFailures, 2);
  await metric(proxy, /shaper_tls_handshake_failures_total\{side="target"\} 2/);
  await metric(proxy, /shaper_connections_closed_total\{reason="no_target"\} 1/);
});

test('a bad or slow TLS handshake closes the connection, is counted, and dials nothing', async (t) => {
  const collect = await backendFor(t, 'collect');
  const proxy = await proxyFor(t, config([app('web', [collect.address], { tls: serverTls('server', { handshakeTimeout: 150 }) })]), { backends: [collect] });
  const port = proxy.portOf('web');

  // Plain bytes to a TLS port.
  assert.equal((await roundTrip(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).length, 0);
  // A client that does not trust the certificate gives up in the handshake.
  await assert.rejects(tlsConnect(port, { ca: pemFile('other-ca').pem }), /certificate/);
  // A client that sends nothing: the handshake timeout.
  const silent = await connect(port);
  await readAll(silent);
  silent.destroy();
  await waitFor(() => proxy.closedByReason.get('tls_handshake') === 3, 3000, 'three tls_handshake closes');
  // A TCP check that sends nothing and leaves is no TLS failure.
  (await connect(port)).destroy();
  await waitFor(() => proxy.closedByReason.get('client_gone') === 1, 3000, 'the client_gone close');

  assert.equal(collect.accepted, 0, 'no target was dialed');
  assert.equal(proxy.closedByReason.get('tls_handshake'), 3);
  await metric(proxy, /shaper_tls_handshake_failures_total\{side="client"\} 3/);
  await metric(proxy, /shaper_connections_closed_total\{reason="tls_handshake"\} 3/);
  const res = proxy.statsDocument() as { connections: { tlsHandshakeFailures: unknown } };
  assert.deepEqual(res.connections.tlsHandshakeFailures, { client: 3, target: 0 });
  // /status shows the certificate the app serves.
  const status = proxy.status() as { apps: { tls?: { fingerprint256: string; cert: string } }[] };
  assert.equal(status.apps[0]!.tls?.fingerprint256, new crypto.X509Certificate(pemFile('server').pem).fingerprint256);
  assert.equal(status.apps[0]!.tls?.cert, pemFile('server').path);
});

test('acceptProxyProtocol + tls: the PROXY header comes first, then TLS; its address and the SNI pick the customer', async (t) => {
  const echo = await backendFor(t, 'echo');
  const proxy = await proxyFor(
    t,
    config([app('web', [echo.address], { acceptProxyProtocol: true, tls: serverTls() })], {
      tiers: { gold: tier('gold') },
      customers: [{ id: 'acme', tier: 'gold', match: { sources: ['10.1.0.0/16'], sni: ['*.example.com'] } }],
    }),
    { backends: [echo] },
  );
  const raw = await connect(proxy.portOf('web'));
  raw.write('PROXY TCP4 10.1.2.3 10.0.0.1 40000 443\r\n');
  const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const c = tls.connect({ socket: raw, servername: 'api.example.com', ca: pemFile('ca').pem }, () => resolve(c));
    c.once('error', reject);
  });
  t.after(() => s.destroy());
  const data = pattern(50_000, 25);
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.write(data);
  await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) >= data.length, 5000, 'the echo');
  assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
  const conn = [...proxy.connections][0]!;
  assert.equal(conn.clientAddress, '10.1.2.3');
  assert.equal(conn.serverName, 'api.example.com');
  assert.equal(conn.shaped?.customer.id, 'acme');
});

test('sniPreread: TLS passes through to the target untouched while its SNI picks the customer; plain bytes pass too', async (t) => {
  const target = await tlsTargetFor(t);
  const echo = await backendFor(t, 'echo');
  const proxy = await proxyFor(
    t,
    config([app('passthrough', [target.address], { sniPreread: true }), app('mixed', [echo.address], { sniPreread: true, sniPrereadTimeout: 200 })], {
      tiers: { gold: tier('gold') },
      customers: [{ id: 'backend-owner', tier: 'gold', match: { sni: ['*.test'] } }],
    }),
    { backends: [echo] },
  );
  // The client verifies the target's own certificate: the proxy never terminated TLS.
  const s = await tlsConnect(proxy.portOf('passthrough'), { servername: 'backend.test' });
  assert.equal(s.getPeerCertificate().subject.CN, 'backend.test');
  const conn = [...proxy.connections][0]!;
  assert.equal(conn.serverName, 'backend.test');
  assert.equal(conn.shaped?.customer.id, 'backend-owner');
  const data = pattern(300_000, 26);
  const answer = readAll(s);
  s.end(data);
  assert.equal((await answer).toString(), collected(data));
  s.destroy();
  await waitFor(() => proxy.connections.size === 0, 3000, 'the connection to close');

  // Plain bytes on an sniPreread port: no name, nothing held back.
  const plain = pattern(10_000, 27);
  assert.equal(sha256(await roundTrip(proxy.portOf('mixed'), plain)), sha256(plain));
  // A client that sends nothing is dialed after the preread timeout and then served.
  const quiet = await connect(proxy.portOf('mixed'));
  t.after(() => quiet.destroy());
  await waitFor(() => [...proxy.connections].some((c) => c.target !== undefined), 3000, 'the dial after the preread timeout');
  const back = readAll(quiet);
  quiet.end('late');
  assert.equal((await back).toString(), 'late');
  assert.equal(proxy.closedByReason.get('tls_handshake'), undefined);
});

test('targetTls + sendProxyProtocol: the PROXY header goes in clear before the TLS handshake', async (t) => {
  const target = await tlsTargetFor(t, 'backend', { proxyHeader: true });
  const proxy = await proxyFor(t, config([app('web', [target.address], { sendProxyProtocol: 'v1', targetTls: { ca: pemFile('ca'), rejectUnauthorized: true } })]));
  const s = await connect(proxy.portOf('web'));
  const clientPort = s.localPort;
  const data = pattern(100_000, 28);
  const answer = readAll(s);
  s.end(data);
  assert.equal((await answer).toString(), collected(data));
  s.destroy();
  // The health check's handshake came first, after a header naming no address (as a balancer's own checks send).
  assert.deepEqual(target.headers, ['PROXY UNKNOWN', `PROXY TCP4 127.0.0.1 127.0.0.1 ${clientPort} ${proxy.portOf('web')}`]);
});

test('idle timeout over TLS: traffic inside TLS keeps a connection open past idleTimeout; silence closes it', async (t) => {
  const echo = await backendFor(t, 'echo');
  const proxy = await proxyFor(t, config([app('web', [echo.address], { tls: serverTls(), idleTimeout: 300 })]), { backends: [echo] });
  const s = await tlsConnect(proxy.portOf('web'));
  t.after(() => s.destroy());
  s.resume();
  const ended = new Promise((r) => s.once('end', r));
  // Activity is the TLS socket's; the idle timer must still see it.
  const started = Date.now();
  while (Date.now() - started < 1000) {
    s.write('x');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(proxy.connections.size, 1, 'still open after three idle timeouts with traffic');
  await ended;
  assert.equal(proxy.closedByReason.get('idle_timeout'), 1);
});
