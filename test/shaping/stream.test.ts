/**
 * The library (src/lib.ts): ShapingStream and SharedCap on a ManualClock. Time moves only by
 * hand; between steps the event loop turns once (setImmediate), so the streams' own callbacks run
 * but no test waits on real time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ManualClock, ShapingEngine, ShapingStream, SharedCap, isProxyError } from '../../src/lib.js';
import { pattern, sha256 } from '../helpers.js';
import { jain, maxInWindow } from './measure.js';

const KiB = 1024;
const MiB = 1024 * 1024;

const turn = () => new Promise<void>((r) => setImmediate(r));

function engine() {
  const clock = new ManualClock(0);
  return { clock, engine: new ShapingEngine({ clock }) };
}

/** Advance the clock `ms` in steps of `step`, letting the streams run after each. */
async function advance(clock: ManualClock, ms: number, step = 1): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await turn();
  }
}

/** A source of `data` in `chunk`-byte reads, counting what was pulled from it. */
function source(data: Buffer, chunk = 16 * KiB) {
  let off = 0;
  const readable = new Readable({
    read() {
      if (off >= data.length) this.push(null);
      else {
        this.push(data.subarray(off, off + chunk));
        off += chunk;
      }
    },
  });
  return { readable, pulled: () => off };
}

/** Reads everything from `stream`, logging (virtual time, bytes) per chunk. */
function sink(stream: ShapingStream, clock: ManualClock) {
  const chunks: Buffer[] = [];
  const log: [number, number][] = [];
  const out = { chunks, log, bytes: 0, endedAt: -1 };
  stream.on('data', (c: Buffer) => {
    chunks.push(c);
    log.push([clock.now(), c.length]);
    out.bytes += c.length;
  });
  stream.on('end', () => (out.endedAt = clock.now()));
  return out;
}

/** Bytes in each whole virtual second [s, s + 1000). */
function perSecond(log: [number, number][], seconds: number): number[] {
  const out = new Array<number>(seconds).fill(0);
  for (const [t, n] of log) if (t < seconds * 1000) out[Math.floor(t / 1000)]! += n;
  return out;
}

test('3 MiB through a 1 MiB/s stream arrive unchanged, at the rate, and end after the last byte', async () => {
  const { clock, engine: e } = engine();
  const data = pattern(3 * MiB, 3);
  const shaped = new ShapingStream({ rate: '1MiB/s', burst: '64KiB', engine: e });
  const out = sink(shaped, clock);
  source(data).readable.pipe(shaped);
  await advance(clock, 3500, 2);
  assert.equal(out.bytes, data.length);
  assert.equal(sha256(Buffer.concat(out.chunks)), sha256(data));
  // All but the first burst at 1 MiB/s: 2.94 virtual seconds.
  const last = out.log[out.log.length - 1]![0];
  assert.ok(last >= 2900 && last <= 2960, `last byte at ${last} ms`);
  assert.ok(out.endedAt >= last, `'end' at ${out.endedAt}, after the last byte`);
  // Conformance in every window: never above rate × w + burst.
  for (const w of [10, 100, 500, 1000, 2000]) {
    assert.ok(maxInWindow(out.log, w) <= (MiB * w) / 1000 + 64 * KiB, `window ${w} ms: ${maxInWindow(out.log, w)}`);
  }
  // Whole virtual seconds after the first: the rate, within a grant.
  const seconds = perSecond(out.log, 2);
  assert.ok(Math.abs(seconds[1]! - MiB) <= 32 * KiB, `second 2: ${seconds[1]}`);
  assert.equal(shaped.held, 0);
});

