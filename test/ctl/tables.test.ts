/**
 * The ctl's tables: units of rates and byte counts, ages, alignment (numbers right, text left,
 * "-" for what the API leaves out). The commands against a real proxy are in test/e2e/admin.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionsTable, formatBytes, formatRate, table, tiersTable } from '../../src/ctl/tables.js';

test('rates in bits per second, in the largest unit they reach', () => {
  assert.equal(formatRate(125_000), '1mbit');
  assert.equal(formatRate(64_000), '512kbit');
  assert.equal(formatRate(1.5e11), '1.2tbit'); // 3 significant digits at most
  assert.equal(formatRate(123_456), '988kbit');
  assert.equal(formatRate(12.5), '100bit');
  assert.equal(formatRate(0.1), '0.8bit');
  assert.equal(formatRate('unlimited'), 'unlimited');
  assert.equal(formatRate(null), '-');
  assert.equal(formatRate(undefined), '-');
});

test('byte counts in the largest unit they reach; below a kB as given', () => {
  assert.equal(formatBytes(999), '999B');
  assert.equal(formatBytes(1000), '1kB');
  assert.equal(formatBytes(1.5e6), '1.5MB');
  assert.equal(formatBytes(2.25e9), '2.25GB');
  assert.equal(formatBytes(7.7e12), '7.7TB');
  assert.equal(formatBytes(12.345), '12.345B');
});

test('a table: columns as wide as their widest cell, a column of numbers and "-" right-aligned (its head too), no trailing blanks', () => {
  assert.equal(table(['NAME', 'N'], [['a', '1'], ['bbb', '-'], ['c', '22']]), 'NAME   N\na      1\nbbb    -\nc     22\n');
  assert.equal(table(['NAME', 'N'], []), 'NAME  N\n'); // no rows: nothing is a number
});

test('tiers and connections tables: each column from its field, "-" where the API has none', () => {
  const tiers = tiersTable([
    { name: 'gold', source: 'runtime', connection: { down: 12_500_000, up: 1.5e11 }, customer: { down: 125, up: 'unlimited' }, total: { down: 6.25e8 }, customers: 0, connections: 0 },
  ]);
  assert.equal(
    tiers,
    'NAME  SOURCE   CONN-DOWN  CONN-UP  CUST-DOWN  CUST-UP    TOTAL-DOWN  TOTAL-UP  MAX-CONNS  CUSTOMERS  CONNECTIONS\n' +
      'gold  runtime  100mbit    1.2tbit  1kbit      unlimited  5gbit              -          -          0            0\n',
  );
  const conns = connectionsTable([
    { id: 1, client: '127.0.0.1:5555', app: 'web', target: null, customer: 'acme', tier: 'gold', durationMs: 999, bytesDown: 999, bytesUp: 1000, rateDown: 0, rateUp: 12.5, sni: null },
    { id: 22, client: '[::1]:7', app: 'x', target: 't', customer: 'c', tier: 't', durationMs: 65_432, bytesDown: 1.5e6, bytesUp: 2.25e9, rateDown: 1.25e9, rateUp: 123_456, sni: 'a.example' },
    { id: 333, client: '[::1]:8', app: 'x', target: 't', customer: 'c', tier: 't', durationMs: 3 * 3600e3 + 7 * 60e3 + 5e3, bytesDown: 7.7e12, bytesUp: 1, rateDown: 1e13, rateUp: 99_999, sni: 'b' },
  ]);
  assert.equal(
    conns,
    ' ID  CLIENT          APP  TARGET  CUSTOMER  TIER  AGE    BYTES-DOWN  BYTES-UP  RATE-DOWN  RATE-UP  SNI\n' +
      '  1  127.0.0.1:5555  web  -       acme      gold  0s     999B        1kB       0bit       100bit   -\n' +
      ' 22  [::1]:7         x    t       c         t     1m05s  1.5MB       2.25GB    10gbit     988kbit  a.example\n' +
      '333  [::1]:8         x    t       c         t     3h07m  7.7TB       1B        80tbit     800kbit  b\n',
  );
});
