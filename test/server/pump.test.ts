import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pump } from '../../src/server/pump.js';
import { pattern, readAll, sha256, waitFor } from '../helpers.js';

/**
 * client <-> [a, b] <-> server: `a` is accepted from the client, `b` dials the server, and the
 * two pumps copy a -> b and b -> a, as a proxy's unshaped connection does.
 */
async function pumped(t: import('node:test').TestContext) {
  let serverSide: net.Socket | undefined;
  const server = net.createServer({ allowHalfOpen: true }, (s) => (serverSide = s));
  let a: net.Socket | undefined;
  const middle = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => (a = s));
  await Promise.all([server, middle].map((srv) => new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))));
  const port = (srv: net.Server) => (srv.address() as net.AddressInfo).port;
  const client = net.connect({ port: port(middle), host: '127.0.0.1', allowHalfOpen: true });
  await waitFor(() => a !== undefined, 5000, 'accepted');
  const b = net.connect({ port: port(server), host: '127.0.0.1', allowHalfOpen: true });
  await waitFor(() => serverSide !== undefined, 5000, 'dialed');
  pump(a!, b);
  pump(b, a!);
  a!.resume();
  t.after(() => {
    for (const s of [client, a, b, serverSide]) s?.destroy();
    server.close();
    middle.close();
  });
  return { client, a: a!, b, server: serverSide! };
}

test('pump: backpressure pauses the source instead of buffering, and every byte arrives in order', async (t) => {
  const { client, a, b, server } = await pumped(t);
  server.pause();
  const data = pattern(16 * 1024 * 1024, 3);
  client.write(data);
  // The server reads nothing: the pump must stop reading the client once b is full.
  await waitFor(() => a.isPaused(), 10_000, 'source paused');
  assert.ok(b.writableLength <= 1024 * 1024, `b buffers ${b.writableLength} bytes`);
  client.end();
  server.resume();
  const got = await readAll(server);
  assert.equal(got.length, data.length);
  assert.equal(sha256(got), sha256(data));
});

test('pump: a half-close is passed on after the last byte, and the other direction goes on', async (t) => {
  const { client, server } = await pumped(t);
  const up = pattern(300_000, 5);
  const down = pattern(500_000, 6);
  const upGot = readAll(server);
  client.end(up);
  // The server got everything and the FIN; it still answers, then closes its side.
  assert.equal(sha256(await upGot), sha256(up));
  const downGot = readAll(client);
  server.end(down);
  assert.equal(sha256(await downGot), sha256(down));
});
