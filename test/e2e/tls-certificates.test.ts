/**
 * Several certificates per app, chosen by the client's SNI, and client certificates (mutual TLS):
 * real handshakes with node:tls clients against an in-process proxy, configs read by the loader
 * (so the server names come from the fixtures' subjectAltNames).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type tls from 'node:tls';
import { parseConfig } from '../../src/config/load.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { backendFor, captureLogger, echoesExactly, pattern, pemFile, proxyFor, TLS_DIR, tlsConnect, waitFor } from '../helpers.js';

/** A config as the loader reads it, files relative to the fixtures; port 0, no admin, checks rare. */
function load(apps: Record<string, unknown>[], extra: Record<string, unknown> = {}): ProxyConfig {
  const config = parseConfig({ bind: '127.0.0.1', admin: false, log: { level: 'info' }, ...extra, apps }, {}, { baseDir: TLS_DIR });
  return { ...config, health: { ...config.health, interval: 60_000 } };
}

const fingerprint = (name: string): string => new crypto.X509Certificate(pemFile(name).pem).fingerprint256;

/** The certificate the proxy served for `servername` (undefined: no SNI); the name is not checked. */
async function servedFor(port: number, servername: string | undefined): Promise<string> {
  const s = await tlsConnect(port, { servername, checkServerIdentity: () => undefined });
  const served = s.getPeerCertificate().fingerprint256;
  s.destroy();
  return served;
}

/**
 * A handshake the proxy refuses. Under TLS 1.3 the client's side of the handshake is done before
 * the server has checked its certificate, so the client may see it succeed and then an alert or
 * the proxy's FIN: whichever it sees, no byte comes back.
 */
async function refused(port: number, opts: tls.ConnectionOptions): Promise<void> {
  const s = await tlsConnect(port, opts).catch(() => undefined);
  if (!s) return;
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  const over = new Promise((r) => {
    s.once('error', r);
    s.once('end', r);
    s.once('close', r);
  });
  s.write('hello');
  await over;
  s.destroy();
  assert.equal(Buffer.concat(chunks).length, 0, 'nothing came back');
}

const clientCert = (name: string): tls.ConnectionOptions => ({ cert: pemFile(name).pem, key: pemFile(`${name}-key`).pem });

test('several certificates: SNI chooses by exact name, then a one-label wildcard; no SNI or an unknown name gets the default', async (t) => {
  const backend = await backendFor(t, 'echo');
  const { log, lines } = captureLogger();
  const proxy = await proxyFor(
    t,
    load([
      {
        name: 'web',
        ports: [0],
        targets: [backend.address],
        tls: {
          cert: 'server.pem',
          key: 'server-key.pem',
          certificates: [
            { cert: 'other.pem', key: 'other-key.pem' },
            { cert: 'ip-only.pem', key: 'ip-only-key.pem', serverNames: ['legacy.test'] },
            // Listed after other.pem, which has the same names: never chosen for them.
            { cert: 'server2.pem', key: 'server2-key.pem', serverNames: ['other.test', 'second.test'] },
          ],
        },
      },
    ]),
    { backends: [backend], log },
  );
  const port = proxy.portOf('web');
  const cases: [string | undefined, string][] = [
    ['localhost', 'server'],
    ['other.test', 'other'],
    ['OTHER.test.', 'other'],
    ['a.other.test', 'other'],
    ['a.b.other.test', 'server'], // "*.other.test" covers one label, as a client checks it
    ['legacy.test', 'ip-only'],
    ['second.test', 'server2'],
    ['unknown.test', 'server'],
    [undefined, 'server'],
  ];
  for (const [servername, cert] of cases) assert.equal(await servedFor(port, servername), fingerprint(cert), `${servername ?? '(no SNI)'} gets ${cert}`);

  // A client that verifies: the chosen certificate is valid for its name, and the bytes pass.
  const s = await tlsConnect(port, { servername: 'api.other.test' });
  assert.equal(s.getPeerCertificate().subject.CN, 'other.test');
  await echoesExactly(s, pattern(50_000, 41));
  s.destroy();

  // /status: the default certificate's fields as before, then every certificate with its names.
  const status = proxy.status() as { apps: { tls: { fingerprint256: string; certificates: { cert: string; serverNames: string[] }[]; clientAuth: string } }[] };
  const shown = status.apps[0]!.tls;
  assert.equal(shown.fingerprint256, fingerprint('server'));
  assert.equal(shown.clientAuth, 'none');
  assert.deepEqual(
    shown.certificates.map((c) => [c.cert, c.serverNames]),
    [
      [pemFile('server').path, ['localhost', 'example.com', '*.example.com']],
      [pemFile('other').path, ['other.test', '*.other.test']],
      [pemFile('ip-only').path, ['legacy.test']],
      [pemFile('server2').path, ['other.test', 'second.test']],
    ],
  );
  // Each is logged once as loaded, with its names.
  const loaded = lines.filter((l) => l['msg'] === 'TLS certificate loaded');
  assert.deepEqual(loaded.map((l) => l['fingerprint256']), ['server', 'other', 'ip-only', 'server2'].map(fingerprint));
  assert.deepEqual(loaded[1]!['serverNames'], ['other.test', '*.other.test']);

  // A reload that drops a certificate: new handshakes for its names get the default.
  proxy.reload(load([{ name: 'web', ports: [0], targets: [backend.address], tls: { cert: 'server.pem', key: 'server-key.pem', certificates: [{ cert: 'ip-only.pem', key: 'ip-only-key.pem', serverNames: ['legacy.test'] }] } }]));
  assert.equal(await servedFor(port, 'other.test'), fingerprint('server'));
  assert.equal(await servedFor(port, 'legacy.test'), fingerprint('ip-only'));
});

