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
import { HELD_HEADROOM, redactUrl, shareFor } from '../../src/cluster/fleet.js';
import { scopeKey, Shaper, type Demand, type Scope, type ShapedConnection, type Wants } from '../../src/shaping/shaper.js';
import type { ShapedFlow } from '../../src/shaping/socket-flow.js';

const MB = 1_000_000;
const near = (x: number, want: number) => assert.ok(Math.abs(x - want) < 1e-12, `${x} is not ${want}`);
const w = (count: number, cappedCount = 0, cappedRate = 0): Wants => ({ count, cappedCount, cappedRate });

test('shareFor: connections free to take any share split the cap evenly across the fleet', () => {
  assert.equal(shareFor(w(10), w(100), 10 * MB, 3), 0.1);
  assert.equal(shareFor(w(70), w(100), 10 * MB, 3), 0.7);
  assert.equal(shareFor(w(5), w(5), 10 * MB, 2), 1);
  assert.equal(shareFor(w(3), w(0), 10 * MB, 2), 1, 'a fleet figure older than our own demand never gives more than all of it');
});

test('shareFor: connections held by a cap of their own keep what they take (and a little more), the rest is split by the free ones', () => {
  const H = HELD_HEADROOM;
  // a: 5 connections held at 100 kB/s each; b: 9 free ones; a 10 MB/s cap
  const fleet = w(9, 5, 0.5 * MB);
  const a = shareFor(w(0, 5, 0.5 * MB), fleet, 10 * MB, 2);
  const b = shareFor(w(9), fleet, 10 * MB, 2);
  near(a, (0.5 * H) / 10);
  near(b, (10 - 0.5 * H) / 10);
  near(a + b, 1);
  // both kinds on one instance: its held ones plus its free ones' part of the rest
  near(shareFor(w(3, 5, 0.5 * MB), w(12, 5, 0.5 * MB), 10 * MB, 2), (0.5 * H + ((10 - 0.5 * H) * 3) / 12) / 10);
  // only held connections anywhere: they keep theirs, the rest is split evenly
  near(shareFor(w(0, 2, 2 * MB), w(0, 3, 3 * MB), 10 * MB, 2), (2 * H + (10 - 3 * H) / 2) / 10);
  // the held ones alone would take more than the cap: by connections
  assert.equal(shareFor(w(0, 4, 8 * MB), w(2, 8, 16 * MB), 10 * MB, 2), 0.4);
});

test('shareFor: an idle instance keeps one free connection\'s share; an idle fleet splits evenly', () => {
  assert.equal(shareFor(w(0), w(30), 10 * MB, 3), 1 / 31);
  near(shareFor(w(0), w(9, 5, 0.5 * MB), 10 * MB, 2), (10 - 0.5 * HELD_HEADROOM) / 10 / 10);
  assert.equal(shareFor(w(0), w(0), 10 * MB, 4), 0.25);
  assert.equal(shareFor(w(0), w(0), 10 * MB, 0), 1);
});

test('redactUrl hides the password only', () => {
  assert.equal(redactUrl('redis://:secret@h:6379/2'), 'redis://:***@h:6379/2');
  assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
});

const MiB = 1024 * 1024;

function shaper(gold: Record<string, unknown> = { connection: { down: '4MiB/s' }, customer: { down: '10MiB/s' }, total: { down: '20MiB/s' } }) {
  const config = parseConfig(
    {
      apps: [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }],
      tiers: { gold },
      global: { down: '40MiB/s' },
      customers: [{ id: 'acme', tier: 'gold', match: {} }],
    },
    {},
  );
  const clock = new ManualClock(1000);
  return { clock, shaper: new Shaper(config, clock) };
}

const scope = (level: Scope['level'], name: string, dir: Scope['dir'] = 'down'): Scope => ({ level, name, dir, key: scopeKey(level, name, dir) });

/** A shaped connection and its two socket flows. */
async function connection(s: Shaper, port: number): Promise<{ sc: ShapedConnection; streams: { up: ShapedFlow; down: ShapedFlow } }> {
  const sc = await s.admit({ clientAddress: '127.0.0.1', app: 'web', port });
  assert.ok(sc && typeof sc !== 'string');
  const streams = s.stages(sc, `conn:${port}`);
  // The destinations take everything (a big high-water mark): flows are held back by tokens only.
  for (const flow of [streams.up, streams.down]) flow.connect(new PassThrough() as unknown as Socket, new PassThrough({ highWaterMark: 64 * MiB }) as unknown as Socket);
  return { sc, streams };
}

test('a share scales the customer, tier and global buckets (rate and burst); connection caps stay whole', async () => {
  const { shaper: s } = shaper();
  const { sc } = await connection(s, 1);
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

const wants = (d: Demand | undefined) => d && [d.count, d.cappedCount, d.cappedRate];

test('demand counts the connections that hold bytes they could send, per shared cap and direction', async () => {
  const { clock, shaper: s } = shaper({ customer: { down: '10MiB/s' }, total: { down: '20MiB/s' } });
  const { streams: busy } = await connection(s, 1);
  await connection(s, 2); // idle: nothing to send
  const out = new Map<string, Demand>();
  s.demand(out);
  assert.deepEqual([...out.keys()], [], 'nobody wants anything');

  // More than the buckets hold: the rest waits for the customer's tokens.
  busy.down.feed(Buffer.alloc(8 * MiB));
  s.demand(out);
  clock.advance(200);
  s.demand(out);
  assert.deepEqual(wants(out.get('customer:acme:down')), [1, 0, 0]);
  // seen from the tier and the whole proxy, the customer's own cap is what holds it back
  assert.deepEqual(wants(out.get('tier:gold:down')), [0, 1, 10 * MiB]);
  assert.deepEqual(wants(out.get('global:down')), [0, 1, 10 * MiB]);
  assert.equal(out.get('customer:acme:up'), undefined, 'only directions with a finite cap are scopes');
  assert.equal(out.get('customer:acme:down')!.cap, 10 * MiB);
  s.stop();
});

test('demand: a connection moving at its own connection cap is counted as held, with that cap', async () => {
  const { clock, shaper: s } = shaper();
  const { streams: capped } = await connection(s, 1);
  capped.down.feed(Buffer.alloc(8 * MiB));
  const out = new Map<string, Demand>();
  s.demand(out);
  clock.advance(200);
  s.demand(out);
  assert.deepEqual(wants(out.get('customer:acme:down')), [0, 1, 4 * MiB]);
  assert.deepEqual(wants(out.get('tier:gold:down')), [0, 1, 4 * MiB]);
  assert.deepEqual(wants(out.get('global:down')), [0, 1, 4 * MiB]);
  s.stop();
});

test('demand: connections below their own cap because the customer\'s is smaller are free, not held', async () => {
  const { clock, shaper: s } = shaper({ connection: { down: '4MiB/s' }, customer: { down: '1MiB/s' } });
  const { streams: one } = await connection(s, 1);
  const { streams: two } = await connection(s, 2);
  one.down.feed(Buffer.alloc(8 * MiB));
  two.down.feed(Buffer.alloc(8 * MiB));
  const out = new Map<string, Demand>();
  for (let i = 0; i < 10; i++) {
    s.demand(out);
    clock.advance(200);
  }
  s.demand(out);
  assert.deepEqual(wants(out.get('customer:acme:down')), [2, 0, 0]);
  s.stop();
});
