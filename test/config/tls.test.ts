/** `tls`, `targetTls` and `match.sni` in the config: shapes, files read relative to the config, and every problem with its key path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { ROOT } from '../helpers.js';

const TLS_DIR = path.join(ROOT, 'test/fixtures/tls');
const base = { bind: '127.0.0.1', admin: false };
const web = (extra: Record<string, unknown>) => ({ ...base, apps: [{ name: 'web', ports: [5001], targets: ['127.0.0.1:9001'], ...extra }] });

function problems(raw: unknown, baseDir = TLS_DIR): string[] {
  try {
    parseConfig(raw, {}, { baseDir });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  assert.fail('the config was accepted');
}

test('tls: files relative to the config directory, defaults TLSv1.2 and 10 s, contents never in JSON', () => {
  const config = parseConfig(web({ tls: { cert: 'server.pem', key: 'server-key.pem' }, targetTls: { ca: 'ca.pem', servername: 'backend.test' } }), {}, { baseDir: TLS_DIR });
  const app = config.apps[0]!;
  const [served] = app.tls!.certificates;
  assert.equal(served?.cert.path, path.join(TLS_DIR, 'server.pem'));
  assert.match(served!.key.pem.toString(), /PRIVATE KEY/);
  assert.equal(app.tls?.minVersion, 'TLSv1.2');
  assert.equal(app.tls?.handshakeTimeout, 10_000);
  assert.deepEqual(JSON.parse(JSON.stringify(app.tls)), {
    // The server names are the certificate's DNS subjectAltNames (its IP address is no server name).
    certificates: [{ cert: path.join(TLS_DIR, 'server.pem'), key: path.join(TLS_DIR, 'server-key.pem'), serverNames: ['localhost', 'example.com', '*.example.com'] }],
    minVersion: 'TLSv1.2',
    handshakeTimeout: 10_000,
    clientAuth: 'none',
  });
  assert.equal(app.targetTls?.servername, 'backend.test');
  assert.equal(app.targetTls?.rejectUnauthorized, true);
  assert.equal(app.targetTls?.ca?.path, path.join(TLS_DIR, 'ca.pem'));

  const plain = parseConfig(web({ targetTls: true }), {}).apps[0]!;
  assert.deepEqual(plain.targetTls, { rejectUnauthorized: true });
  assert.equal(plain.tls, undefined);
  assert.equal(parseConfig(web({ targetTls: false, tls: null }), {}).apps[0]!.targetTls, undefined);
});

test('tls: a missing, unreadable or mismatched file is a problem with the key path and the file', () => {
  const missing = path.join(TLS_DIR, 'nope.pem');
  assert.deepEqual(problems(web({ tls: { cert: 'nope.pem', key: 'server-key.pem' } })), [`apps[0].tls.cert: cannot read ${JSON.stringify(missing)} (ENOENT)`]);
  assert.match(problems(web({ tls: { cert: 'server.pem', key: 'server2-key.pem' } }))[0]!, /^apps\[0\]\.tls\.key: ".*server2-key\.pem" is not the key of the certificate ".*server\.pem"$/);
  assert.match(problems(web({ tls: { cert: 'server-key.pem', key: 'server-key.pem' } }))[0]!, /^apps\[0\]\.tls\.cert: ".*server-key\.pem" is not a PEM certificate/);
  assert.match(problems(web({ tls: { cert: 'server.pem', key: 'ca.pem' } }))[0]!, /^apps\[0\]\.tls\.key: ".*ca\.pem" is not an unencrypted PEM private key/);
  assert.match(problems(web({ tls: { cert: 'server.pem', key: TLS_DIR } }))[0]!, /^apps\[0\]\.tls\.key: cannot read ".*" \(EISDIR\)$/);
  assert.match(problems(web({ targetTls: { ca: 'none.pem' } }))[0]!, /^apps\[0\]\.targetTls\.ca: cannot read ".*none\.pem" \(ENOENT\)$/);
});

test('tls, targetTls, match.sni: bad shapes are reported one line each', () => {
  const lines = problems({
    ...web({ tls: { cert: 'server.pem', minVersion: 'TLSv1.1', handshakeTimeout: 'soon', crt: 'x' }, targetTls: { ca: 7, servername: 'a b', rejectUnauthorised: false } }),
    tiers: { t: {} },
    customers: [{ id: 'a', tier: 't', match: { sni: ['ok.example.com', 'a.*.example.com'] } }, { id: 'b', tier: 't', match: { sni: [] } }],
  });
  const expect = [
    /^apps\[0\]\.tls\.key: required/,
    /^apps\[0\]\.tls\.minVersion: "TLSv1\.1" is not one of TLSv1\.2, TLSv1\.3$/,
    /^apps\[0\]\.tls\.handshakeTimeout: "soon" is not a duration/,
    /^apps\[0\]\.tls\.crt: unknown key \(did you mean "cert"\?\)$/,
    /^apps\[0\]\.targetTls\.ca: 7 is not a file path/,
    /^apps\[0\]\.targetTls\.servername: "a b" is not a host name/,
    /^apps\[0\]\.targetTls\.rejectUnauthorised: unknown key \(did you mean "rejectUnauthorized"\?\)$/,
    /^customers\[0\]\.match\.sni\[1\]: "a\.\*\.example\.com" has a wildcard that is not the whole first label/,
    /^customers\[1\]\.match\.sni: must list at least one/,
  ];
  for (const re of expect) assert.ok(lines.some((l) => re.test(l)), `${re} in\n${lines.join('\n')}`);
  assert.equal(lines.length, expect.length, lines.join('\n'));
  assert.match(problems(web({ tls: 'on' }))[0]!, /^apps\[0\]\.tls: must be an object like/);
  assert.match(problems(web({ targetTls: 1 }))[0]!, /^apps\[0\]\.targetTls: must be true, false or an object/);
});

test('match.sni: a single name or a list', () => {
  const config = parseConfig({
    ...web({ sniPreread: true }),
    tiers: { t: {} },
    customers: [{ id: 'a', tier: 't', match: { sni: '*.example.com' } }, { id: 'b', tier: 't', match: { sni: ['x.test', 'Y.test'] } }],
  });
  assert.deepEqual(config.customers.map((c) => c.match.sni), [['*.example.com'], ['x.test', 'Y.test']]);
});

test('sniPreread: for apps that pass TLS through, not together with tls', () => {
  assert.equal(parseConfig(web({ sniPreread: true }), {}).apps[0]!.sniPreread, true);
  assert.equal(parseConfig(web({}), {}).apps[0]!.sniPreread, undefined);
  assert.match(problems(web({ sniPreread: true, tls: { cert: 'server.pem', key: 'server-key.pem' } }))[0]!, /^apps\[0\]\.sniPreread: is for apps that pass TLS through/);
});

test('match.sni on customers whose apps never know a server name is a problem', () => {
  const apps = [
    { name: 'plain', ports: [5001], targets: ['127.0.0.1:9001'] },
    { name: 'secure', ports: [5002], targets: ['127.0.0.1:9001'], tls: { cert: 'server.pem', key: 'server-key.pem' } },
  ];
  const customers = [
    { id: 'a', tier: 't', match: { sni: 'a.test', apps: ['plain'] } },
    { id: 'b', tier: 't', match: { sni: 'b.test', apps: ['plain', 'secure'] } },
    { id: 'c', tier: 't', match: { sni: 'c.test' } },
  ];
  assert.deepEqual(problems({ ...base, apps, tiers: { t: {} }, customers }), [
    'customers[0].match.sni: can never match: none of its apps (plain) has "tls" or "sniPreread", so no connection carries a server name',
  ]);
  assert.deepEqual(problems({ ...base, apps: [apps[0]], tiers: { t: {} }, customers: [customers[2]] }), [
    'customers[0].match.sni: can never match: no app has "tls" or "sniPreread", so no connection carries a server name',
  ]);
});

test('tls.certificates: tls.cert is the default, then each listed one; server names from the DNS subjectAltNames unless given', () => {
  const tls = parseConfig(
    web({
      tls: {
        cert: 'server.pem',
        key: 'server-key.pem',
        certificates: [
          { cert: 'other.pem', key: 'other-key.pem' },
          { cert: 'ip-only.pem', key: 'ip-only-key.pem', serverNames: ['Legacy.Example.NET.', '*.legacy.test'] },
        ],
      },
    }),
    {},
    { baseDir: TLS_DIR },
  ).apps[0]!.tls!;
  assert.deepEqual(
    tls.certificates.map((c) => [path.basename(c.cert.path), c.serverNames]),
    [
      ['server.pem', ['localhost', 'example.com', '*.example.com']],
      ['other.pem', ['other.test', '*.other.test']],
      ['ip-only.pem', ['legacy.example.net', '*.legacy.test']],
    ],
  );
  // Without tls.cert the first of the list is the default, and may name no DNS name at all.
  const only = parseConfig(web({ tls: { certificates: [{ cert: 'ip-only.pem', key: 'ip-only-key.pem' }, { cert: 'other.pem', key: 'other-key.pem' }] } }), {}, { baseDir: TLS_DIR });
  assert.deepEqual(only.apps[0]!.tls!.certificates.map((c) => c.serverNames), [[], ['other.test', '*.other.test']]);
});

test('tls.certificates: every problem with its key path (shapes first, then the files)', () => {
  const tls = (certificates: unknown) => web({ tls: { cert: 'server.pem', key: 'server-key.pem', certificates } });
  // A config with bad shapes is reported without reading its files.
  assert.deepEqual(problems(tls([{ cert: 'other.pem', serverNames: ['ok.test', 'a.*.test'], sni: ['x'] }, 'other.pem'])), [
    'apps[0].tls.certificates[0].key: required, the private key file (PEM, unencrypted)',
    'apps[0].tls.certificates[0].serverNames[1]: "a.*.test" has a wildcard that is not the whole first label (use a host name like "api.example.com" or a wildcard like "*.example.com")',
    'apps[0].tls.certificates[0].sni: unknown key (known keys: cert, key, serverNames)',
    'apps[0].tls.certificates[1]: must be an object like {"cert": "certs/api.pem", "key": "certs/api-key.pem"} (got "other.pem")',
  ]);
  const files = problems(
    tls([
      { cert: 'nope.pem', key: 'other-key.pem' },
      { cert: 'other.pem', key: 'server-key.pem' },
      { cert: 'ip-only.pem', key: 'ip-only-key.pem' },
    ]),
  );
  assert.equal(files.length, 3, files.join('\n'));
  assert.match(files[0]!, /^apps\[0\]\.tls\.certificates\[0\]\.cert: cannot read ".*nope\.pem" \(ENOENT\)$/);
  assert.match(files[1]!, /^apps\[0\]\.tls\.certificates\[1\]\.key: ".*server-key\.pem" is not the key of the certificate ".*other\.pem"$/);
  assert.match(files[2]!, /^apps\[0\]\.tls\.certificates\[2\]\.cert: ".*ip-only\.pem" names no DNS server name \(subjectAltName\), so no SNI can choose it; list them in "serverNames"$/);

  assert.deepEqual(problems(tls([])), ['apps[0].tls.certificates: must list at least one of the certificates, e.g. [{"cert": "certs/api.pem", "key": "certs/api-key.pem"}]']);
  assert.match(problems(tls([{ cert: 'other.pem', key: 'other-key.pem', serverNames: [] }]))[0]!, /^apps\[0\]\.tls\.certificates\[0\]\.serverNames: must be a non-empty list of server names/);
  assert.match(problems(web({ tls: { key: 'server-key.pem' } }))[0]!, /^apps\[0\]\.tls\.cert: required, the certificate file/);
  assert.deepEqual(problems(web({ tls: { minVersion: 'TLSv1.3' } })), ['apps[0].tls.cert: required, the certificate file (PEM, the chain after the leaf) (or list "certificates")']);
});

test('tls.clientAuth and clientCa: the CA read and checked; one without the other is a problem', () => {
  const tls = (extra: Record<string, unknown>) => web({ tls: { cert: 'server.pem', key: 'server-key.pem', ...extra } });
  const required = parseConfig(tls({ clientAuth: 'require', clientCa: 'client-ca.pem' }), {}, { baseDir: TLS_DIR }).apps[0]!.tls!;
  assert.equal(required.clientAuth, 'require');
  assert.equal(required.clientCa?.path, path.join(TLS_DIR, 'client-ca.pem'));
  assert.equal(parseConfig(tls({ clientAuth: 'optional', clientCa: 'client-ca.pem' }), {}, { baseDir: TLS_DIR }).apps[0]!.tls!.clientAuth, 'optional');
  assert.equal(parseConfig(tls({ clientAuth: 'none' }), {}, { baseDir: TLS_DIR }).apps[0]!.tls!.clientCa, undefined);

  assert.deepEqual(problems(tls({ clientAuth: 'require' })), [
    'apps[0].tls.clientCa: required when clientAuth is "require", the CA certificate(s) client certificates must chain to (PEM)',
  ]);
  assert.deepEqual(problems(tls({ clientCa: 'client-ca.pem' })), [
    'apps[0].tls.clientCa: is set but clientAuth is "none" (the default), so no client certificate is asked for: set clientAuth to "require" or "optional"',
  ]);
  assert.deepEqual(problems(tls({ clientAuth: 'yes', clientCa: 'client-ca.pem' })), ['apps[0].tls.clientAuth: "yes" is not one of none, optional, require']);
  assert.match(problems(tls({ clientAuth: 'require', clientCa: 'client-alice-key.pem' }))[0]!, /^apps\[0\]\.tls\.clientCa: ".*client-alice-key\.pem" is not a PEM certificate/);
  assert.match(problems(tls({ clientAuth: 'require', clientCa: 'none.pem' }))[0]!, /^apps\[0\]\.tls\.clientCa: cannot read ".*none\.pem" \(ENOENT\)$/);
});

test('match.clientCert: subjects checked, one or a list; a customer whose apps never ask for a client certificate is a problem', () => {
  const apps = [
    { name: 'plain', ports: [5001], targets: ['127.0.0.1:9001'], tls: { cert: 'server.pem', key: 'server-key.pem' } },
    { name: 'mtls', ports: [5002], targets: ['127.0.0.1:9001'], tls: { cert: 'server.pem', key: 'server-key.pem', clientAuth: 'optional', clientCa: 'client-ca.pem' } },
  ];
  const config = parseConfig(
    {
      ...base,
      apps,
      tiers: { t: {} },
      customers: [
        { id: 'alice', tier: 't', match: { clientCert: 'CN=alice' } },
        { id: 'acme', tier: 't', match: { clientCert: ['O=Acme, CN=bob', 'o=acme'], apps: ['mtls'] } },
      ],
    },
    {},
    { baseDir: TLS_DIR },
  );
  assert.deepEqual(config.customers.map((c) => c.match.clientCert), [['CN=alice'], ['O=Acme, CN=bob', 'o=acme']]);

  const lines = problems({
    ...base,
    apps,
    tiers: { t: {} },
    customers: [
      { id: 'a', tier: 't', match: { clientCert: ['CN=alice', 'alice', 'CN='] } },
      { id: 'b', tier: 't', match: { clientCert: [] } },
      { id: 'c', tier: 't', match: { clientCert: 'CN=carol', apps: ['plain'] } },
    ],
  });
  assert.deepEqual(lines, [
    'customers[0].match.clientCert[1]: "alice" is not a certificate subject (use "ATTR=value" pairs like "CN=alice" or "CN=alice, O=Acme")',
    'customers[0].match.clientCert[2]: "CN=" is not a certificate subject (use "ATTR=value" pairs like "CN=alice" or "CN=alice, O=Acme")',
    'customers[1].match.clientCert: must list at least one of the certificate subjects, e.g. ["CN=alice", "O=Acme"] (leave "clientCert" out to match any)',
    'customers[2].match.clientCert: can never match: none of its apps (plain) has "tls.clientAuth" ("require" or "optional"), so no connection carries a client certificate',
  ]);
});

test('sniPrereadTimeout: a duration for sniPreread apps (absent: the built-in 5 s), a problem anywhere else', () => {
  assert.equal(parseConfig(web({ sniPreread: true, sniPrereadTimeout: '1.5s' }), {}).apps[0]!.sniPrereadTimeout, 1500);
  assert.equal(parseConfig(web({ sniPreread: true }), {}).apps[0]!.sniPrereadTimeout, undefined);
  assert.deepEqual(problems(web({ sniPrereadTimeout: '2s' })), ['apps[0].sniPrereadTimeout: is only used with "sniPreread": true (set that too, or leave sniPrereadTimeout out)']);
  assert.deepEqual(problems(web({ sniPreread: true, sniPrereadTimeout: 0 })), ['apps[0].sniPrereadTimeout: must be more than 0 (got 0)']);
  assert.match(problems(web({ sniPreread: true, sniPrereadTimeout: 'soon' }))[0]!, /^apps\[0\]\.sniPrereadTimeout: "soon" is not a duration/);
});
