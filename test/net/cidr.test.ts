import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CidrSet, cidrContains, parseCidr, parseIp } from '../../src/net/cidr.js';

const has = (cidr: string, address: string): boolean => cidrContains(parseCidr(cidr), address);

test('IPv4 blocks', () => {
  assert.ok(has('10.1.0.0/16', '10.1.0.0'));
  assert.ok(has('10.1.0.0/16', '10.1.2.3'));
  assert.ok(has('10.1.0.0/16', '10.1.255.255'));
  assert.ok(!has('10.1.0.0/16', '10.2.0.0'));
  assert.ok(!has('10.1.0.0/16', '10.0.255.255'));
  assert.ok(has('192.168.1.128/25', '192.168.1.200'));
  assert.ok(!has('192.168.1.128/25', '192.168.1.127'));
  // the top bit set: words must compare as unsigned
  assert.ok(has('200.0.0.0/5', '207.255.255.255'));
  assert.ok(!has('200.0.0.0/5', '208.0.0.0'));
  // host bits after the prefix are ignored
  assert.ok(has('10.1.2.3/16', '10.1.99.99'));
});

test('IPv4 edges: /0, /32 and a bare address', () => {
  assert.ok(has('0.0.0.0/0', '1.2.3.4'));
  assert.ok(has('0.0.0.0/0', '255.255.255.255'));
  assert.ok(has('0.0.0.0/0', '::ffff:1.2.3.4'), 'mapped addresses are IPv4');
  assert.ok(!has('0.0.0.0/0', '::1'), 'an IPv4 block never holds IPv6');
  assert.ok(has('127.0.0.2/32', '127.0.0.2'));
  assert.ok(!has('127.0.0.2/32', '127.0.0.1'));
  assert.equal(parseCidr('127.0.0.2').prefix, 32);
  assert.ok(has('127.0.0.2', '127.0.0.2'));
  assert.ok(!has('127.0.0.2', '127.0.0.3'));
});

test('IPv6 blocks, full and compressed', () => {
  assert.ok(has('2001:db8::/32', '2001:db8::1'));
  assert.ok(has('2001:db8::/32', '2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff'));
  assert.ok(has('2001:0DB8:0000:0000:0000:0000:0000:0000/32', '2001:db8:1::'));
  assert.ok(!has('2001:db8::/32', '2001:db9::1'));
  assert.ok(has('fe80::/10', 'febf::1'));
  assert.ok(!has('fe80::/10', 'fec0::1'));
  assert.ok(has('2001:db8:0:1::/64', '2001:db8:0:1:ffff::1'));
  assert.ok(!has('2001:db8:0:1::/64', '2001:db8:0:2::1'));
  assert.ok(has('2001:db8::/127', '2001:db8::1'));
  assert.ok(!has('2001:db8::/127', '2001:db8::2'));
  assert.ok(has('fe80::/64', 'fe80::1%eth0'), 'a zone is ignored');
  assert.ok(has('::/96', '::1.2.3.4'), 'an IPv4-compatible tail is read');
  assert.ok(has('1:2:3:4:5:6::/96', '1:2:3:4:5:6:7.8.9.10'));
});

