import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { sha256 } from '../helpers.js';
import { readBytes, readToEnd, relayed, skip } from './harness.js';

test("the client's FIN reaches the server after its last byte; the server still sends after it", { skip }, async (t) => {
  const r = await relayed(t);
  const fins: number[] = [];
  r.relay.onFin = (d) => fins.push(d);
  const up = crypto.randomBytes(200_000);
  const gotUp = readToEnd(r.server);
  r.client.end(up);
  assert.equal(sha256(await gotUp), sha256(up));
  assert.ok(r.relay.up.finished && !r.relay.down.finished);
  // Bytes after the client's FIN still reach it, then the server's FIN.
  const after = crypto.randomBytes(300_000);
  const gotDown = readToEnd(r.client);
  r.server.end(after);
  assert.equal(sha256(await gotDown), sha256(after));
  assert.equal(await r.done, null);
  assert.deepEqual(fins, [0, 1]);
});

test("the server's FIN reaches the client after its last byte; the client still sends after it", { skip }, async (t) => {
  const r = await relayed(t);
  const down = crypto.randomBytes(150_000);
  const gotDown = readToEnd(r.client);
  r.server.end(down);
  assert.equal(sha256(await gotDown), sha256(down));
  assert.ok(r.relay.down.finished && !r.relay.up.finished);
  const after = crypto.randomBytes(250_000);
  const gotUp = readToEnd(r.server);
  r.client.end(after);
  assert.equal(sha256(await gotUp), sha256(after));
  assert.equal(await r.done, null);
  assert.equal(r.relay.open, false);
});

test('a half-closed direction does not end the other: a long exchange after one FIN', { skip }, async (t) => {
  const r = await relayed(t);
  r.client.end('bye');
  assert.equal((await readBytes(r.server, 3)).toString(), 'bye');
  r.server.resume();
  for (let i = 0; i < 20; i++) {
    const chunk = crypto.randomBytes(10_000 + i);
    const got = readBytes(r.client, chunk.length);
    r.server.write(chunk);
    assert.equal(sha256(await got), sha256(chunk));
  }
  assert.equal(r.relay.open, true);
  r.server.end();
  await new Promise<void>((resolve) => {
    r.client.once('end', resolve);
    r.client.resume();
  });
  assert.equal(await r.done, null);
});

test('both FINs crossed while bytes still wait in the relay: nothing is lost or reset', { skip }, async (t) => {
  const r = await relayed(t);
  // The server does not read: the client's bytes back up into the relay.
  r.server.pause();
  const sent: Buffer[] = [];
  const chunk = crypto.randomBytes(256 * 1024);
  while (!r.relay.up.destinationFull) {
    sent.push(chunk);
    if (!r.client.write(chunk)) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  // The client's last bytes and FIN wait unread behind them; then the server's bytes and FIN go
  // to the client: the relay's client socket has now sent and received a FIN (a hang-up) with
  // bytes still to read. That must not look like a reset.
  const tail = crypto.randomBytes(1000);
  sent.push(tail);
  r.client.end(tail);
  const down = crypto.randomBytes(5000);
  const gotDown = readToEnd(r.client);
  r.server.write(down);
  r.server.end();
  assert.equal(sha256(await gotDown), sha256(down));
  const gotUp = readToEnd(r.server);
  const all = Buffer.concat(sent);
  assert.equal(sha256(await gotUp), sha256(all));
  assert.equal(await r.done, null);
  assert.equal(r.relay.bytesUp, all.length);
});
