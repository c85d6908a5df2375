import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_CLIENT_HELLO, parseClientHello } from '../../src/identify/client-hello.js';

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const vec8 = (b: Uint8Array) => Buffer.concat([Buffer.from([b.length]), b]);
const vec16 = (b: Uint8Array) => Buffer.concat([u16(b.length), b]);

/** A ClientHello record: random session id, ciphers and extensions, with a server_name extension for `name` (if any) among them. */
function encodeHello(name: string | undefined, before: Uint8Array[], after: Uint8Array[], sessionId: Uint8Array, ciphers: Uint8Array): Buffer {
  const ext = (type: number, body: Uint8Array) => Buffer.concat([u16(type), vec16(body)]);
  const sni = name === undefined ? [] : [ext(0, vec16(Buffer.concat([Buffer.from([0]), vec16(Buffer.from(name, 'latin1'))])))];
  // Other extensions get types from 1 up: never server_name.
  const others = (list: Uint8Array[], base: number) => list.map((b, i) => ext(base + i, b));
  const extensions = Buffer.concat([...others(before, 1), ...sni, ...others(after, 100)]);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), vec8(sessionId), vec16(ciphers), vec8(Buffer.from([0])), vec16(extensions)]);
  const hs = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const hostName = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));
const blobs = fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 5 });

test('encoded ClientHellos: the server name comes back wherever its extension sits, and any prefix is need-more', () => {
  fc.assert(
    fc.property(fc.option(hostName, { nil: undefined }), blobs, blobs, fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ minLength: 2, maxLength: 60 }), (name, before, after, sid, ciphers) => {
      const hello = encodeHello(name, before, after, sid, ciphers);
      assert.deepEqual(parseClientHello(hello), { kind: 'ok', serverName: name });
      const cut = Math.floor(hello.length / 2);
      assert.equal(parseClientHello(hello.subarray(0, cut)).kind, 'need-more');
    }),
  );
});

test('a hello longer than MAX_CLIENT_HELLO is not-tls, never buffered further', () => {
  const huge = encodeHello('x.test', [Buffer.alloc(255)], [], Buffer.alloc(0), Buffer.alloc(MAX_CLIENT_HELLO));
  assert.equal(parseClientHello(huge.subarray(0, 5 + 4)).kind, 'not-tls');
});

test('arbitrary and mutated bytes never throw; a name, when found, is a plain host name', () => {
  const sample = encodeHello('api.example.com', [Buffer.from([1, 2, 3])], [Buffer.from([4])], Buffer.alloc(32, 1), Buffer.from([0x13, 0x01]));
  const mutated = fc.tuple(fc.integer({ min: 0, max: sample.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: sample.length })).map(([i, v, len]) => {
    const b = Buffer.from(sample);
    b[i] = v;
    return b.subarray(0, len);
  });
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from([0x16, 3, 1]), b])),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from([0x16, 3, 1, b.length >> 8, b.length & 0xff, 1]), b])),
    mutated,
  );
  fc.assert(
    fc.property(bytes, (buf) => {
      const r = parseClientHello(Buffer.from(buf));
      if (r.kind === 'ok' && r.serverName !== undefined) assert.match(r.serverName, /^[A-Za-z0-9._-]{1,253}$/);
    }),
    { numRuns: 2000 },
  );
});
