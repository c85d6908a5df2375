/**
 * Active health checks of `targetTls` apps: a TLS handshake with the app's own verification
 * settings, real TLS targets on 127.0.0.1. A failed handshake marks the target down with OpenSSL's
 * reason in the log and /status; it is put back only when its TLS works again.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import type { AppConfig } from '../../src/config/types.js';
import { app, captureLogger, config, pemFile, startBackend, startProxy, waitFor } from '../helpers.js';

/** A TLS target with the fixture cert `cert`, counting finished handshakes; stopped after the test. */
async function tlsTarget(t: TestContext, cert: string): Promise<{ address: string; handshakes: () => number }> {
  let handshakes = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: pemFile(cert).pem, key: pemFile(`${cert}-key`).pem }, (s) => {
    handshakes++;
    s.on('error', () => {});
    s.resume();
    s.on('end', () => s.end());
  });
  server.on('tlsClientError', () => {});
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, handshakes: () => handshakes };
}

const verified = (servername: string): Partial<AppConfig> => ({ targetTls: { ca: pemFile('ca'), servername, rejectUnauthorized: true } });

test('TLS health checks: a target whose certificate fails is marked down with the reason; a good one stays up; put back once its TLS works', async (t) => {
  const good = await tlsTarget(t, 'backend');
  const wrongName = await tlsTarget(t, 'server'); // signed by the test CA, not for backend.test
  const plain = await startBackend('echo'); // not TLS at all
  t.after(() => plain.close());
  const cfg = config([app('secure', [good.address, wrongName.address]), app('not-tls', [plain.address])].map((a) => ({ ...a, ...verified('backend.test') })), {
    health: { interval: 100, timeout: 1000, unhealthyAfter: 1, healthyAfter: 1 },
  });
  const { log, lines } = captureLogger();
  const proxy = await startProxy(cfg, [], log);
  t.after(() => proxy.stop());

  const target = (address: string) => proxy.upstreams.byAddress.get(address)!;
  await waitFor(() => !target(wrongName.address).healthy && !target(plain.address).healthy, 5000, 'both bad targets down');
  assert.equal(target(wrongName.address).lastError, 'SHAPER_ERR_TARGET_TLS (ERR_TLS_CERT_ALTNAME_INVALID)');
  // The echo sends the ClientHello back: OpenSSL's ERR_SSL_UNEXPECTED_MESSAGE (or another protocol error).
  assert.match(target(plain.address).lastError ?? '', /^SHAPER_ERR_TARGET_TLS \(ERR_SSL_[A-Z_]+\)$/);
  await waitFor(() => good.handshakes() >= 2, 5000, 'the good target to see the checks\' handshakes');
  assert.equal(target(good.address).healthy, true);

  // The log line names the target, the reason and OpenSSL's (Node's) message; /status shows the reason.
  const down = lines.find((l) => l['msg'] === 'target unhealthy' && l['target'] === wrongName.address)!;
  assert.equal(down['error'], 'SHAPER_ERR_TARGET_TLS (ERR_TLS_CERT_ALTNAME_INVALID)');
  assert.match(String(down['reason']), /Hostname\/IP does not match certificate's altnames/);
  assert.equal(down['passive'], false);
  const status = proxy.status() as { apps: { name: string; targets: { address: string; health: string; lastError?: string }[] }[] };
  const shown = status.apps.find((a) => a.name === 'secure')!.targets.find((x) => x.address === wrongName.address)!;
  assert.deepEqual([shown.health, shown.lastError], ['unhealthy', 'SHAPER_ERR_TARGET_TLS (ERR_TLS_CERT_ALTNAME_INVALID)']);
  // Health checks are no dials: nothing counted as a failed handshake of a connection.
  assert.equal(proxy.stats.targetTlsFailures, 0);

  // The same target checked for a name its certificate has: healthy again at the next check.
  proxy.reload(config([app('secure', [good.address, wrongName.address], verified('localhost'))], { health: cfg.health }));
  await waitFor(() => target(wrongName.address).healthy, 5000, 'the target back up');
  assert.equal(target(wrongName.address).lastError, undefined);
});

test('TLS health checks send a PROXY header naming no address first when the app sends PROXY headers', async (t) => {
  const context = tls.createSecureContext({ cert: pemFile('backend').pem, key: pemFile('backend-key').pem });
  const headers: string[] = [];
  let handshakes = 0;
  const sockets = new Set<net.Socket>();
  // A target that reads a PROXY v2 header (16 bytes and its length) off the raw socket, then runs TLS.
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    const onReadable = () => {
      const buf = raw.read() as Buffer | null;
      if (!buf) return;
      if (buf.length < 16) return raw.unshift(buf);
      const end = 16 + buf.readUInt16BE(14);
      raw.off('readable', onReadable);
      headers.push(buf.subarray(0, end).toString('hex'));
      raw.unshift(buf.subarray(end));
      const s = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
      s.on('secure', () => handshakes++);
      s.on('error', () => {});
      s.resume();
    };
    raw.on('readable', onReadable);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const proxy = await startProxy(config([app('web', [address], { sendProxyProtocol: 'v2', ...verified('backend.test') })]));
  t.after(() => proxy.stop());
  await waitFor(() => handshakes === 1, 5000, 'the check\'s handshake');
  // v2 signature, version 2 + LOCAL, no address family, no addresses.
  assert.deepEqual(headers, ['0d0a0d0a000d0a515549540a' + '20' + '00' + '0000']);
  assert.equal(proxy.upstreams.byAddress.get(address)!.healthy, true);
});
