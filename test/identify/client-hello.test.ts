import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { parseClientHello } from '../../src/identify/client-hello.js';

/** The first flight a real Node TLS client sends with `opts` (its ClientHello), captured off a plain TCP server. */
async function captureHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (parseClientHello(buf).kind !== 'need-more') {
          resolve(buf);
          s.destroy();
        }
      });
      s.on('error', () => {});
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', ...opts });
  client.on('error', () => {});
  const hello = await got;
  client.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return hello;
}

test('ClientHello: the server name of real TLS 1.3 and 1.2 hellos; none when the client sends none', async () => {
  assert.deepEqual(parseClientHello(await captureHello({ servername: 'Shop.Example.com' })), { kind: 'ok', serverName: 'Shop.Example.com' });
  assert.deepEqual(parseClientHello(await captureHello({ servername: 'a.example.com', maxVersion: 'TLSv1.2' })), { kind: 'ok', serverName: 'a.example.com' });
  // Node sends no SNI for an IP address.
  assert.deepEqual(parseClientHello(await captureHello({})), { kind: 'ok', serverName: undefined });
});

test('ClientHello: bytes arriving one at a time, and a hello split over two records', async () => {
  const hello = await captureHello({ servername: 'api.example.com' });
  for (let n = 0; n < hello.length; n++) {
    const r = parseClientHello(hello.subarray(0, n));
    if (r.kind !== 'need-more') assert.fail(`${r.kind} after ${n} of ${hello.length} bytes`);
  }
  const payload = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const record = (part: Buffer) => Buffer.concat([Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part]);
  const split = Buffer.concat([record(payload.subarray(0, 3)), record(payload.subarray(3))]);
  assert.equal(parseClientHello(split.subarray(0, split.length - 1)).kind, 'need-more');
  assert.deepEqual(parseClientHello(split), { kind: 'ok', serverName: 'api.example.com' });
});

test('ClientHello: not TLS, or malformed, is not-tls at once', () => {
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'not-tls');
  assert.equal(parseClientHello(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')).kind, 'not-tls');
  assert.equal(parseClientHello(Buffer.from([0x16, 2, 0, 0, 5])).kind, 'not-tls', 'SSLv2-era version');
  assert.equal(parseClientHello(Buffer.from([0x16, 3, 1, 0, 0])).kind, 'not-tls', 'an empty record');
  assert.equal(parseClientHello(Buffer.from([0x16, 3, 1, 0xff, 0xff])).kind, 'not-tls', 'a record too long for a hello');
  assert.equal(parseClientHello(Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0])).kind, 'not-tls', 'a ServerHello');
  assert.equal(parseClientHello(Buffer.from([0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3])).kind, 'not-tls', 'a truncated body');
  assert.equal(parseClientHello(Buffer.alloc(0)).kind, 'need-more');
  assert.equal(parseClientHello(Buffer.from([0x16, 3])).kind, 'need-more');
});
