/** The dashboard's figures (browser code, DOM-free, so Node runs it as it is served). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bits, byteRate, bytes, cap, count, duration, ms, tick } from '../../src/admin/dashboard/format.js';

test('rates in bits/s and bytes/s, sizes, caps; a dash for no figure, "unlimited" for no cap', () => {
  assert.equal(bits(2_000_000), '16.0 Mbit/s');
  assert.equal(bits(100), '800 bit/s');
  assert.equal(bits(125_000_000_000), '1.00 Tbit/s');
  assert.equal(byteRate(2_000_000), '2.00 MB/s');
  assert.equal(bytes(999), '999 B');
  assert.equal(bytes(123_456_789), '123 MB');
  assert.equal(cap(2_000_000), '16.0 Mbit/s (2.00 MB/s)');
  assert.equal(cap(null), 'unlimited');
  for (const none of [undefined, Number.NaN, Infinity]) {
    assert.equal(bits(none), '\u2014');
    assert.equal(cap(none), '\u2014');
    assert.equal(count(none), '\u2014');
  }
});

test('milliseconds, counts, durations and axis ticks', () => {
  assert.deepEqual([0.1234, 12.345, 123.45].map(ms), ['0.12', '12.3', '123']);
  assert.equal(count(2.6), '3');
  assert.deepEqual([59, 61, 3_725, 90_061].map(duration), ['59s', '1m 01s', '1h 02m 05s', '1d 1h 01m']);
  assert.equal(tick(0.1 + 0.2), '0.3');
  assert.equal(tick(2.5), '2.5');
});
