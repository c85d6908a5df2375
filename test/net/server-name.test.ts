import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SniPatterns, sniPatternProblem } from '../../src/net/server-name.js';
import { CustomerMatcher } from '../../src/identify/matcher.js';

test('SNI patterns: exact names, any case, a trailing dot', () => {
  const p = new SniPatterns(['api.example.com', 'Shop.Example.NET.']);
  assert.ok(p.matches('api.example.com'));
  assert.ok(p.matches('API.Example.COM'));
  assert.ok(p.matches('api.example.com.'));
  assert.ok(p.matches('shop.example.net'));
  assert.ok(!p.matches('www.api.example.com'));
  assert.ok(!p.matches('example.com'));
  assert.ok(!p.matches(undefined));
  assert.ok(!p.matches(''));
});

test('SNI wildcards match one or more labels, never the bare domain', () => {
  const p = new SniPatterns(['*.example.com']);
  assert.ok(p.matches('a.example.com'));
  assert.ok(p.matches('a.b.example.com'));
  assert.ok(p.matches('A.EXAMPLE.com'));
  assert.ok(!p.matches('example.com'), 'the bare domain');
  assert.ok(!p.matches('.example.com'), 'an empty label');
  assert.ok(!p.matches('a..example.com'), 'an empty label before the suffix');
  assert.ok(!p.matches('badexample.com'), 'a suffix that is not at a label boundary');
  assert.ok(!p.matches('a.example.com.evil.net'));
});

test('SNI pattern checks: wildcards only as the whole first label', () => {
  for (const good of ['example.com', '*.example.com', 'a-b.c_d.example', 'localhost', 'X.Example.COM.']) {
    assert.equal(sniPatternProblem(good), undefined, good);
  }
  for (const bad of ['', '*', '*example.com', 'a.*.example.com', 'api*.example.com', '*.*.example.com', 'a..b', '-a.example.com', 'a b', 5, null]) {
    assert.ok(sniPatternProblem(bad), JSON.stringify(bad));
  }
  assert.match(sniPatternProblem('a.*.com')!, /wildcard that is not the whole first label/);
});

test('customer matching: sni is one more criterion, the first customer in order wins, no SNI never matches an sni list', () => {
  const m = new CustomerMatcher([
    { id: 'shop', tier: 'gold', match: { sni: ['shop.example.com'] } },
    { id: 'wild', tier: 'free', match: { sni: ['*.example.com'], apps: ['web'] } },
    { id: 'office', tier: 'gold', match: { sources: ['10.0.0.0/8'] } },
  ]);
  const who = (sni: string | undefined, app = 'web', clientAddress = '192.0.2.1') => m.match({ clientAddress, app, port: 443, ...(sni ? { sni } : {}) });
  assert.equal(who('shop.example.com'), 'shop');
  assert.equal(who('SHOP.example.com'), 'shop');
  assert.equal(who('api.example.com'), 'wild');
  assert.equal(who('api.example.com', 'other'), undefined, 'app criterion still holds');
  assert.equal(who('example.com'), undefined);
  assert.equal(who(undefined), undefined, 'no SNI');
  // Order, not specificity: "shop" is listed before the source match.
  assert.equal(who('shop.example.com', 'web', '10.1.2.3'), 'shop');
  assert.equal(who(undefined, 'web', '10.1.2.3'), 'office');
});
