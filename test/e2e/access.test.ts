/**
 * apps[].allow / apps[].deny over real sockets from 127.0.0.0/8 sources: refused at accept before
 * any dial, counted (reason "denied"), logged at most once per source per 10 s (manual clock), the
 * lists changed by a reload; with acceptProxyProtocol, the balancer's address at accept and the
 * header's client address after it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppConfig } from '../../src/config/types.js';
import { ManualClock } from '../../src/clock.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { AccessRules } from '../../src/server/access.js';
import { app, backendFor, captureLogger, config, connectFrom, echoesExactly, proxyFor, readAll, refusedRead, waitFor } from '../helpers.js';

const echoes = (s: import('node:net').Socket, text: string): Promise<void> => echoesExactly(s, Buffer.from(text));

test('AccessRules: deny wins, allow lists the only sources, IPv4-mapped IPv6 is IPv4, an app without lists lets all in', () => {
  const rules = new AccessRules();
  const web = { name: 'web', allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.6.6.0/24'] } as AppConfig;
  const api = { name: 'api', deny: ['192.0.2.1'] } as AppConfig;
  rules.configure([web, api, { name: 'open' } as AppConfig]);
  assert.equal(rules.denied('web', '10.1.2.3'), false);
  assert.equal(rules.denied('web', '::ffff:10.1.2.3'), false);
  assert.equal(rules.denied('web', '2001:db8::1'), false);
  assert.equal(rules.denied('web', '10.6.6.6'), true, 'deny wins over allow');
  assert.equal(rules.denied('web', '192.0.2.7'), true, 'not in allow');
  assert.equal(rules.denied('web', undefined), true, 'no address is in no allow list');
  assert.equal(rules.denied('api', '192.0.2.1'), true);
  assert.equal(rules.denied('api', '192.0.2.2'), false, 'only deny: the rest get in');
  assert.equal(rules.denied('api', undefined), false);
  assert.equal(rules.denied('open', '192.0.2.1'), false);
  rules.configure([{ name: 'web' } as AppConfig]);
  assert.equal(rules.denied('web', '10.6.6.6'), false, 'a reload replaces the lists');
});

test('allow and deny in the config: CIDR lists, problems by key path', () => {
  const base = { name: 'web', ports: [1], targets: ['127.0.0.1:2'] };
  const c = parseConfig({ apps: [{ ...base, allow: ['10.0.0.0/8'], deny: ['10.6.6.6'] }] }, {});
  assert.deepEqual([c.apps[0]!.allow, c.apps[0]!.deny], [['10.0.0.0/8'], ['10.6.6.6']]);
  assert.equal(parseConfig({ apps: [base] }, {}).apps[0]!.allow, undefined);
  assert.throws(
    () => parseConfig({ apps: [{ ...base, allow: [], deny: ['10.0.0.0/33'] }] }, {}),
    (err: ConfigError) => {
      assert.deepEqual(err.problems, [
        'apps[0].allow: must list at least one of the CIDRs, e.g. ["10.0.0.0/8", "2001:db8::/32"]',
        'apps[0].deny[0]: "10.0.0.0/33" is not a CIDR (use e.g. "10.1.0.0/16" or "2001:db8::/32")',
      ]);
      return true;
    },
  );
});

test('allow + deny: refused at accept before any dial, counted, logged once per source per 10 s; a reload changes the lists', async (t) => {
  const backend = await backendFor(t, 'echo');
  const clock = new ManualClock(1000);
  const { log, lines } = captureLogger('warn');
  const web = app('web', [backend.address], { allow: ['127.1.0.0/16'], deny: ['127.1.2.0/24'] });
  const proxy = await proxyFor(t, config([web]), { backends: [backend], clock, log });
  const port = proxy.portOf('web');

  const ok = await connectFrom(port, '127.1.1.1');
  await echoes(ok, 'allowed');
  ok.end();
  await readAll(ok);
  assert.equal((await refusedRead(port, '127.1.2.3')).length, 0, 'denied (deny wins over allow)');
  assert.equal((await refusedRead(port, '127.1.2.3')).length, 0);
  assert.equal((await refusedRead(port, '127.1.2.3')).length, 0);
  assert.equal((await refusedRead(port, '127.0.0.5')).length, 0, 'not in allow');
  await waitFor(() => proxy.stats.refused.get('denied') === 4, 2000, 'the refusals to be counted');
  assert.equal(backend.accepted, 1, 'no dial for a denied source');
  assert.match(await proxy.metrics.scrape(), /shaper_connections_refused_total\{reason="denied"\} 4/);

  const denials = () => lines.filter((l) => l['reason'] === 'denied');
  assert.deepEqual(
    denials().map((l) => [l['client'], l['app'], l['suppressed'], l['msg']]),
    [
      ['127.1.2.3', 'web', 0, 'connection refused: source not allowed (apps[].allow / deny)'],
      ['127.0.0.5', 'web', 0, 'connection refused: source not allowed (apps[].allow / deny)'],
    ],
    'one line per source',
  );
  clock.advance(10_000);
  assert.equal((await refusedRead(port, '127.1.2.3')).length, 0);
  await waitFor(() => denials().length === 3, 2000, 'the next line after 10 s');
  assert.equal(denials()[2]!['suppressed'], 2, 'it says how many were not logged');

  // A reload: 127.1.2.3 is no longer denied, and now 127.1.1.1 is.
  proxy.reload(config([{ ...web, deny: ['127.1.1.0/24'] }]));
  const now = await connectFrom(port, '127.1.2.3');
  await echoes(now, 'allowed after the reload');
  now.destroy();
  assert.equal((await refusedRead(port, '127.1.1.1')).length, 0);
  await waitFor(() => proxy.stats.refused.get('denied') === 6, 2000, 'the refusal after the reload');
});

test('acceptProxyProtocol: the balancer is checked at accept, the header\'s client address after the header (close reason denied)', async (t) => {
  const backend = await backendFor(t, 'echo');
  const web = app('web', [backend.address], { acceptProxyProtocol: true, allow: ['127.1.0.1', '10.0.0.0/8'], deny: ['10.6.6.0/24'] });
  const proxy = await proxyFor(t, config([web]), { backends: [backend] });
  const port = proxy.portOf('web');

  // A client behind the balancer in allow: served.
  const good = await connectFrom(port, '127.1.0.1');
  good.write('PROXY TCP4 10.1.2.3 10.0.0.1 40000 80\r\n');
  await echoes(good, 'via the balancer');
  assert.equal([...proxy.connections][0]!.clientAddress, '10.1.2.3');
  good.destroy();

  // A client the header names in deny: closed after the header, before any dial.
  const bad = await connectFrom(port, '127.1.0.1');
  bad.write('PROXY TCP4 10.6.6.6 10.0.0.1 40001 80\r\nhello');
  assert.equal((await readAll(bad)).length, 0);
  bad.destroy();
  await waitFor(() => proxy.closedByReason.get('denied') === 1, 2000, 'the close with reason denied');
  // Not in allow at all.
  const outside = await connectFrom(port, '127.1.0.1');
  outside.write('PROXY TCP4 192.0.2.1 10.0.0.1 40002 80\r\nhello');
  assert.equal((await readAll(outside)).length, 0);
  outside.destroy();
  await waitFor(() => proxy.closedByReason.get('denied') === 2, 2000, 'the second close');

  // A socket whose own address is not allowed is refused at accept, whatever header it would send.
  assert.equal((await refusedRead(port, '127.1.0.2')).length, 0);
  await waitFor(() => proxy.stats.refused.get('denied') === 3, 2000, 'three refusals in all');
  assert.equal(backend.accepted, 1, 'only the allowed client was dialed');
  assert.equal(proxy.limits.total, 0, 'every slot of the abuse limits was given back');
});
