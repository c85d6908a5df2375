/**
 * The local side of fleet shares, with a manual clock: the share formula, the shaper scaling
 * shared caps (never connection caps) by its share, and the demand it reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { ManualClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { redactUrl, shareFor } from '../../src/cluster/fleet.js';
import { scopeKey, Shaper, type Scope, type ShapedConnection } from '../../src/shaping/shaper.js';

test('shareFor: wanting connections split the cap; an idle instance keeps one connection\'s share; an idle fleet splits evenly', () => {
  assert.equal(shareFor(10, 100, 3), 0.1);
  assert.equal(shareFor(70, 100, 3), 0.7);
  assert.equal(shareFor(5, 5, 2), 1);
  assert.equal(shareFor(3, 0, 2), 1, 'a fleet figure older than our own demand never gives more than all of it');
  assert.equal(shareFor(0, 30, 3), 1 / 31);
  assert.equal(shareFor(0, 0, 4), 0.25);
  assert.equal(shareFor(0, 0, 0), 1);
});

test('redactUrl hides the password only', () => {
  assert.equal(redactUrl('redis://:secret@h:6379/2'), 'redis://:***@h:6379/2');
  assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
});

const MiB = 1024 * 1024;

function shaper() {
  const config = parseConfig(
    {
      apps: [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }],
      tiers: { gold: { connection: { down: '4MiB/s' }, customer: { down: '10MiB/s' }, total: { down: '20MiB/s' } } },
      global: { down: '40MiB/s' },
      customers: [{ id: 'acme', tier: 'gold', match: {} }],
    },
    {},
  );
  const clock = new ManualClock(1000);
  return { clock, shaper: new Shaper(config, clock) };
}

const scope = (level: Scope['level'], name: string, dir: Scope['dir'] = 'down'): Scope => ({ level, name, dir, key: scopeKey(level, name, dir) });

async function connection(s: Shaper, port: number): Promise<ShapedConnection> {
  const sc = await s.admit({ clientAddress: '127.0.0.1', app: 'web', port });
  assert.ok(sc && sc !== 'rejected');
  const streams = s.stages(sc, `conn:${port}`);
  // The destinations take everything (a big high-water mark): flows are held back by tokens only.
  for (const flow of [streams.up, streams.down]) flow.connect(new PassThrough() as unknown as Socket, new PassThrough({ highWaterMark: 64 * MiB }) as unknown as Socket);
  return sc;
}

test('a share scales the customer, tier and global buckets (rate and burst); connection caps stay whole', async () => {
  const { shaper: s } = shaper();
  const sc = await connection(s, 1);
  const acme = s.customers.get('acme')!;
  const tier = s.tiers.get('gold')!;
  assert.equal(acme.nodes.down.bucket!.rate, 10 * MiB);

  s.setShare(scope('customer', 'acme'), 0.25);
  s.setShare(scope('tier', 'gold'), 0.5);
  s.setShare(scope('global', ''), 0.1);
  assert.equal(acme.nodes.down.bucket!.rate, 2.5 * MiB);
  assert.equal(tier.nodes.down.bucket!.rate, 10 * MiB);
  assert.equal(s.schedulers.down.root.bucket!.rate, 4 * MiB);
  assert.equal(sc.streams!.down.node.bucket!.rate, 4 * MiB, 'connection cap untouched');
  assert.equal(acme.nodes.up.bucket, null, 'an unlimited direction has no bucket whatever the share');

  // A tier change keeps the share: the new cap is scaled too.
  const gold = s.tiers.get('gold')!.config;
  s.apply({ ...s.config, tiers: { gold: { ...gold, customer: { down: 20 * MiB, up: Infinity } } } });
  assert.equal(acme.nodes.down.bucket!.rate, 5 * MiB);

  s.setAllShares(0.5);
  assert.equal(acme.nodes.down.bucket!.rate, 10 * MiB);
  assert.equal(s.schedulers.down.root.bucket!.rate, 20 * MiB);
  s.resetShares(1);
  assert.equal(acme.nodes.down.bucket!.rate, 20 * MiB);
  assert.equal(s.schedulers.down.root.bucket!.rate, 40 * MiB);
  s.stop();
});

test('demand counts the connections that hold bytes they could send, per shared cap and direction', async () => {
  const { shaper: s } = shaper();
  const busy = await connection(s, 1);
  await connection(s, 2); // idle: nothing to send
  const out = new Map<string, { scope: Scope; count: number }>();
  s.demand(out);
  assert.deepEqual([...out].map(([k, v]) => [k, v.count]).sort(), [
    ['customer:acme:down', 0],
    ['global:down', 0],
    ['tier:gold:down', 0],
  ], 'only directions with a finite cap are scopes');

  // More than the bucket holds: the rest waits for tokens, the connection wants more than it gets.
  busy.streams!.down.feed(Buffer.alloc(8 * MiB));
  s.demand(out);
  assert.equal(out.get('customer:acme:down')!.count, 1);
  assert.equal(out.get('tier:gold:down')!.count, 1);
  assert.equal(out.get('global:down')!.count, 1);
  assert.equal(out.get('customer:acme:up'), undefined);
  s.stop();
});
