import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NativeEngine } from '../../src/native/engine.js';
import { engine, fillUntilFull, openFds, readToEnd, relayed, skip, turn } from './harness.js';

test('idle relays hold no pipe; descriptors and allocations go back to zero after close', { skip }, async (t) => {
  const eng = engine!;
  const sockets = openFds('socket');
  const pipes = openFds('pipe');
  const base = eng.stats();
  const all = await Promise.all(Array.from({ length: 10 }, () => relayed(t)));
  const s = eng.stats();
  assert.equal(s.relays - base.relays, 10);
  assert.equal(s.sockets - base.sockets, 20);
  assert.equal(s.pipes, 0, 'no pipe while no bytes are in flight');

  // Bytes in flight hold a pipe; once delivered, it goes back to the pool.
  for (const r of all) r.client.pause();
  const written = await fillUntilFull(all[0]!.server, () => all[0]!.relay.down.destinationFull);
  assert.equal(eng.stats().pipes, 1);
  const got = readToEnd(all[0]!.client);
  all[0]!.server.end();
  assert.equal((await got).length, written);
  assert.equal(eng.stats().pipes, 0);
  assert.ok(eng.stats().pooled >= 1);

  await Promise.all(
    all.map(async (r) => {
      r.client.end();
      r.server.end();
      r.client.resume();
      r.server.resume();
      assert.equal(await r.done, null);
      r.relay.close();
    }),
  );
  await turn();
  const after = eng.stats();
  assert.equal(after.relays, base.relays);
  assert.equal(after.slots, base.slots);
  assert.equal(after.sockets, base.sockets);
  assert.equal(after.pipes, 0);
  assert.equal(after.allocations, base.allocations, 'relay structures and buffers freed');
  for (const r of all) {
    r.client.destroy();
    r.server.destroy();
  }
  await turn();
  // Left open beyond the start: the 20 listeners of the harness (closed after the test) and the pool.
  assert.equal(openFds('socket') - sockets, 20);
  assert.equal(openFds('pipe') - pipes, 2 * (after.pooled - base.pooled));
  assert.equal(after.descriptors, after.sockets + 2 * (after.pipes + after.pooled));
});

test('closing the engine lets go of every relay and pipe', { skip }, async (t) => {
  const eng = engine!;
  const r = await relayed(t, { prepend: { up: Buffer.from('held') } });
  r.client.pause();
  await fillUntilFull(r.server, () => r.relay.down.destinationFull);
  const pipes = openFds('pipe');
  const s = eng.stats();
  assert.ok(s.pipes >= 1 && s.sockets >= 2);
  eng.close();
  await turn();
  assert.equal(r.relay.released, true);
  assert.equal(openFds('pipe'), pipes - 2 * (s.pipes + s.pooled), 'every pipe closed');
  // The shared memory outlives the engine while JavaScript holds it: the last counts read zero.
  const after = eng.stats();
  assert.deepEqual([after.relays, after.slots, after.sockets, after.pipes, after.pooled, after.allocations], [0, 0, 0, 0, 0, 0]);
  const again = NativeEngine.open();
  assert.notEqual(typeof again, 'string');
  assert.notEqual(again, eng);
  // The harness's engine is gone: later files open their own (each test file is a process).
});