test('four streams under one 2 MiB/s SharedCap share it equally and finish together', async () => {
  const { clock, engine: e } = engine();
  const tier = new SharedCap({ rate: '2MiB/s', burst: '64KiB', engine: e });
  const data = Array.from({ length: 4 }, (_, i) => pattern(MiB, 10 + i));
  const outs = data.map((d) => {
    const shaped = new ShapingStream({ caps: [tier] });
    const out = sink(shaped, clock);
    source(d).readable.pipe(shaped);
    return out;
  });
  await advance(clock, 2500, 2);
  for (let i = 0; i < 4; i++) assert.equal(sha256(Buffer.concat(outs[i]!.chunks)), sha256(data[i]!), `stream ${i}`);
  // (4 MiB - 64 KiB) / 2 MiB/s. The first stream to write has the cap's first burst to itself,
  // before the others have bytes: it ends up to 64 KiB / 512 KiB/s = 125 ms early.
  const ends = outs.map((o) => o.endedAt);
  assert.ok(Math.min(...ends) >= 1840 && Math.max(...ends) <= 2000, `ends ${ends}`);
  assert.ok(Math.max(...ends) / Math.min(...ends) <= 1.07, `ends ${ends}`);
  const middle = outs.map((o) => o.log.filter(([t]) => t >= 500 && t < 1500).reduce((n, [, b]) => n + b, 0));
  assert.ok(jain(middle) >= 0.9999, `from 0.5 s to 1.5 s: ${middle}`);
  assert.ok(maxInWindow(outs.flatMap((o) => o.log).sort((a, b) => a[0] - b[0]), 1000) <= 2 * MiB + 64 * KiB);
  assert.equal(tier.bytes, 4 * MiB);
});

test('max-min fairness under a cap: a stream held by its own rate keeps it, the others split the rest', async () => {
  const { clock, engine: e } = engine();
  const cap = new SharedCap({ rate: 2 * MiB, engine: e });
  const light = new ShapingStream({ rate: '256KiB/s', caps: [cap] });
  const greedy = [0, 1, 2].map(() => new ShapingStream({ caps: [cap] }));
  const outs = [light, ...greedy].map((s, i) => {
    const out = sink(s, clock);
    source(pattern(8 * MiB, i)).readable.pipe(s);
    return out;
  });
  await advance(clock, 3000, 2);
  const [l, ...g] = outs.map((o) => perSecond(o.log, 3)[2]!);
  assert.ok(Math.abs(l! - 256 * KiB) <= 8 * KiB, `light ${l}`);
  for (const x of g) assert.ok(Math.abs(x - (2 * MiB - 256 * KiB) / 3) <= 24 * KiB, `greedy ${x}`);
  for (const s of [light, ...greedy]) s.destroy();
});

test('a chain of caps: streams under customer caps under a tier cap (nearest first, or by `parent`)', async () => {
  const { clock, engine: e } = engine();
  const tier = new SharedCap({ name: 'tier', rate: '1.5MiB/s', engine: e });
  const a = new SharedCap({ name: 'a', rate: '1MiB/s', engine: e });
  const b = new SharedCap({ name: 'b', rate: '1MiB/s', parent: tier });
  const streams = [new ShapingStream({ caps: [a, tier] }), new ShapingStream({ caps: [a, tier] }), new ShapingStream({ caps: [b] })];
  assert.equal(a.parent, tier);
  assert.equal(b.engine, e, "a cap takes its parent's engine");
  const outs = streams.map((s, i) => {
    const out = sink(s, clock);
    source(pattern(4 * MiB, i)).readable.pipe(s);
    return out;
  });
  await advance(clock, 3000, 2);
  const third = outs.map((o) => perSecond(o.log, 3)[2]!);
  // The tier splits 1.5 MiB/s between a and b; a's two streams split a's half.
  assert.ok(Math.abs(third[2]! - 0.75 * MiB) <= 24 * KiB, `b's stream ${third[2]}`);
  for (const x of third.slice(0, 2)) assert.ok(Math.abs(x - 0.375 * MiB) <= 24 * KiB, `a's stream ${x}`);
  assert.ok(Math.abs(third.reduce((s, x) => s + x, 0) - 1.5 * MiB) <= 32 * KiB);
  for (const s of streams) s.destroy();
});

