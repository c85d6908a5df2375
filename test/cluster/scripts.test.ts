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

test('TICK: heartbeat, this instance\'s demand hash replaced, the live others\' hashes returned, admission counts written', async (t) => {
  const l = await link(t);
  if (!l) return;
  const tick = (who: string, pairs: (string | number)[], counts: number[] = []) =>
    l.eval(TICK, [K.members, K.info, K.version, `t:demand:${who}`, ...counts.map(() => K.adm)], [who, `{"pid":"${who}"}`, 1000, 't:demand:', pairs.length / 2, ...pairs, ...counts]) as Promise<
      [number, string, (string | number)[], (string | string[])[], string, number]
    >;
  await tick('b', ['customer:acme:down', 30, 'tier:gold:down', 30]);
  await l.run((r) => r.hset(K.members, 'gone', 1).then(() => r.hset('t:demand:gone', 'customer:acme:down', 50)));
  const reply = await tick('a', ['customer:acme:down', 10], [4]);
  assert.equal(reply[1], '0');
  assert.deepEqual(reply[2].filter((_, i) => i % 3 !== 1), ['b', '{"pid":"b"}', 'a', '{"pid":"a"}'], 'members seen within 60 s, with their info (a long-gone one is dropped)');
  assert.deepEqual(reply[3], ['b', ['customer:acme:down', '30', 'tier:gold:down', '30']], 'only live others\' demand');
  assert.equal(await l.run((r) => r.hget(K.adm, 'a')), '4');
  assert.equal(reply[4], '', 'no earlier heartbeat under this id');
  // idle: our hash goes, the count of 0 too
  await tick('a', [], [0]);
  assert.equal(await l.run((r) => r.exists('t:demand:a')), 0);
  assert.equal(await l.run((r) => r.hexists(K.adm, 'a')), 0);
  const again = await tick('a', []);
  assert.equal(again[4], '{"pid":"a"}', 'the info this id had before');
  assert.ok(again[5] >= 0 && again[5] < 1000);
});

/** `p`, or a rejection after `ms` (a call that never settles fails the test instead of hanging it). */
function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

test('RedisLink: a dead Redis makes eval resolve undefined at once, and up false', async (t) => {
  const l = await link(t);
  if (!l) return;
  let changes = 0;
  l.onChange = () => changes++;
  await l.run((r) => r.call('SHUTDOWN', 'NOSAVE')).catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  // At once: not after a timeout (the bound only keeps a hanging call from hanging the test).
  assert.equal(await bounded(admit(l, 'a', 1), 10_000), undefined);
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
  let slept = false;
  const sleeping = blocker.run((r) => r.call('DEBUG', 'SLEEP', '1')).then(() => (slept = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await admit(l, 'a', 5), undefined, 'a command Redis does not answer within redisTimeout fails');
  assert.equal(slept, false, 'without waiting for Redis (it still sleeps)');
  assert.equal(l.up, false);
  await sleeping;
  await waitFor(async () => (await admit(l, 'a', 5)) === 1, 3000, 'redis answering again');
  assert.equal(l.up, true);
});
