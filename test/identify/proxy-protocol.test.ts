import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeProxyHeader, parseProxyHeader, V2_SIGNATURE, type ProxyParse } from '../../src/identify/proxy-protocol.js';
import { parseConfig } from '../../src/config/load.js';

const v1 = (s: string) => Buffer.from(s, 'latin1');

function v2(verCmd: number, famProto: number, body: number[] | Buffer): Buffer {
  const b = Buffer.from(body);
  const head = Buffer.alloc(4);
  head[0] = verCmd;
  head[1] = famProto;
  head.writeUInt16BE(b.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, b]);
}

const TCP4_BODY = [10, 1, 2, 3, 192, 168, 0, 1, 0x04, 0x57, 0x00, 0x50]; // 10.1.2.3:1111 -> 192.168.0.1:80

function ok(r: ProxyParse) {
  assert.equal(r.kind, 'ok', JSON.stringify(r));
  return r as Extract<ProxyParse, { kind: 'ok' }>;
}

function errorOf(buf: Buffer): string {
  const r = parseProxyHeader(buf);
  assert.equal(r.kind, 'error', JSON.stringify(r));
  return (r as { reason: string }).reason;
}

test('v1 TCP4: addresses, ports and length; the bytes after are not part of it', () => {
  const h = 'PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n';
  const r = ok(parseProxyHeader(v1(h + 'GET / HTTP/1.1')));
  assert.deepEqual(r, {
    kind: 'ok',
    version: 1,
    length: h.length,
    family: 'tcp4',
    local: false,
    source: { address: '1.2.3.4', port: 1111 },
    destination: { address: '5.6.7.8', port: 2222 },
  });
});

test('v1 TCP6, including an IPv4-mapped source', () => {
  const r = ok(parseProxyHeader(v1('PROXY TCP6 2001:db8::1 ::1 65535 0\r\n')));
  assert.equal(r.family, 'tcp6');
  assert.deepEqual(r.source, { address: '2001:db8::1', port: 65535 });
  assert.deepEqual(r.destination, { address: '::1', port: 0 });
  const mapped = ok(parseProxyHeader(v1('PROXY TCP6 ::ffff:10.1.2.3 ::1 1 2\r\n')));
  assert.equal(mapped.source!.address, '10.1.2.3');
});

test('v1 UNKNOWN is local: no addresses', () => {
  for (const h of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n']) {
    const r = ok(parseProxyHeader(v1(h)));
    assert.equal(r.local, true);
    assert.equal(r.length, h.length);
    assert.equal(r.source, undefined);
  }
});

test('v1 longest valid header (107 bytes) parses', () => {
  const a = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  const h = `PROXY TCP6 ${a} ${a} 65535 65535\r\n`;
  assert.equal(h.length, 104);
  assert.equal(ok(parseProxyHeader(v1(h))).length, 104);
});

test('v2 PROXY TCP4, with and without TLVs', () => {
  const plain = v2(0x21, 0x11, TCP4_BODY);
  const r = ok(parseProxyHeader(Buffer.concat([plain, v1('data')])));
  assert.deepEqual(r, {
    kind: 'ok',
    version: 2,
    length: 28,
    family: 'tcp4',
    local: false,
    source: { address: '10.1.2.3', port: 1111 },
    destination: { address: '192.168.0.1', port: 80 },
  });
  // PP2_TYPE_ALPN "h2" and PP2_TYPE_AUTHORITY "example.com": skipped, counted in the length.
  const tlvs = [0x01, 0, 2, ...v1('h2'), 0x02, 0, 11, ...v1('example.com')];
  const withTlvs = ok(parseProxyHeader(v2(0x21, 0x11, [...TCP4_BODY, ...tlvs])));
  assert.equal(withTlvs.length, 28 + tlvs.length);
  assert.deepEqual(withTlvs.source, r.source);
});

test('v2 PROXY TCP6', () => {
  const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const dst = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 9];
  const r = ok(parseProxyHeader(v2(0x21, 0x21, [...src, ...dst, 0x30, 0x39, 0x01, 0xbb, 0x04, 0, 0])));
  assert.equal(r.family, 'tcp6');
  assert.equal(r.length, 16 + 36 + 3);
  assert.deepEqual(r.source, { address: '2001:db8::1', port: 12345 });
  assert.deepEqual(r.destination, { address: '10.0.0.9', port: 443 });
});

test('v2 LOCAL and UNSPEC are local: the socket addresses stand', () => {
  const local = ok(parseProxyHeader(v2(0x20, 0x00, [])));
  assert.equal(local.local, true);
  assert.equal(local.length, 16);
  assert.equal(ok(parseProxyHeader(v2(0x20, 0x11, TCP4_BODY))).local, true);
  assert.equal(ok(parseProxyHeader(v2(0x21, 0x00, []))).local, true);
});

test('a header split into 1-byte chunks is need-more until its last byte', () => {
  const headers = [v1('PROXY TCP4 10.1.2.3 10.0.0.1 40000 80\r\n'), v2(0x21, 0x11, [...TCP4_BODY, 0x04, 0, 0])];
  for (const h of headers) {
    for (let n = 0; n < h.length; n++) assert.deepEqual(parseProxyHeader(h.subarray(0, n)), { kind: 'need-more' }, `at ${n}`);
    assert.equal(ok(parseProxyHeader(h)).length, h.length);
  }
});

