/**
 * A Fleet in-process against a real redis-server: the heartbeat keeps Redis's admission counts
 * equal to the connections this instance holds, through a customer going idle and busy again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { realClock } from '../../src/clock.js';
import { Fleet } from '../../src/cluster/fleet.js';
import { emptyRuntime } from '../../src/config/runtime-state.js';
import { silentLogger } from '../../src/log.js';
import { Shaper } from '../../src/shaping/shaper.js';
import { haveRedis, RedisServer } from '../redis.js';

test('the heartbeat rewrites this instance\'s admission counts, also after a customer stood at 0', async (t) => {
  if (!haveRedis()) return t.skip('redis-server not installed (.ci/run installs it)');
  const redis = await RedisServer.start(t);
  const config = parseConfig(
    {
      apps: [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }],
      tiers: { gold: { maxConnections: 5 } },
      customers: [{ id: 'acme', tier: 'gold', match: {} }],
      cluster: { redis: redis.url, instance: 'a', prefix: 't:' },
    },
    {},
  );
  // As the proxy wires them: the fleet first, then the shaper with fleet admission; the heartbeat starts with the shaper.
  const fleet: Fleet = new Fleet(config.cluster!, {
    log: silentLogger(),
    runtime: emptyRuntime,
    adopt: () => {},
    connections: () => 0,
  });
  const shaper = new Shaper(config, realClock, (id, tier) => fleet.admissionFor(id, tier));
  t.after(async () => {
    shaper.stop();
    await fleet.stop();
  });
  await fleet.start(shaper);
  const gate = shaper.customers.get('acme')!.admission!;
  const count = () => fleet.link.run((r) => r.hget('t:admission:acme', 'a'));

  const first = await gate.admit();
  assert.ok(first);
  await fleet.tick();
  assert.equal(await count(), '1');
  first();
  await fleet.tick(); // reports 0 once
  await fleet.tick(); // and forgets the customer's counter
  assert.equal(await count(), null);
  // Lost in Redis (a restart without persistence): the next heartbeat writes it again.
  const again = await gate.admit();
  assert.ok(again);
  await fleet.link.run((r) => r.del('t:admission:acme'));
  await fleet.tick();
  assert.equal(await count(), '1');
  again();
});
