/**
 * The fleet's Lua scripts against a real redis-server: admission counts of live instances only,
 * the rate window, release, and the heartbeat's demand sums with stale entries dropped.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log.js';
import { RedisLink } from '../../src/cluster/link.js';
import { ADMIT, RELEASE, TICK } from '../../src/cluster/scripts.js';
import { haveRedis, RedisServer } from '../redis.js';
import { waitFor } from '../helpers.js';

const K = { members: 't:members', info: 't:info', version: 't:runtime:version', adm: 't:admission:acme', rate: 't:rate:acme' };

async function link(t: TestContext): Promise<RedisLink | undefined> {
  if (!haveRedis()) {
    t.skip('redis-server not installed (.ci/run installs it)');
    return undefined;
  }
  const redis = await RedisServer.start(t);
  const l = new RedisLink(redis.url, 1000, silentLogger());
  t.after(() => l.close());
  await l.open();
  assert.equal(l.up, true);
  return l;
}

const admit = (l: RedisLink, who: string, max: number, rate = -1, per = 0) => l.eval(ADMIT, [K.members, K.adm, K.rate], [who, 1000, max, rate, per]);

test('ADMIT counts the connections of live instances only; RELEASE gives a slot back', async (t) => {
  const l = await link(t);
  if (!l) return;
  const now = Number(await l.run((r) => r.time().then(([s, us]) => Number(s) * 1000 + Math.floor(Number(us) / 1000))));
  await l.run((r) => r.hset(K.members, 'a', now, 'b', now, 'dead', now - 5000));
  await l.run((r) => r.hset(K.adm, 'dead', 10)); // a crashed instance's connections
  assert.equal(await admit(l, 'a', 3), 1);
  assert.equal(await admit(l, 'b', 3), 1);
  assert.equal(await admit(l, 'b', 3), 1);
  assert.equal(await admit(l, 'a', 3), 0, 'the fleet holds 3 of 3');
  assert.equal(await l.eval(RELEASE, [K.adm], ['b']), 1);
  assert.equal(await admit(l, 'a', 3), 1);
  assert.deepEqual(await l.run((r) => r.hgetall(K.adm)), { dead: '10', a: '2', b: '1' });
  await l.eval(RELEASE, [K.adm], ['b']);
  assert.equal(await l.run((r) => r.hexists(K.adm, 'b')), 0, 'a count that reaches 0 is removed');
  // an instance with no heartbeat yet (its first connection before its first tick) still counts its own
  assert.equal(await admit(l, 'new', 3), 1);
  assert.equal(await admit(l, 'new', 3), 0);
});

test('ADMIT: connectionRate is one window for the whole fleet', async (t) => {
  const l = await link(t);
  if (!l) return;
  assert.equal(await admit(l, 'a', -1, 2, 60_000), 1);
  assert.equal(await admit(l, 'b', -1, 2, 60_000), 1);
  assert.equal(await admit(l, 'a', -1, 2, 60_000), -1);
  const ttl = Number(await l.run((r) => r.pttl(K.rate)));
  assert.ok(ttl > 0 && ttl <= 60_000);
});

test('TICK: heartbeat, demand summed over fresh entries, members with their age, admission counts written', async (t) => {
  const l = await link(t);
  if (!l) return;
  const d = 't:demand:customer:acme:down';
  await l.run((r) => r.hset(d, 'b', '30:' + (Date.now() + 60_000), 'gone', '50:1'));
  const reply = (await l.eval(TICK, [K.members, K.info, K.version, d, K.adm], ['a', '{"pid":1}', 1000, 1, 10, 4])) as [number, string, (string | number)[], number[]];
  assert.equal(reply[1], '0');
  assert.deepEqual(reply[2].filter((_, i) => i % 3 !== 1), ['a', '{"pid":1}']);
  assert.deepEqual(reply[3], [40], 'ours (10) + b (30); the stale entry is dropped');
  assert.equal(await l.run((r) => r.hexists(d, 'gone')), 0);
  assert.equal(await l.run((r) => r.hget(K.adm, 'a')), '4');
  // idle: our entry goes, the count of 0 too
  const idle = (await l.eval(TICK, [K.members, K.info, K.version, d, K.adm], ['a', '{}', 1000, 1, 0, 0])) as [number, string, unknown[], number[]];
  assert.deepEqual(idle[3], [30]);
  assert.equal(await l.run((r) => r.hexists(K.adm, 'a')), 0);
});

test('RedisLink: a dead Redis makes eval resolve undefined at once, and up false', async (t) => {
  const l = await link(t);
  if (!l) return;
  let changes = 0;
  l.onChange = () => changes++;
  await l.run((r) => r.call('SHUTDOWN', 'NOSAVE')).catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  assert.equal(await admit(l, 'a', 1), undefined);
  assert.ok(Date.now() - started < 1000);
  assert.equal(l.up, false);
  assert.equal(changes, 1);
});

test('RedisLink: a Redis slower than the timeout counts as away, and it is back with the next answer', async (t) => {
  if (!haveRedis()) return t.skip('redis-server not installed (.ci/run installs it)');
  const redis = await RedisServer.start(t, ['--enable-debug-command', 'yes']);
  const l = new RedisLink(redis.url, 200, silentLogger());
  t.after(() => l.close());
  await l.open();
  const blocker = new RedisLink(redis.url, 5000, silentLogger());
  t.after(() => blocker.close());
  await blocker.open();
  const sleeping = blocker.run((r) => r.call('DEBUG', 'SLEEP', '1'));
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  assert.equal(await admit(l, 'a', 5), undefined, 'a command Redis does not answer within redisTimeout fails');
  assert.ok(Date.now() - started < 900, 'without waiting for Redis');
  assert.equal(l.up, false);
  await sleeping;
  await waitFor(async () => (await admit(l, 'a', 5)) === 1, 3000, 'redis answering again');
  assert.equal(l.up, true);
});
