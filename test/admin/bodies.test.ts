import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig, parseCustomerBody, parseTierBody } from '../../src/config/load.js';

function problems(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('parseTierBody reads one tier like the config does', () => {
  const raw = { rtt: '20ms', weight: 3, connection: { down: '100mbit', burst: '256KiB' }, maxConnections: 20, connectionRate: '10/s' };
  const fromConfig = parseConfig({ apps: [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }], tiers: { gold: raw } }, {});
  assert.deepEqual(parseTierBody('gold', raw), fromConfig.tiers['gold']);
});

test('parseTierBody: problems carry the key path', () => {
  assert.deepEqual(problems(() => parseTierBody('gold', { connection: { down: 'fast' }, wieght: 2 })), [
    'tiers.gold.connection.down: "fast" is not a rate (use bytes/s as a number, "512kbit", "100mbit", "1gbit", "64KB/s", "10MiB/s" or "unlimited")',
    'tiers.gold.wieght: unknown key (did you mean "weight"?)',
  ]);
  assert.match(problems(() => parseTierBody('gold', 'fast'))[0]!, /^tiers\.gold: must be an object/);
  assert.match(problems(() => parseTierBody('bad name', {}))[0]!, /^tiers\["bad name"\]: "bad name" is not a valid tier name/);
  assert.match(problems(() => parseTierBody('__proto__', {}))[0]!, /cannot be used as a tier name/);
});

test('parseCustomerBody checks tier and app references and the id', () => {
  assert.deepEqual(parseCustomerBody('acme', { tier: 'gold', match: { sources: ['10.0.0.0/8'], ports: [5001] } }, ['gold'], ['web']), {
    id: 'acme',
    tier: 'gold',
    match: { sources: ['10.0.0.0/8'], ports: [5001] },
  });
  assert.deepEqual(parseCustomerBody('acme', { tier: 'gold', match: null }, ['gold'], []).match, {});
  assert.deepEqual(problems(() => parseCustomerBody('acme', { tier: 'platinum', match: { apps: ['api'] } }, ['free', 'gold'], ['web'])), [
    'customers.acme.tier: "platinum" is not a tier (tiers: free, gold)',
    'customers.acme.match.apps[0]: no app named "api" (apps: web)',
  ]);
  assert.match(problems(() => parseCustomerBody('acme', { tier: 'gold', id: 'other' }, ['gold'], []))[0]!, /^customers\.acme\.id: "other" differs/);
  assert.match(problems(() => parseCustomerBody('10.0.0.1', { tier: 'gold', match: { sources: ['x'] } }, ['gold'], []))[0]!, /^customers\["10\.0\.0\.1"\]\.match\.sources\[0\]: "x" is not a CIDR/);
  assert.match(problems(() => parseCustomerBody('acme', [], ['gold'], []))[0]!, /^customers\.acme: must be an object with tier and match/);
  assert.match(problems(() => parseCustomerBody('__proto__', { tier: 'gold' }, ['gold'], []))[0]!, /is not a valid customer id/);
});