test('malformed headers are errors, as early as the bytes allow', () => {
  assert.match(errorOf(v1('GET / HTTP/1.1\r\n')), /no PROXY/);
  assert.match(errorOf(v1('PROXX')), /signature/);
  assert.match(errorOf(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1111 65536\r\n')), /port/);
  assert.match(errorOf(v1('PROXY TCP4 1.2.3.4 5.6.7.8 01111 22\r\n')), /port/);
  assert.match(errorOf(v1('PROXY TCP4 1.2.3.4 5.6.7.8 -1 22\r\n')), /port/);
  assert.match(errorOf(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1111\r\n')), /expected/);
  assert.match(errorOf(v1('PROXY TCP4 ::1 ::1 1 2\r\n')), /address/);
  assert.match(errorOf(v1('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n')), /address/);
  assert.match(errorOf(v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')), /protocol/);
  assert.match(errorOf(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')), /CRLF/);
  assert.match(errorOf(v1('PROXY TCP4 1.2.3.4\0')), /character/);
  assert.match(errorOf(v1('PROXY ' + 'x'.repeat(120))), /longer than 107/);
  assert.match(errorOf(v1('PROXY ' + 'x'.repeat(101))), /longer than 107/); // 107 bytes, no LF
  assert.equal(parseProxyHeader(v1('PROXY ' + 'x'.repeat(100))).kind, 'need-more');

  const bad = Buffer.from(v2(0x21, 0x11, TCP4_BODY));
  bad[3] = 0x00;
  assert.match(errorOf(bad), /signature/);
  assert.match(errorOf(v2(0x11, 0x11, TCP4_BODY)), /version/);
  assert.match(errorOf(v2(0x11, 0x11, TCP4_BODY).subarray(0, 13)), /version/);
  assert.match(errorOf(v2(0x22, 0x11, TCP4_BODY)), /command/);
  assert.match(errorOf(v2(0x21, 0x12, TCP4_BODY)), /STREAM/);
  assert.match(errorOf(v2(0x21, 0x41, TCP4_BODY)), /family/);
  assert.match(errorOf(v2(0x21, 0x11, TCP4_BODY.slice(0, 8))), /too short/);
  assert.match(errorOf(v2(0x21, 0x21, TCP4_BODY)), /too short/);
  assert.match(errorOf(v2(0x21, 0x11, Buffer.alloc(5000))), /longer than 4096/);
  // Truncated: the length promises more than has come.
  assert.equal(parseProxyHeader(v2(0x21, 0x11, TCP4_BODY).subarray(0, 27)).kind, 'need-more');
});

test('encode then parse gives back the addresses (v1 and v2, IPv4, IPv6, mixed)', () => {
  const cases = [
    [{ address: '10.1.2.3', port: 40000 }, { address: '127.0.0.1', port: 80 }, 'tcp4'],
    [{ address: '2001:db8::7', port: 1 }, { address: '::1', port: 65535 }, 'tcp6'],
    [{ address: '10.1.2.3', port: 5 }, { address: 'fe80::1', port: 6 }, 'tcp6'],
  ] as const;
  for (const version of ['v1', 'v2'] as const) {
    for (const [src, dst, family] of cases) {
      const h = encodeProxyHeader(version, src, dst);
      const r = ok(parseProxyHeader(Buffer.concat([h, v1('rest')])));
      assert.equal(r.version, version === 'v1' ? 1 : 2);
      assert.equal(r.length, h.length);
      assert.equal(r.family, family);
      assert.deepEqual(r.source, src);
      assert.deepEqual(r.destination, dst);
    }
  }
  assert.equal(encodeProxyHeader('v1', { address: '10.1.2.3', port: 1 }, { address: '127.0.0.1', port: 2 }).toString(), 'PROXY TCP4 10.1.2.3 127.0.0.1 1 2\r\n');
  assert.equal(encodeProxyHeader('v1', { address: '', port: 0 }, { address: '', port: 0 }).toString(), 'PROXY UNKNOWN\r\n');
  assert.equal(ok(parseProxyHeader(encodeProxyHeader('v2', { address: '', port: 0 }, { address: '', port: 0 }))).local, true);
});

test('config: acceptProxyProtocol and sendProxyProtocol per app, checked with their key paths', () => {
  const base = { name: 'web', ports: [0], targets: ['127.0.0.1:9001'] };
  const cfg = parseConfig({ apps: [{ ...base, acceptProxyProtocol: true, sendProxyProtocol: 'v2' }, { ...base, name: 'b' }] }, {});
  assert.equal(cfg.apps[0]!.acceptProxyProtocol, true);
  assert.equal(cfg.apps[0]!.sendProxyProtocol, 'v2');
  assert.equal(cfg.apps[1]!.acceptProxyProtocol, undefined);
  assert.equal(cfg.apps[1]!.sendProxyProtocol, undefined);
  assert.throws(() => parseConfig({ apps: [{ ...base, acceptProxyProtocol: 1, sendProxyProtocol: 'v3' }] }, {}), (err: Error) => {
    assert.match(err.message, /apps\[0\]\.acceptProxyProtocol: must be true or false/);
    assert.match(err.message, /apps\[0\]\.sendProxyProtocol: "v3" is not one of v1, v2/);
    return true;
  });
});
