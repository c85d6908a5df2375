/**
 * Shaping end to end: real sockets through the proxy, its time on a ManualClock. Shaped bytes pass
 * only as the test moves the clock, so each cap is checked as a bound at every step (never more
 * than burst + rate × clock time), bytes exactly, and shares by counts. How close to its cap a
 * transfer runs in real time is the bench's: `shaping` (cases 1-5) and `caps`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ManualClock } from '../../src/clock.js';
import { burstFor } from '../../src/shaping/shaper.js';
import { app, backendFor, config, connect, pattern, proxyFor, readAll, roundTrip, sha256, tier, waitFor } from '../helpers.js';

const U = Infinity;
/** clock ms per step: small against every burst below, so a step never fills a bucket */
const STEP_MS = 10;

/** Waits until `progress()` stands still over a few turns of the event loop: the real sockets have moved what a step allowed. */
async function settle(progress: () => number): Promise<void> {
  let last = -1;
  for (let still = 0; still < 3; ) {
    await new Promise((r) => setTimeout(r, 1));
    const now = progress();
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

/**
 * Moves `clock` STEP_MS at a time until `done()`, letting the sockets settle after each step, and
 * runs `check(ms)` (ms: clock time since the start) before every step and at the end. Fails past
 * `limitMs` of clock time. Returns the clock time it took.
 */
async function drive(
  clock: ManualClock,
  o: { progress: () => number; done: () => boolean; check?: (ms: number) => void; limitMs: number },
): Promise<number> {
  const start = clock.now();
  await settle(o.progress);
  for (;;) {
    const ms = clock.now() - start;
    o.check?.(ms);
    if (o.done()) return ms;
    assert.ok(ms < o.limitMs, `not done after ${o.limitMs} ms of clock time (progress ${o.progress()})`);
    clock.advance(STEP_MS);
    await settle(o.progress);
  }
}

/** A client reading everything, its count live. */
function reader(s: net.Socket): { bytes: () => number; all: Promise<Buffer> } {
  let n = 0;
  s.on('data', (d: Buffer) => (n += d.length));
  return { bytes: () => n, all: readAll(s) };
}

test('a capped download never runs ahead of burst + rate × clock time, and arrives intact', async (t) => {
  const size = 1_500_000;
  const rate = 1_000_000;
  const burst = burstFor(rate, 50); // rate × rtt = 50 kB
  const clock = new ManualClock(1000);
  const backend = await backendFor(t, 'source', { sourceBytes: size });
  const free = tier('free', { connection: { down: rate, up: U } });
  const proxy = await proxyFor(t, config([app('web', [backend.address])], { tiers: { free }, defaultTier: 'free' }), { clock });
  const s = await connect(proxy.portOf('web'));
  const r = reader(s);
  let done = false;
  void r.all.then(() => (done = true));
  const ms = await drive(clock, {
    progress: r.bytes,
    done: () => done,
    check: (ms) => assert.ok(r.bytes() <= burst + (rate * ms) / 1000, `${r.bytes()} B by ${ms} ms`),
    limitMs: 60_000,
  });
  s.destroy();
  assert.equal(sha256(await r.all), sha256(pattern(size)));
  assert.ok(ms >= ((size - burst) / rate) * 1000, `done at ${ms} ms of clock time`);
});

test('a capped upload with a half-close: every byte reaches the backend before the FIN, never ahead of the cap', async (t) => {
  const rate = 400_000;
  const burst = burstFor(rate, 50); // 32 KiB
  const clock = new ManualClock(1000);
  const backend = await backendFor(t, 'collect');
  const free = tier('free', { connection: { down: U, up: rate } });
  const proxy = await proxyFor(t, config([app('web', [backend.address])], { tiers: { free }, defaultTier: 'free' }), { backends: [backend], clock });
  const data = pattern(600_000, 9);
  let answer: string | undefined;
  // The backend answers only after the FIN, with the hash of all it got before it.
  void roundTrip(proxy.portOf('web'), data).then((b) => (answer = b.toString()));
  const ms = await drive(clock, {
    progress: () => backend.bytesIn,
    done: () => answer !== undefined,
    check: (ms) => assert.ok(backend.bytesIn <= burst + (rate * ms) / 1000, `${backend.bytesIn} B by ${ms} ms`),
    limitMs: 60_000,
  });
  assert.equal(answer, `${sha256(data)} ${data.length}\n`);
  assert.ok(ms >= ((data.length - burst) / rate) * 1000, `done at ${ms} ms of clock time`);
});

test('connections of one customer share its cap fairly; each direction is shaped on its own', async (t) => {
  const size = 400_000;
  const rate = 1_000_000;
  const burst = burstFor(rate, 50);
  const clock = new ManualClock(1000);
  const source = await backendFor(t, 'source', { sourceBytes: size });
  const collect = await backendFor(t, 'collect');
  const free = tier('free', { customer: { down: rate, up: U } });
  // one customer: every connection comes from 127.0.0.1 (defaultTier: a customer per source address)
  const proxy = await proxyFor(t, config([app('web', [source.address]), app('up', [collect.address])], { tiers: { free }, defaultTier: 'free' }), { clock });
  // Up is not capped: 2 MB go up with the clock standing still (down, the 72 B answer fits the burst).
  const up = pattern(2_000_000, 5);
  assert.equal((await roundTrip(proxy.portOf('up'), up)).toString(), `${sha256(up)} ${up.length}\n`);
  assert.equal(proxy.shaper.customers.size, 1);

  const readers = await Promise.all(Array.from({ length: 4 }, async () => reader(await connect(proxy.portOf('web')))));
  let finished = 0;
  for (const r of readers) void r.all.then(() => finished++);
  const total = () => readers.reduce((a, r) => a + r.bytes(), 0);
  let atHalf: number[] | undefined;
  await drive(clock, {
    progress: total,
    done: () => finished === readers.length,
    check: (ms) => {
      // one bucket for the customer: four connections together never beyond one cap
      assert.ok(total() <= burst + (rate * ms) / 1000, `${total()} B by ${ms} ms`);
      if (!atHalf && total() >= (readers.length * size) / 2) atHalf = readers.map((r) => r.bytes());
    },
    limitMs: 60_000,
  });
  for (const r of readers) assert.equal(sha256(await r.all), sha256(pattern(size)));
  // Halfway through, the four are level but for the burst the first one took before the others
  // connected and one 64 KiB read (one connection taking the lot would be ~800 kB ahead).
  t.diagnostic(`bytes of each connection at half: ${atHalf!.join(', ')}`);
  assert.ok(Math.max(...atHalf!) - Math.min(...atHalf!) <= burst + 64 * 1024, `at half: ${atHalf!.join(', ')}`);
});

test('maxConnections refuses the customer connection over the limit', async (t) => {
  const backend = await backendFor(t, 'echo');
  const free = tier('free', { maxConnections: 2 });
  const proxy = await proxyFor(t, config([app('web', [backend.address])], { tiers: { free }, defaultTier: 'free' }), { backends: [backend] });
  const port = proxy.portOf('web');
  const a = await connect(port);
  const b = await connect(port);
  await waitFor(() => backend.accepted === 2, 3000, 'two admitted');
  const c = await connect(port);
  c.on('error', () => {});
  const got = await readAll(c); // the proxy closes it without a byte
  assert.equal(got.length, 0);
  c.destroy();
  assert.equal(proxy.closedByReason.get('rejected'), 1);
  assert.equal(backend.accepted, 2);
  // A slot frees up when one closes.
  a.destroy();
  await waitFor(() => proxy.connections.size === 1, 3000, 'a to close');
  const echo = (await roundTrip(port, Buffer.from('hi'))).toString();
  assert.equal(echo, 'hi');
  b.destroy();
});

test('a customer moved to another tier: its live connection follows without reconnecting', async (t) => {
  const size = 3_000_000;
  const freeRate = 200_000;
  const clock = new ManualClock(1000);
  const backend = await backendFor(t, 'source', { sourceBytes: size });
  const tiers = {
    free: tier('free', { connection: { down: freeRate, up: U } }),
    gold: tier('gold', { connection: { down: 50_000_000, up: U } }),
  };
  const customer = (tierName: string) => ({ id: 'acme', tier: tierName, match: { sources: ['127.0.0.0/8'] } });
  const apps = [app('web', [backend.address])];
  const proxy = await proxyFor(t, config(apps, { tiers, customers: [customer('free')] }), { backends: [backend], clock });
  const s = await connect(proxy.portOf('web'));
  const r = reader(s);
  let done = false;
  void r.all.then(() => (done = true));
  const freeBurst = burstFor(freeRate, 50);
  // 300 ms of clock time in free: never ahead of its cap
  await drive(clock, {
    progress: r.bytes,
    done: () => clock.now() >= 1300,
    check: (ms) => assert.ok(r.bytes() <= freeBurst + (freeRate * ms) / 1000, `${r.bytes()} B by ${ms} ms`),
    limitMs: 1000,
  });
  const [conn] = [...proxy.connections];
  const left = size - r.bytes();
  proxy.reload(config(apps, { tiers, customers: [customer('gold')] }));
  assert.equal(proxy.shaper.customers.get('acme')!.tier, 'gold');
  assert.deepEqual([...proxy.connections], [conn], 'the same connection, still open');
  const ms = await drive(clock, { progress: r.bytes, done: () => done, limitMs: 60_000 });
  s.destroy();
  assert.equal(sha256(await r.all), sha256(pattern(size)));
  // In free the rest needed over 13 s of clock time; in gold a small fraction of that.
  assert.ok(ms < ((left - freeBurst) / freeRate) * 1000 * 0.1, `${left} B in ${ms} ms of clock time after the move`);
  assert.equal(backend.accepted, 1, 'no reconnect');
});

test('unmatched connections are unshaped when there is no defaultTier; matched ones are shaped', async (t) => {
  const clock = new ManualClock(1000);
  const backend = await backendFor(t, 'collect');
  const tiers = { free: tier('free', { connection: { down: 1000, up: 1000 } }) };
  const proxy = await proxyFor(
    t,
    config([app('web', [backend.address])], {
      tiers,
      customers: [{ id: 'other', tier: 'free', match: { sources: ['127.0.0.2/32'] } }],
    }),
    { backends: [backend], clock },
  );
  const port = proxy.portOf('web');
  const matched = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
  const unmatched = await connect(port);
  t.after(() => {
    matched.destroy();
    unmatched.destroy();
  });
  matched.on('error', () => {});
  // both dialed the backend: identified and, if matched, shaped
  await waitFor(() => backend.accepted === 2, 3000, 'both connections at the backend');
  const shapedBySource = new Map([...proxy.connections].map((c) => [c.clientAddress, c.shaped?.customer.id ?? null] as const));
  assert.deepEqual(shapedBySource, new Map([['127.0.0.2', 'other'], ['127.0.0.1', null]]));

  // At 1000 B/s 2 MB would need half an hour of clock time; unshaped they go with the clock standing still.
  const data = pattern(2_000_000, 3);
  const answer = (await roundTrip(port, data)).toString();
  assert.equal(answer, `${sha256(data)} ${data.length}\n`);
});