test('clientAuth "require": a certificate from clientCa is needed; its subject is logged and picks the customer; others fail the handshake, nothing dialed', async (t) => {
  const backend = await backendFor(t, 'echo');
  const { log, lines } = captureLogger();
  const proxy = await proxyFor(
    t,
    load([{ name: 'mtls', ports: [0], targets: [backend.address], tls: { cert: 'server.pem', key: 'server-key.pem', clientAuth: 'require', clientCa: 'client-ca.pem' } }], {
      tiers: { gold: {}, silver: {} },
      customers: [
        { id: 'alice', tier: 'gold', match: { clientCert: 'CN=alice' } },
        { id: 'acme', tier: 'silver', match: { clientCert: 'O=Acme' } },
      ],
    }),
    { backends: [backend], log },
  );
  const port = proxy.portOf('mtls');

  for (const [who, customer] of [
    ['client-alice', 'alice'],
    ['client-bob', 'acme'],
  ] as const) {
    const s = await tlsConnect(port, clientCert(who));
    await echoesExactly(s, pattern(20_000, 42));
    const conn = [...proxy.connections][0]!;
    assert.equal(conn.clientCert, `O=Acme, CN=${who.slice('client-'.length)}`);
    assert.equal(conn.shaped?.customer.id, customer);
    s.destroy();
    await waitFor(() => proxy.connections.size === 0, 3000, 'the connection to close');
  }
  const closed = lines.filter((l) => l['msg'] === 'connection closed');
  assert.deepEqual(closed.map((l) => [l['clientCert'], l['customer'], l['reason']]), [
    ['O=Acme, CN=alice', 'alice', 'done'],
    ['O=Acme, CN=bob', 'acme', 'done'],
  ]);

  // No certificate; alice's name from the wrong CA; a server certificate (the wrong CA, and not for clients).
  await refused(port, {});
  await refused(port, clientCert('client-rogue'));
  await refused(port, clientCert('server'));
  await waitFor(() => proxy.closedByReason.get('tls_handshake') === 3, 3000, 'three tls_handshake closes');
  assert.equal(backend.accepted, 2, 'nothing dialed for the refused clients');
  const errors = lines.filter((l) => l['msg'] === 'connection closed' && l['reason'] === 'tls_handshake').map((l) => String(l['error']));
  assert.equal(errors[0], 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
  // OpenSSL's verify errors: the wrong CA (the client sends the test CA along, as its context trusts
  // it: a root the proxy does not), and a certificate that is no client certificate.
  assert.match(errors[1]!, /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);
  assert.match(errors[2]!, /^(INVALID_PURPOSE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);
  assert.ok(lines.every((l) => l['reason'] !== 'tls_handshake' || l['clientCert'] === undefined), 'a refused certificate is no identity');
  assert.match(await proxy.metrics.scrape(), /shaper_tls_handshake_failures_total\{side="client"\} 3/);
  const status = proxy.status() as { apps: { tls: { clientAuth: string; clientCa: string } }[] };
  assert.deepEqual([status.apps[0]!.tls.clientAuth, status.apps[0]!.tls.clientCa], ['require', pemFile('client-ca').path]);
});

test('clientAuth "optional": a client without a certificate is served without one; a certificate that is sent must verify', async (t) => {
  const backend = await backendFor(t, 'echo');
  const proxy = await proxyFor(
    t,
    load([{ name: 'web', ports: [0], targets: [backend.address], tls: { cert: 'server.pem', key: 'server-key.pem', clientAuth: 'optional', clientCa: 'client-ca.pem' } }], {
      tiers: { gold: {} },
      customers: [{ id: 'alice', tier: 'gold', match: { clientCert: 'CN=alice' } }],
    }),
    { backends: [backend], log: captureLogger().log },
  );
  const port = proxy.portOf('web');
  for (const [opts, subject] of [
    [{}, undefined],
    [clientCert('client-alice'), 'O=Acme, CN=alice'],
  ] as const) {
    const s = await tlsConnect(port, opts);
    await echoesExactly(s, pattern(10_000, 43));
    const conn = [...proxy.connections][0]!;
    assert.equal(conn.clientCert, subject);
    assert.equal(conn.shaped?.customer.id, subject ? 'alice' : undefined);
    s.destroy();
    await waitFor(() => proxy.connections.size === 0, 3000, 'the connection to close');
  }
  await refused(port, clientCert('client-rogue'));
  await waitFor(() => proxy.closedByReason.get('tls_handshake') === 1, 3000, 'the tls_handshake close');
  assert.equal(backend.accepted, 2);
});

test('several certificates with clientAuth: every certificate SNI chooses asks for and checks the client certificate', async (t) => {
  const backend = await backendFor(t, 'echo');
  const proxy = await proxyFor(
    t,
    load([
      {
        name: 'web',
        ports: [0],
        targets: [backend.address],
        tls: { cert: 'server.pem', key: 'server-key.pem', certificates: [{ cert: 'other.pem', key: 'other-key.pem' }], clientAuth: 'require', clientCa: 'client-ca.pem' },
      },
    ]),
    { backends: [backend], log: captureLogger().log },
  );
  const port = proxy.portOf('web');
  const s = await tlsConnect(port, { servername: 'other.test', ...clientCert('client-bob') });
  assert.equal(s.getPeerCertificate().subject.CN, 'other.test');
  await echoesExactly(s, pattern(10_000, 44));
  assert.equal([...proxy.connections][0]!.clientCert, 'O=Acme, CN=bob');
  s.destroy();
  await refused(port, { servername: 'other.test' });
  await refused(port, { servername: 'other.test', ...clientCert('client-rogue') });
  await waitFor(() => proxy.closedByReason.get('tls_handshake') === 2, 3000, 'two tls_handshake closes');
  assert.equal(backend.accepted, 1);
});
