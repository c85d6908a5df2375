import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  COUNT_RATE_PATTERN,
  DURATION_PATTERN,
  formatHostPort,
  HOST_PORT_PATTERN,
  parseCountRate,
  parseDuration,
  parseHostPort,
  parseRate,
  parseSize,
  RATE_PATTERN,
  SIZE_PATTERN,
} from '../../src/config/units.js';

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

test('parseRate: the ISP spellings and "bit" are bits; bytes are a capital B with "/s"', () => {
  const bits = { '100Mbps': 12_500_000, '100 Mbps': 12_500_000, '64kbps': 8000, '64Kbps': 8000, '1Gbps': 125_000_000, '2Tbps': 250_000_000_000, '800bps': 100 };
  const moreBits = { '1Gbit/s': 125_000_000, '1GBIT': 125_000_000, '100Mbit/s': 12_500_000, '512Kbit': 64_000, '100mbitps': 12_500_000 };
  const bytes = { '64kB/s': 64_000, '64KB/s': 64_000, '10MB/s': 10_000_000, '2GB/s': 2e9, '1TB/s': 1e12, '100B/s': 100 };
  const binary = { '64KiB/s': 65_536, '10MiB/s': 10_485_760, '1GiB/s': 1024 ** 3, '1TiB/s': 1024 ** 4, '1.5MiB/s': 1.5 * 1024 ** 2 };
  for (const [spelling, bytesPerSecond] of Object.entries({ ...bits, ...moreBits, ...bytes, ...binary })) {
    assert.equal(parseRate(spelling), bytesPerSecond, spelling);
  }
});

test('parseRate: a spelling whose case leaves bits or bytes open is refused with both readings', () => {
  const refused = (spelling: string, message: string): void => {
    assert.throws(() => parseRate(spelling), (err: Error) => {
      assert.equal(err.message, `${JSON.stringify(spelling)} ${message}`);
      return true;
    });
  };
  refused('64kb/s', 'is ambiguous, bits or bytes: did you mean "64kbps" (kilobits/s) or "64KB/s" (kilobytes/s)?');
  refused('10mb', 'is ambiguous, bits or bytes: did you mean "10Mbps" (megabits/s) or "10MB/s" (megabytes/s)?');
  refused('1 gb/s', 'is ambiguous, bits or bytes: did you mean "1Gbps" (gigabits/s) or "1GB/s" (gigabytes/s)?');
  refused('10Mb/s', 'is ambiguous, bits or bytes: did you mean "10Mbps" (megabits/s) or "10MB/s" (megabytes/s)?');
  // tc reads "mbps" as megabytes/s, an ISP as megabits/s; "MBps" is one letter's case from "Mbps".
  refused('100mbps', 'is ambiguous, bits or bytes: did you mean "100Mbps" (megabits/s) or "100MB/s" (megabytes/s)?');
  refused('100MBps', 'is ambiguous, bits or bytes: did you mean "100Mbps" (megabits/s) or "100MB/s" (megabytes/s)?');
  // A capital B is bytes: only the "/s" is missing, or the prefix's case is off.
  refused('10MB', 'is not a rate: did you mean "10MB/s" (megabytes/s)?');
  refused('10mB/s', 'is not a rate: did you mean "10MB/s" (megabytes/s)?');
  refused('10mib/s', 'is not a rate: did you mean "10MiB/s" (mebibytes/s)?');
  refused('5KiBps', 'is not a rate: did you mean "5KiB/s" (kibibytes/s)?');
});

test('the JSON Schema patterns take the spellings the parsers take, and refuse the others', () => {
  const agree = (pattern: string, parse: (v: string) => unknown, spellings: string[]): void => {
    const re = new RegExp(pattern, 'u');
    for (const s of spellings) {
      let parsed = true;
      try {
        parse(s);
      } catch {
        parsed = false;
      }
      assert.equal(re.test(s), parsed, `${JSON.stringify(s)}: pattern ${re.test(s)}, parser ${parsed}`);
    }
  };
  agree(RATE_PATTERN, parseRate, [
    '100Mbps', ' 64 kbps ', '1Gbit/s', '1gbit', '512KBIT', '64KB/s', '64kB/s', '10MiB/s', 'unlimited', ' UNLIMITED ', '1000', '2.5',
    '64kb/s', '10mb', '100mbps', '100MBps', '10MB', '10mib/s', 'fast', '1 parsec/s', '', '10 MiB', 'Mbps', '1e3',
  ]);
  agree(DURATION_PATTERN, parseDuration, ['250ms', '3s', ' 10 S ', '1.5m', '1h', '2d', '1500', '3 parsecs', 's', '-1s', '1w', '']);
  agree(SIZE_PATTERN, parseSize, ['512B', '512', '64KB', '64kib', '1.5KiB', 'lots', '1 parsec', '', '64KB/s']);
  agree(COUNT_RATE_PATTERN, parseCountRate, ['10/s', '600/m', '5/1s', '5/250ms', '100 / 1h', '10', '10/x', 'ten/s', '']);
  agree(HOST_PORT_PATTERN, (v) => parseHostPort(v, true), ['127.0.0.1:9001', 'backend.internal:0', '[::1]:80', 'h', 'h:', ':80', '::1:80', 'a b:80', 'h:123456']);
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
