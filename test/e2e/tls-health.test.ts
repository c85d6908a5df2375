/**
 * Active health checks of `targetTls` apps: a TLS handshake with the app's own verification
 * settings, real TLS targets on 127.0.0.1. A failed handshake marks the target down with OpenSSL's
 * reason in the log and /status; it is put back only when its TLS works again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppConfig } from '../../src/config/types.js';
import { app, backendFor, captureLogger, config, pemFile, proxyFor, tlsTargetFor, waitFor } from '../helpers.js';

const verified = (servername: string): Partial<AppConfig> => ({ targetTls: { ca: pemFile('ca'), servername, rejectUnauthorized: true } });

test('TLS health checks: a target whose certificate fails is marked down with the reason; a good one stays up; put back once its TLS works', async (t) => {
  const good = await tlsTargetFor(t);
  const wrongName = await tlsTargetFor(t, 'server'); // signed by the test CA, not for backend.test
  const plain = await backendFor(t, 'echo'); // not TLS at all
  const cfg = config([app('secure', [good.address, wrongName.address]), app('not-tls', [plain.address])].map((a) => ({ ...a, ...verified('backend.test') })), {
    health: { interval: 100, timeout: 1000, unhealthyAfter: 1, healthyAfter: 1 },
  });
  const { log, lines } = captureLogger();
  const proxy = await proxyFor(t, cfg, { log });

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
  const target = await tlsTargetFor(t, 'backend', { proxyHeader: true });
  const proxy = await proxyFor(t, config([app('web', [target.address], { sendProxyProtocol: 'v2', ...verified('backend.test') })]));
  await waitFor(() => target.handshakes() === 1, 5000, 'the check\'s handshake');
  // v2 signature, version 2 + LOCAL, no address family, no addresses.
  assert.deepEqual(target.headers, ['0d0a0d0a000d0a515549540a' + '20' + '00' + '0000']);
  assert.equal(proxy.upstreams.byAddress.get(target.address)!.healthy, true);
});
