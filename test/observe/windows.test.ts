import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { MovingRate, roundRate, snapshot } from '../../src/observe/windows.js';

test('20 events spread over 1 s read as 20/s, and 0 after 2 s of quiet', () => {
  const clock = new ManualClock(5_000);
  const rate = new MovingRate(clock, 1_000);
  for (let i = 0; i < 20; i++) {
    rate.add();
    if (i < 19) clock.advance(50);
  }
  assert.equal(rate.rate(), 20);
  clock.advance(2_000);
  assert.equal(rate.rate(), 0);
  assert.equal(rate.count(), 0);
});

test('window edges fall on 100 ms buckets: an event at t=0 counts until t=999', () => {
  const clock = new ManualClock();
  const rate = new MovingRate(clock, 1_000);
  rate.add();
  clock.advance(999);
  assert.equal(rate.count(), 1);
  clock.advance(1);
  assert.equal(rate.count(), 0);
});

test('10 s window divides by elapsed time (at least 1 s) until 10 s have passed', () => {
  const clock = new ManualClock();
  const rate = new MovingRate(clock, 10_000);
  rate.add(5);
  assert.equal(rate.rate(), 5, 'under 1 s: divided by 1 s');
  clock.advance(500);
  assert.equal(rate.rate(), 5);
  // 10 events/s, evenly, up to t = 4.9 s.
  for (let t = 500; t < 5_000; t += 100) {
    clock.advance(100);
    rate.add();
  }
  assert.equal(rate.count(), 50);
  assert.equal(rate.rate(), 50 / 5);
  // Steady 10/s for a long while: the 10 s average is 10.
  for (let t = 0; t < 30_000; t += 100) {
    clock.advance(100);
    rate.add();
  }
  assert.equal(rate.count(), 100);
  assert.equal(rate.rate(), 10);
  clock.advance(5_000);
  assert.equal(rate.rate(), 5);
  clock.advance(5_000);
  assert.equal(rate.rate(), 0);
});

test('a gap longer than the window clears the ring, and counting resumes cleanly', () => {
  const clock = new ManualClock();
  const rate = new MovingRate(clock, 1_000);
  rate.add(7);
  clock.advance(123_456);
  assert.equal(rate.count(), 0);
  rate.add(3);
  clock.advance(900);
  rate.add(2);
  assert.equal(rate.count(), 5);
  clock.advance(100);
  assert.equal(rate.count(), 2);
});

test('the constructor rejects windows that are not whole multiples of the bucket', () => {
  const clock = new ManualClock();
  assert.throws(() => new MovingRate(clock, 1_050), RangeError);
  assert.throws(() => new MovingRate(clock, 0), RangeError);
  assert.throws(() => new MovingRate(clock, 1_000, 0), RangeError);
  assert.throws(() => new MovingRate(clock, 1_000, Number.NaN), RangeError);
  assert.equal(new MovingRate(clock, 10_000).windowMs, 10_000);
});

test('snapshot reads each rate rounded to 2 decimals', () => {
  const clock = new ManualClock();
  const a = new MovingRate(clock, 1_000);
  const b = new MovingRate(clock, 10_000);
  a.add(3);
  b.add(20);
  clock.advance(2_950);
  assert.deepEqual(snapshot({ a, b }), { a: 0, b: roundRate(20 / 2.95) });
  assert.equal(roundRate(20 / 2.95), 6.78);
});

test('property: count() equals a naive model of the bucketed window', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1_000, 10_000),
      fc.array(fc.record({ gap: fc.integer({ min: 0, max: 3_000 }), n: fc.integer({ min: 1, max: 5 }) }), {
        maxLength: 200,
      }),
      (windowMs, steps) => {
        const start = 1_000;
        const clock = new ManualClock(start);
        const rate = new MovingRate(clock, windowMs);
        const events: { tick: number; n: number }[] = [];
        const buckets = windowMs / 100;
        for (const { gap, n } of steps) {
          clock.advance(gap);
          const tick = Math.floor((clock.now() - start) / 100);
          rate.add(n);
          events.push({ tick, n });
          const expected = events.filter((e) => e.tick > tick - buckets).reduce((s, e) => s + e.n, 0);
          assert.equal(rate.count(), expected);
          const seconds = Math.min(windowMs, Math.max(1_000, clock.now() - start)) / 1_000;
          assert.equal(rate.rate(), expected / seconds);
        }
      },
    ),
    { numRuns: 150 },
  );
});
