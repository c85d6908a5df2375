import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeError, fillUntilFull, readBytes, relayed, skip } from './harness.js';

test("the client's reset resets the server side and is reported", { skip }, async (t) => {
  const r = await relayed(t);
  r.client.write('x');
  await readBytes(r.server, 1);
  const serverErr = closeError(r.server);
  r.client.resetAndDestroy();
  assert.equal((await serverErr)?.code, 'ECONNRESET');
  const failure = await r.done;
  assert.equal(failure?.side, 'client');
  assert.match(failure?.code ?? '', /^(ECONNRESET|EPIPE)$/);
});

test("the server's reset resets the client side and is reported", { skip }, async (t) => {
  const r = await relayed(t);
  r.server.write('y');
  await readBytes(r.client, 1);
  const clientErr = closeError(r.client);
  r.server.resetAndDestroy();
  assert.equal((await clientErr)?.code, 'ECONNRESET');
  const failure = await r.done;
  assert.equal(failure?.side, 'backend');
  assert.match(failure?.code ?? '', /^(ECONNRESET|EPIPE)$/);
});

test('a reset while the relay is not reading (destination full) still propagates', { skip }, async (t) => {
  const r = await relayed(t);
  // The client does not read: the server's bytes fill the client's buffers and the relay's pipe.
  r.client.pause();
  await fillUntilFull(r.server, () => r.relay.down.destinationFull);
  const clientErr = closeError(r.client);
  r.server.resetAndDestroy();
  const failure = await r.done;
  assert.equal(failure?.side, 'backend');
  assert.equal((await clientErr)?.code, 'ECONNRESET');
});

test('close(true) from JavaScript resets both ends; close() ends both', { skip }, async (t) => {
  const a = await relayed(t);
  const errs = Promise.all([closeError(a.client), closeError(a.server)]);
  a.relay.close(true);
  assert.deepEqual((await errs).map((e) => e?.code), ['ECONNRESET', 'ECONNRESET']);

  const b = await relayed(t);
  const ends = Promise.all([b.client, b.server].map((s) => new Promise<void>((r) => s.once('end', r).resume())));
  b.relay.close();
  await ends;
  assert.equal(b.relay.open, false);
});

test('end() from JavaScript writes what waits, then a FIN each way', { skip }, async (t) => {
  const r = await relayed(t);
  // Bytes wait in the relay toward a client that does not read yet.
  r.client.pause();
  await fillUntilFull(r.server, () => r.relay.down.destinationFull);
  const waiting = r.relay.down.queued;
  assert.ok(waiting > 0);
  const moved = r.relay.down.moved;
  const serverEnd = new Promise<void>((resolve) => r.server.once('end', resolve).resume());
  r.relay.end();
  let got = 0;
  r.client.on('data', (d: Buffer) => (got += d.length));
  const clientEnd = new Promise<void>((resolve) => r.client.once('end', resolve));
  r.client.resume();
  await Promise.all([serverEnd, clientEnd]);
  assert.equal(await r.done, null);
  assert.equal(r.relay.down.moved, moved + waiting, 'what waited in the pipe went out');
  assert.equal(got, r.relay.down.moved);
});