test('IPv6 edges: ::/0, /128 and a bare address', () => {
  assert.ok(has('::/0', '::'));
  assert.ok(has('::/0', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'));
  assert.ok(!has('::/0', '10.1.2.3'), 'an IPv6 block never holds IPv4');
  assert.ok(has('::1/128', '::1'));
  assert.ok(has('::1/128', '0:0:0:0:0:0:0:1'));
  assert.ok(!has('::1/128', '::2'));
  assert.equal(parseCidr('::1').prefix, 128);
  assert.ok(has('2001:db8::5', '2001:db8:0::5'));
});

test('IPv4-mapped IPv6 is IPv4, as an address and as a block', () => {
  assert.ok(has('10.1.0.0/16', '::ffff:10.1.2.3'));
  assert.ok(has('10.1.0.0/16', '::FFFF:10.1.2.3'));
  assert.ok(has('10.1.0.0/16', '0:0:0:0:0:ffff:a01:203'));
  assert.ok(!has('10.1.0.0/16', '::ffff:10.2.2.3'));
  assert.ok(has('127.0.0.2/32', '::ffff:127.0.0.2'));
  const mapped = parseCidr('::ffff:10.0.0.0/104');
  assert.equal(mapped.family, 4);
  assert.equal(mapped.prefix, 8);
  assert.ok(cidrContains(mapped, '10.200.0.1'));
  assert.ok(cidrContains(mapped, '::ffff:10.200.0.1'));
  assert.ok(!cidrContains(mapped, '11.0.0.1'));
  assert.ok(has('::ffff:127.0.0.1', '127.0.0.1'));
  assert.deepEqual(parseIp('::ffff:1.2.3.4'), parseIp('1.2.3.4'));
});

test('bad CIDRs throw a message saying what is expected', () => {
  for (const bad of ['10.1.0.0/33', '::/129', '10.1.0.0/', '10.1.0.0/-1', '10.1.0.0/+8', '10.1.0.0/1.5', '10.1.0/16', '10.1.0.256/24',
    '010.1.0.0/16', 'example.com/8', '', '/8', ' 10.1.0.0/16', '10.1.0.0/16 ', '1::2::3/64', 'fe80::%eth0/64', '10.1.0.0/16/8']) {
    assert.throws(() => parseCidr(bad), { message: `${JSON.stringify(bad)} is not a CIDR (use e.g. "10.1.0.0/16" or "2001:db8::/32")` }, bad);
  }
  assert.throws(() => parseCidr(42 as unknown as string), /^Error: 42 is not a CIDR/);
  assert.throws(() => new CidrSet(['10.0.0.0/8', 'nope']), /"nope" is not a CIDR/);
});

test('invalid addresses match nothing', () => {
  const any4 = parseCidr('0.0.0.0/0');
  const any6 = parseCidr('::/0');
  for (const bad of ['', 'localhost', '1.2.3', '1.2.3.4.5', '::g', '1::2::3', ' 1.2.3.4', undefined as unknown as string]) {
    assert.ok(!cidrContains(any4, bad), String(bad));
    assert.ok(!cidrContains(any6, bad), String(bad));
    assert.equal(parseIp(bad), null);
  }
});

test('CidrSet holds the union of its blocks, of both families', () => {
  const set = new CidrSet(['10.1.0.0/16', '127.0.0.2/32', '2001:db8::/32']);
  assert.equal(set.size, 3);
  assert.ok(set.has('10.1.2.3'));
  assert.ok(set.has('::ffff:10.1.2.3'));
  assert.ok(set.has('127.0.0.2'));
  assert.ok(set.has('2001:db8:abcd::1'));
  assert.ok(!set.has('127.0.0.1'));
  assert.ok(!set.has('2001:db9::1'));
  assert.ok(!set.has('not an address'));
  const parsed = parseIp('10.1.9.9')!;
  assert.ok(set.has(parsed), 'a pre-parsed address');
  assert.ok(!new CidrSet([]).has('10.1.2.3'));
});

test('matching agrees with a plain bit-by-bit check on random addresses', () => {
  let seed = 12345;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const bitsOf = (words: number[]): string => words.map((w) => (w >>> 0).toString(2).padStart(32, '0')).join('');
  for (let i = 0; i < 500; i++) {
    const six = i % 2 === 1;
    const n = six ? 4 : 1;
    const a = Array.from({ length: n }, next);
    const b = Array.from({ length: n }, () => (next() % 4 === 0 ? next() : 0));
    const addr = a.map((w, j) => (w ^ b[j]!) >>> 0); // often close to a
    const prefix = next() % (n * 32 + 1);
    const text = (ws: number[]): string =>
      six
        ? ws.flatMap((w) => [(w >>> 16).toString(16), (w & 0xffff).toString(16)]).join(':')
        : [ws[0]! >>> 24, (ws[0]! >>> 16) & 255, (ws[0]! >>> 8) & 255, ws[0]! & 255].join('.');
    const expected = bitsOf(a).slice(0, prefix) === bitsOf(addr).slice(0, prefix);
    const cidrText = `${text(a)}/${prefix}`;
    // IPv6 addresses that happen to be IPv4-mapped are skipped: they are IPv4 by design.
    if (six && text(addr).startsWith('0:0:0:0:0:ffff:')) continue;
    if (six && text(a).startsWith('0:0:0:0:0:ffff:')) continue;
    assert.equal(cidrContains(parseCidr(cidrText), text(addr)), expected, `${cidrText} ${text(addr)}`);
  }
});