test('backpressure: a reader that does not read stops the stream, which stops pulling from its source', async () => {
  const { clock, engine: e } = engine();
  const shaped = new ShapingStream({ rate: '1MiB/s', engine: e });
  const src = source(pattern(16 * MiB, 5));
  src.readable.pipe(shaped);
  await advance(clock, 5000, 5);
  // At 1 MiB/s five seconds would be 5 MiB; without a reader it holds about its buffers.
  const holding = shaped.held + shaped.readableLength + shaped.writableLength;
  assert.ok(holding <= 96 * KiB, `the stream holds ${holding}`);
  assert.ok(src.pulled() <= 160 * KiB, `pulled ${src.pulled()} from the source`);
  // Once read, everything flows again, in order.
  const out = sink(shaped, clock);
  const before = src.pulled();
  await advance(clock, 2000, 2);
  assert.ok(src.pulled() - before >= 1.9 * MiB, `pulled ${src.pulled() - before} after the reader came`);
  assert.ok(out.bytes >= 1.9 * MiB);
  shaped.destroy();
});

test('a slow reader sets the pace below the rate, and the stream holds no more than its buffers', async () => {
  const { clock, engine: e } = engine();
  const shaped = new ShapingStream({ rate: '4MiB/s', engine: e });
  const src = source(pattern(8 * MiB, 6));
  src.readable.pipe(shaped);
  let read = 0;
  await advance(clock, 10, 10);
  // The reader takes 16 KiB every 10 ms: 1.6 MB/s.
  for (let t = 0; t < 2000; t += 10) {
    let c: Buffer | null;
    let took = 0;
    while (took < 16 * KiB && (c = shaped.read(Math.min(16 * KiB - took, shaped.readableLength) || undefined)) !== null) took += c.length;
    read += took;
    assert.ok(shaped.held + shaped.readableLength + shaped.writableLength <= 96 * KiB);
    await advance(clock, 10, 10);
  }
  assert.ok(read <= 2 * 16 * KiB * 100 + 64 * KiB && read >= 3 * MiB, `read ${read}`);
  assert.ok(src.pulled() - read <= 160 * KiB, `pulled ${src.pulled()}, read ${read}`);
  shaped.destroy();
});

test('a cap\'s rate changes live', async () => {
  const { clock, engine: e } = engine();
  const cap = new SharedCap({ rate: '512KiB/s', engine: e });
  const shaped = new ShapingStream({ caps: [cap] });
  const out = sink(shaped, clock);
  source(pattern(8 * MiB, 7)).readable.pipe(shaped);
  await advance(clock, 2000, 2);
  cap.setRate('2MiB/s');
  assert.equal(cap.rate, 2 * MiB);
  await advance(clock, 2000, 2);
  const s = perSecond(out.log, 4);
  assert.ok(Math.abs(s[1]! - 512 * KiB) <= 16 * KiB, `before ${s[1]}`);
  assert.ok(Math.abs(s[3]! - 2 * MiB) <= 32 * KiB, `after ${s[3]}`);
  shaped.setRate('1MiB/s');
  await advance(clock, 1000, 2);
  assert.ok(Math.abs(perSecond(out.log, 5)[4]! - MiB) <= 32 * KiB, "the stream's own rate now holds it");
  shaped.destroy();
});

test('destroy() detaches the stream: the others take the whole cap, and no timer is left once all are done', async () => {
  const { clock, engine: e } = engine();
  const cap = new SharedCap({ rate: '1MiB/s', engine: e });
  const one = new ShapingStream({ caps: [cap] });
  const two = new ShapingStream({ caps: [cap] });
  sink(one, clock);
  const out = sink(two, clock);
  source(pattern(8 * MiB, 8)).readable.pipe(one);
  source(pattern(3 * MiB, 9)).readable.pipe(two);
  await advance(clock, 1000, 2);
  one.destroy();
  await advance(clock, 2000, 2);
  const s = perSecond(out.log, 3);
  assert.ok(Math.abs(s[2]! - MiB) <= 32 * KiB, `alone: ${s[2]}`);
  await advance(clock, 1000, 2);
  assert.equal(out.bytes, 3 * MiB);
  assert.ok(out.endedAt > 0);
  assert.equal(clock.pendingTimers, 0);
});

