import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SubjectPatterns, subjectPatternProblem, subjectText } from '../../src/net/subject.js';
import { CustomerMatcher } from '../../src/identify/matcher.js';

test('subject patterns: every pair must be in the subject, in any order, ignoring case', () => {
  const alice = subjectText('O=Acme\nCN=alice');
  assert.equal(alice, 'O=Acme, CN=alice');
  assert.ok(new SubjectPatterns(['CN=alice']).matches(alice));
  assert.ok(new SubjectPatterns(['cn=ALICE']).matches(alice));
  assert.ok(new SubjectPatterns(['CN=alice, O=Acme']).matches(alice), 'order does not matter');
  assert.ok(new SubjectPatterns(['O=Acme']).matches(alice));
  assert.ok(!new SubjectPatterns(['CN=alice, O=Beta']).matches(alice), 'all pairs must hold');
  assert.ok(!new SubjectPatterns(['CN=ali']).matches(alice), 'a value is matched whole');
  assert.ok(new SubjectPatterns(['CN=bob', 'O=Acme']).matches(alice), 'one pattern of the list is enough');
  assert.ok(!new SubjectPatterns(['CN=alice']).matches(undefined), 'no certificate never matches');
});

test('subject patterns: an escaped comma stays in its value', () => {
  const subject = subjectText('O=Acme\\, Inc.\nCN=alice');
  assert.ok(new SubjectPatterns(['O=Acme\\, Inc.']).matches(subject));
  assert.ok(!new SubjectPatterns(['O=Acme']).matches(subject));
});

test('subject pattern checks', () => {
  for (const good of ['CN=alice', 'CN=alice, O=Acme', 'emailAddress=a@b.test', '2.5.4.3=alice']) assert.equal(subjectPatternProblem(good), undefined, good);
  for (const bad of ['alice', 'CN=', '=alice', 'CN=alice,', '', ' ', 7, null]) assert.match(subjectPatternProblem(bad) ?? '', /is not a certificate subject/, String(bad));
});

test('customer matching: clientCert with the other criteria, first customer wins', () => {
  const m = new CustomerMatcher([
    { id: 'alice-web', tier: 't', match: { clientCert: ['CN=alice'], apps: ['web'] } },
    { id: 'acme', tier: 't', match: { clientCert: ['O=Acme'] } },
    { id: 'anyone', tier: 't', match: {} },
  ]);
  const who = { clientAddress: '127.0.0.1', app: 'web', port: 5001 };
  assert.equal(m.match({ ...who, clientCert: 'O=Acme, CN=alice' }), 'alice-web');
  assert.equal(m.match({ ...who, app: 'api', clientCert: 'O=Acme, CN=alice' }), 'acme');
  assert.equal(m.match({ ...who, clientCert: 'O=Acme, CN=bob' }), 'acme');
  assert.equal(m.match(who), 'anyone', 'no certificate');
});
