/** The dashboard's figures (browser code, DOM-free, so Node runs it as it is served). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ago, bits, byteRate, bytes, cap, count, duration, latency, percent, tick } from '../../src/admin/dashboard/format.js';

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

test('latencies with their units, percentages, ages, counts, durations and axis ticks', () => {
  assert.deepEqual([0, 0.004, 0.1234, 12.345, 123.45, 999.4, 999.6, 1234, 42_000, 59_960, 185_000].map(latency), [
    '0.00 ms', '<0.01 ms', '0.12 ms', '12.3 ms', '123 ms', '999 ms', '1.00 s', '1.23 s', '42.0 s', '1m 00s', '3m 05s',
  ]);
  assert.equal(latency(null), '\u2014');
  assert.deepEqual([0.375, 1, 0.001].map(percent), ['37.5 %', '100 %', '0.10 %']);
  assert.equal(ago('2025-01-01T00:00:00.000Z', Date.parse('2025-01-01T00:01:05.000Z')), '1m 05s ago');
  assert.equal(ago(null), '\u2014');
  assert.equal(count(2.6), '3');
  assert.deepEqual([59, 61, 3_725, 90_061].map(duration), ['59s', '1m 01s', '1h 02m 05s', '1d 1h 01m']);
  assert.equal(tick(0.1 + 0.2), '0.3');
  assert.equal(tick(2.5), '2.5');
});