test('without a rate or caps a stream passes everything at once; numbers are bytes/s', async () => {
  const { clock, engine: e } = engine();
  const free = new ShapingStream({ engine: e });
  const out = sink(free, clock);
  const data = pattern(2 * MiB, 11);
  source(data).readable.pipe(free);
  for (let i = 0; i < 500 && out.endedAt < 0; i++) await turn();
  assert.equal(sha256(Buffer.concat(out.chunks)), sha256(data));
  assert.equal(clock.now(), 0);
  const n = new ShapingStream({ rate: 100_000, engine: e });
  assert.equal(n.rate, 100_000);
  assert.equal(n.burst, 32 * KiB, 'default burst: 32 KiB or 10 ms of the rate');
  assert.equal(new ShapingStream({ rate: '100mbit', engine: e }).burst, 125_000);
});

test('bad options: SHAPER_ERR_UNIT for rates and sizes, SHAPER_ERR_SHAPING_OPTIONS for caps that do not fit', () => {
  const { engine: e } = engine();
  const code = (code: string, re: RegExp) => (err: unknown) => isProxyError(err) && err.code === code && re.test(err.message);
  assert.throws(() => new ShapingStream({ rate: '1MiB', engine: e }), code('SHAPER_ERR_UNIT', /^ShapingStream rate: "1MiB" is not a rate/));
  assert.throws(() => new ShapingStream({ rate: -5, engine: e }), code('SHAPER_ERR_UNIT', /ShapingStream rate/));
  assert.throws(() => new ShapingStream({ rate: '1MiB/s', burst: 'lots', engine: e }), code('SHAPER_ERR_UNIT', /ShapingStream burst: "lots" is not a size/));
  assert.throws(() => new ShapingStream({ rate: '1MiB/s', burst: '1KiB', engine: e }), code('SHAPER_ERR_UNIT', /below 4096 bytes/));
  assert.throws(() => new SharedCap({ engine: e } as never), code('SHAPER_ERR_UNIT', /SharedCap cap-\d+ rate: missing/));
  assert.throws(() => new ShapingStream({ caps: ['x'] as never, engine: e }), code('SHAPER_ERR_SHAPING_OPTIONS', /caps: a list of SharedCaps/));

  const t1 = new SharedCap({ name: 't1', rate: '1MiB/s', engine: e });
  const t2 = new SharedCap({ name: 't2', rate: '1MiB/s', engine: e });
  const c = new SharedCap({ name: 'c', rate: '1MiB/s', parent: t1 });
  new ShapingStream({ caps: [c, t1] }); // the same chain again: fine
  assert.throws(() => new ShapingStream({ caps: [c, t2] }), code('SHAPER_ERR_SHAPING_OPTIONS', /SharedCap c is already under t1, so it cannot go under t2 too/));
  assert.throws(() => new SharedCap({ rate: 1, parent: 'x' as never, engine: e }), code('SHAPER_ERR_SHAPING_OPTIONS', /parent: not a SharedCap/));
  assert.throws(() => new ShapingStream({ caps: [t1, c] }), code('SHAPER_ERR_SHAPING_OPTIONS', /t1 cannot go under c, which is under it/));
  assert.throws(() => new ShapingStream({ caps: [t2, t2] }), code('SHAPER_ERR_SHAPING_OPTIONS', /appears twice/));
  const other = new SharedCap({ name: 'o', rate: '1MiB/s', engine: new ShapingEngine({ clock: new ManualClock() }) });
  assert.throws(() => new ShapingStream({ caps: [t2, other] }), code('SHAPER_ERR_SHAPING_OPTIONS', /SharedCap o belongs to another engine/));
  assert.throws(() => new SharedCap({ rate: 1, parent: other, engine: e }), code('SHAPER_ERR_SHAPING_OPTIONS', /belong to different engines/));
  assert.throws(() => new ShapingStream({ caps: [t2], engine: other.engine }), code('SHAPER_ERR_SHAPING_OPTIONS', /another engine/));
  // A failed chain changed nothing.
  assert.equal(t2.parent, null);
  assert.equal(t1.parent, null);
});
