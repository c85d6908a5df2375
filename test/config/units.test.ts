import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, parseCountRate, parseDuration, parseHostPort, parseRate, parseSize } from '../../src/config/units.js';

test('parseDuration: units, plain numbers as ms, bad values throw', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('3s'), 3000);
  assert.equal(parseDuration('1.5m'), 90_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration(' 10 S '), 10_000);
  assert.equal(parseDuration(1500), 1500);
  assert.equal(parseDuration('1500'), 1500);
  assert.equal(parseDuration(0), 0);
  for (const bad of ['3 parsecs', '', 's', '-1s', '1w', -1, Infinity, NaN, null, undefined, {}]) {
    assert.throws(() => parseDuration(bad), /is not a duration/, String(bad));
  }
});

test('parseRate: bits, decimal and binary bytes per second, unlimited', () => {
  assert.equal(parseRate('1mbit'), 125_000);
  assert.equal(parseRate('512kbit'), 64_000);
  assert.equal(parseRate('100mbit'), 12_500_000);
  assert.equal(parseRate('1gbit'), 125_000_000);
  assert.equal(parseRate('8bit'), 1);
  assert.equal(parseRate('1mbit/s'), 125_000);
  assert.equal(parseRate('10MiB/s'), 10_485_760);
  assert.equal(parseRate('64KB/s'), 64_000);
  assert.equal(parseRate('64KiB/s'), 65_536);
  assert.equal(parseRate('unlimited'), Infinity);
  assert.equal(parseRate(' Unlimited '), Infinity);
  assert.equal(parseRate(1000), 1000);
  assert.equal(parseRate('1000'), 1000);
  for (const bad of ['fast', '10MB', '0mbit', '0', 0, -5, Infinity, '1 parsec/s', '', null]) {
    assert.throws(() => parseRate(bad), /is not a rate/, String(bad));
  }
});

test('parseSize: bytes and unit suffixes', () => {
  assert.equal(parseSize(1024), 1024);
  assert.equal(parseSize('512B'), 512);
  assert.equal(parseSize('512'), 512);
  assert.equal(parseSize('64KB'), 64_000);
  assert.equal(parseSize('64KiB'), 65_536);
  assert.equal(parseSize('1MiB'), 1_048_576);
  assert.equal(parseSize('1.5KiB'), 1536);
  for (const bad of [0, -1, '0', 'lots', '1 parsec', '', null]) {
    assert.throws(() => parseSize(bad), /is not a size/, String(bad));
  }
});

test('parseCountRate: count per interval', () => {
  assert.deepEqual(parseCountRate('10/s'), { count: 10, per: 1000 });
  assert.deepEqual(parseCountRate('600/m'), { count: 600, per: 60_000 });
  assert.deepEqual(parseCountRate('5/1s'), { count: 5, per: 1000 });
  assert.deepEqual(parseCountRate('5/250ms'), { count: 5, per: 250 });
  assert.deepEqual(parseCountRate('100 / 1h'), { count: 100, per: 3_600_000 });
  assert.deepEqual(parseCountRate(7), { count: 7, per: 1000 });
  for (const bad of ['0/s', '10', '10/x', '10/0s', 'ten/s', 0, -1, null]) {
    assert.throws(() => parseCountRate(bad), /is not a count rate/, String(bad));
  }
});

test('parseHostPort: names, IPv4, bracketed IPv6, port range', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:9001'), { host: '127.0.0.1', port: 9001 });
  assert.deepEqual(parseHostPort('backend.internal:65535'), { host: 'backend.internal', port: 65535 });
  assert.deepEqual(parseHostPort('bad.target.for.testing:6003'), { host: 'bad.target.for.testing', port: 6003 });
  assert.deepEqual(parseHostPort('[::1]:9001'), { host: '::1', port: 9001 });
  assert.deepEqual(parseHostPort('[2001:db8::1]:80'), { host: '2001:db8::1', port: 80 });
  assert.deepEqual(parseHostPort('127.0.0.1:0', true), { host: '127.0.0.1', port: 0 });
  for (const bad of ['127.0.0.1:0', 'h:65536', 'h:123456', 'h', 'h:', ':80', '::1:80', 'bad:port', 'a b:80', 80, null]) {
    assert.throws(() => parseHostPort(bad), /is not host:port \(use e\.g\./, String(bad));
  }
});

test('formatHostPort brackets IPv6 hosts', () => {
  assert.equal(formatHostPort('127.0.0.1', 80), '127.0.0.1:80');
  assert.equal(formatHostPort('::1', 80), '[::1]:80');
});
