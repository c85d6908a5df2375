import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeProxyHeader, MAX_HEADER_BYTES, parseProxyHeader, V2_SIGNATURE, V1_MAX_BYTES } from '../../src/identify/proxy-protocol.js';

const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const port = fc.integer({ min: 0, max: 65535 });
const endpoint = (ip: fc.Arbitrary<string>) => fc.record({ address: ip, port });

/** A valid header: encoded v1/v2 with IPv4 or IPv6 addresses, or a v2 one with random TLV bytes. */
const validHeader = fc.oneof(
  fc.tuple(fc.constantFrom('v1' as const, 'v2' as const), fc.oneof(fc.tuple(endpoint(ipv4), endpoint(ipv4)), fc.tuple(endpoint(ipv6), endpoint(ipv6)))).map(
    ([v, [src, dst]]) => encodeProxyHeader(v, src, dst),
  ),
  fc.tuple(endpoint(ipv4), endpoint(ipv4), fc.uint8Array({ maxLength: 200 })).map(([src, dst, tlvs]) => {
    const h = encodeProxyHeader('v2', src, dst);
    const out = Buffer.concat([h, tlvs]);
    out.writeUInt16BE(h.length - 16 + tlvs.length, 14);
    return out;
  }),
);

test('arbitrary bytes never throw, and an answer is need-more, ok or error within the bounds', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    // Starts that get past the first checks, so the fuzz reaches the deeper code.
    fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.concat([Buffer.from('PROXY '), b])),
    fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.concat([Buffer.from('PROXY TCP4 '), b])),
    fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.concat([V2_SIGNATURE, b])),
  );
  fc.assert(
    fc.property(bytes, (buf) => {
      const r = parseProxyHeader(buf);
      if (r.kind === 'ok') {
        assert.ok(r.length <= buf.length);
        assert.ok(r.length <= (r.version === 1 ? V1_MAX_BYTES : MAX_HEADER_BYTES));
      }
      if (r.kind === 'need-more') assert.ok(buf.length < MAX_HEADER_BYTES);
    }),
    { numRuns: 3000 },
  );
});

test('any split of a valid header: need-more for every prefix, the same result once complete, trailing data ignored', () => {
  fc.assert(
    fc.property(validHeader, fc.uint8Array({ maxLength: 50 }), (header, trailing) => {
      const whole = parseProxyHeader(header);
      assert.equal(whole.kind, 'ok');
      for (let n = 0; n < header.length; n++) assert.equal(parseProxyHeader(header.subarray(0, n)).kind, 'need-more');
      assert.deepEqual(parseProxyHeader(Buffer.concat([header, trailing])), whole);
    }),
    { numRuns: 500 },
  );
});

test('encode then parse returns the endpoints', () => {
  fc.assert(
    fc.property(fc.constantFrom('v1' as const, 'v2' as const), endpoint(ipv4), endpoint(ipv4), (v, src, dst) => {
      const r = parseProxyHeader(encodeProxyHeader(v, src, dst));
      assert.equal(r.kind, 'ok');
      if (r.kind !== 'ok') return;
      const plain = (e: { address: string; port: number }) => ({ address: e.address, port: e.port });
      assert.deepEqual([r.source, r.destination], [plain(src), plain(dst)]);
    }),
  );
});
