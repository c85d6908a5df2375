import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { sha256 } from '../helpers.js';
import { readBytes, readToEnd, relayed, skip, turn, type Relayed } from './harness.js';

/** Both ends send `up`/`down` and half-close; each must receive the other's bytes exactly. */
async function exchange(r: Relayed, up: Buffer, down: Buffer): Promise<void> {
  const gotUp = readToEnd(r.server);
  const gotDown = readToEnd(r.client);
  r.client.end(up);
  r.server.end(down);
  const [a, b] = await Promise.all([gotUp, gotDown]);
  assert.equal(a.length, up.length, 'client -> server length');
  assert.equal(sha256(a), sha256(up), 'client -> server bytes');
  assert.equal(b.length, down.length, 'server -> client length');
  assert.equal(sha256(b), sha256(down), 'server -> client bytes');
  assert.equal(await r.done, null);
  assert.equal(r.relay.bytesUp, up.length);
  assert.equal(r.relay.bytesDown, down.length);
}

const SIZES = [0, 1, 1448, 65535, 65536, 65537, 300_001, 4 * 2 ** 20 + 13];

test('random bytes both ways arrive exactly, in order, with exact counts', { skip }, async (t) => {
  for (const size of SIZES) {
    await t.test(`${size} bytes up, ${Math.floor(size / 3)} down`, async (t) => {
      await exchange(await relayed(t), crypto.randomBytes(size), crypto.randomBytes(Math.floor(size / 3)));
    });
  }
});

test('24 relays at once stay separate and exact', { skip }, async (t) => {
  const all = await Promise.all(Array.from({ length: 24 }, () => relayed(t)));
  await Promise.all(all.map((r, i) => exchange(r, crypto.randomBytes(50_000 + i * 7919), crypto.randomBytes(200_000 - i * 3001))));
});

test('prepended bytes go first, then what the streams had read, then the rest', { skip }, async (t) => {
  const early = Buffer.from('early bytes the front had read');
  const r = await relayed(
    t,
    { prepend: { up: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), down: Buffer.from('hello from the proxy\n') } },
    async (accepted, _dialed, client) => {
      // Let bytes land in the accepted socket's stream buffer before the handover.
      accepted.pause();
      client.write(early);
      await new Promise<void>((resolve) => {
        const check = () => (accepted.readableLength >= early.length ? resolve() : setTimeout(check, 5));
        accepted.once('readable', check);
      });
    },
  );
  const up = crypto.randomBytes(100_000);
  const down = crypto.randomBytes(70_000);
  const gotUp = readToEnd(r.server);
  const gotDown = readToEnd(r.client);
  r.client.end(up);
  r.server.end(down);
  const a = await gotUp;
  const b = await gotDown;
  assert.equal(sha256(a), sha256(Buffer.concat([Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), early, up])));
  assert.equal(sha256(b), sha256(Buffer.concat([Buffer.from('hello from the proxy\n'), down])));
  assert.equal(await r.done, null);
});

test('message-sized writes (copied, not spliced; bulk spliced) stay exact, also while the reader stalls and the rest waits', { skip }, async (t) => {
  const r = await relayed(t);
  let up = 0;
  let down = 0;
  // Request/response first: each message is read by itself (the copy path), both ways.
  for (let i = 0; i < 200; i++) {
    const ask = crypto.randomBytes(1 + crypto.randomInt(3000));
    const got = readBytes(r.server, ask.length);
    r.client.write(ask);
    up += ask.length;
    assert.equal(sha256(await got), sha256(ask), `request ${i}`);
    const answer = crypto.randomBytes(1 + crypto.randomInt(i % 10 === 0 ? 40_000 : 1500));
    const back = readBytes(r.client, answer.length);
    r.server.write(answer);
    down += answer.length;
    assert.equal(sha256(await back), sha256(answer), `answer ${i}`);
  }
  // Then a stream of mixed sizes toward a reader that stops until the writer is held up, twice:
  // sends to a full destination keep the rest of a copied read, then the pipe takes over. The
  // phases follow the stalls, not a fixed count: loopback buffers can hold many megabytes.
  const parts: Buffer[] = [];
  const got = readToEnd(r.server);
  r.server.pause();
  let stalls = 0;
  let tail = 300; // parts written after the second stall, with the reader flowing
  for (let i = 0; i < 20_000 && tail > 0; i++) {
    const part = crypto.randomBytes(1 + crypto.randomInt(i % 3 === 0 ? 40_000 : 2000));
    parts.push(part);
    if (!r.client.write(part)) {
      const held = r.server.isPaused();
      if (held) {
        stalls++;
        r.server.resume();
      }
      await new Promise((resolve) => r.client.once('drain', resolve));
      if (held && stalls === 1) r.server.pause();
    }
    if (stalls === 2) tail--;
    if (i % 7 === 0) await turn(); // the relay reads a few messages at a time
  }
  const all = Buffer.concat(parts);
  r.client.end();
  r.server.resume();
  const received = await got;
  assert.equal(stalls, 2, 'the reader held the writer up twice');
  assert.equal(received.length, all.length);
  assert.equal(sha256(received), sha256(all));
  r.server.end();
  assert.equal(await r.done, null);
  assert.equal(r.relay.bytesUp, up + all.length);
  assert.equal(r.relay.bytesDown, down);
});

test('small messages toward a reader that stopped: what the destination does not take goes first once it reads, nothing lost', { skip }, async (t) => {
  const r = await relayed(t);
  const got = readToEnd(r.server);
  r.server.pause();
  const parts: Buffer[] = [];
  // One small message per loop turn, so the relay reads each by itself and copies it on (no pipe),
  // until a send finds the reader's side full: the rest of that message waits in the relay.
  for (let i = 0; i < 50_000 && !r.relay.up.destinationFull; i++) {
    const m = crypto.randomBytes(1 + crypto.randomInt(1400));
    parts.push(m);
    r.client.write(m);
    await turn();
  }
  assert.ok(r.relay.up.destinationFull, 'the destination filled up');
  // More while it is full: they queue behind that rest, in order.
  for (let i = 0; i < 100; i++) {
    const m = crypto.randomBytes(1 + crypto.randomInt(1400));
    parts.push(m);
    r.client.write(m);
  }
  r.client.end();
  r.server.resume();
  const received = await got;
  const all = Buffer.concat(parts);
  assert.equal(received.length, all.length);
  assert.equal(sha256(received), sha256(all));
  r.server.end();
  assert.equal(await r.done, null);
  assert.equal(r.relay.bytesUp, all.length);
});
