/**
 * Plans with the manual clock (src/shaping/plans/): the quota switch (to `then`, live, within a
 * serve pass of the quota's byte), the refusal and closing without `then`, period roll-over
 * (day, hour, across DST) with its usage log line and the release of the switch, schedule windows
 * applied at their boundaries, and usage kept in the store across a restart and out of memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { ManualClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { Housekeeping } from '../../src/housekeeping.js';
import { Shaper, type ShapedConnection } from '../../src/shaping/shaper.js';
import type { ShapedFlow } from '../../src/shaping/socket-flow.js';
import { withTempDir } from '../helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Setup {
  clock: ManualClock;
  shaper: Shaper;
  housekeeping: Housekeeping;
}

function setup(raw: Record<string, unknown>, startIso: string, stateFile: string | null = null): Setup {
  const config = parseConfig({ apps: [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }], ...raw }, {});
  const clock = new ManualClock(0);
  const start = Date.parse(startIso);
  const shaper = new Shaper(config, clock, undefined, { wall: () => start + clock.now(), stateFile: () => stateFile });
  const housekeeping = new Housekeeping(clock);
  shaper.plans.start(housekeeping);
  return { clock, shaper, housekeeping };
}

async function stop({ shaper, housekeeping }: Setup): Promise<void> {
  housekeeping.stop();
  await shaper.plans.stop();
  shaper.stop();
}

/** A shaped connection from `address` whose destinations take everything: only tokens hold it back. */
async function connection(s: Shaper, address: string): Promise<{ sc: ShapedConnection; down: ShapedFlow; up: ShapedFlow; closed: string[] }> {
  const sc = await s.admit({ clientAddress: address, app: 'web', port: 1 });
  assert.ok(sc && typeof sc !== 'string', `admitted (${String(sc)})`);
  const closed: string[] = [];
  sc.owner = { close: (reason) => void closed.push(reason) };
  const streams = s.stages(sc, `conn:${address}`);
  for (const flow of [streams.up, streams.down]) flow.connect(new PassThrough() as unknown as Socket, new PassThrough({ highWaterMark: 256 * MiB }) as unknown as Socket);
  return { sc, down: streams.down, up: streams.up, closed };
}

/** Advances in `step` ms until `done()` or `ms` have passed; returns the ms it took. */
function advanceUntil(clock: ManualClock, done: () => boolean, ms: number, step = 5): number {
  for (let t = 0; t <= ms; t += step) {
    if (done()) return t;
    clock.advance(step);
  }
  assert.fail(`not within ${ms} ms`);
}

const FREE = {
  accounting: { period: 'day', timezone: 'UTC' },
  tiers: {
    free: { customer: { down: '1MiB/s' }, quota: { bytes: '2MiB', direction: 'down', then: 'slow' } },
    slow: { customer: { down: '100KiB/s' } },
  },
  defaultTier: 'free',
};

test('a quota switch: at the quota\'s byte the customer and its open connection move to "then", live; the next day it is back', async () => {
  await withTempDir(async (dir) => {
    const stateFile = join(dir, 'p.state.json');
    const setupped = setup(FREE, '2025-06-06T23:58:00Z', stateFile);
    const { clock, shaper: s } = setupped;
    const { sc, down } = await connection(s, '127.1.0.1');
    const cust = s.customers.get('127.1.0.1')!;
    down.feed(Buffer.alloc(64 * MiB));
    advanceUntil(clock, () => cust.tier === 'slow', 5000);
    const usage = (await s.plans.usage('127.1.0.1'))!;
    assert.ok(usage.down >= 2 * MiB && usage.down < 2 * MiB + 64 * KiB, `switched at ${usage.down} bytes (quota ${2 * MiB})`);
    assert.equal(usage.exceeded, true);
    assert.equal(usage.remaining, 0);
    assert.deepEqual([usage.tier, usage.inTier], ['free', 'slow']);
    assert.equal(sc.customer, cust, 'the same connection, no reconnect');

    // The slow tier's rate from now on (its bucket was full at the switch: at most one bucket more).
    const before = cust.nodes.down.bytes;
    clock.advance(10_000);
    const rate = (cust.nodes.down.bytes - before) / 10;
    assert.ok(rate > 95 * KiB && rate < 110 * KiB, `${rate} bytes/s under "slow"`);

    // A new connection of the customer goes to "slow" as well.
    const second = await connection(s, '127.1.0.1');
    assert.equal(second.sc.customer.tier, 'slow');

    // Midnight: the period closes (one log line) and the customer is back in its own tier.
    const counted = (await s.plans.usage('127.1.0.1'))!.down;
    for (let t = 0; t < 120_000 && s.plans.book!.period.start < Date.parse('2025-06-07T00:00:00Z'); t += 100) {
      clock.advance(100);
      await s.plans.settled();
    }
    assert.equal(s.plans.book!.period.start, Date.parse('2025-06-07T00:00:00Z'));
    assert.equal(cust.tier, 'free');
    const after = (await s.plans.usage('127.1.0.1'))!;
    assert.equal(after.exceeded, false);
    assert.ok(after.down < 200 * KiB, `${after.down} bytes in the new period`);
    assert.equal(after.last!.start, '2025-06-06T00:00:00+00:00');
    const lines = (await readFile(join(dir, 'p.usage.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.deepEqual([line['customer'], line['tier'], line['start'], line['end'], line['timezone'], line['up']], ['127.1.0.1', 'free', '2025-06-06T00:00:00+00:00', '2025-06-07T00:00:00+00:00', 'UTC', 0]);
    assert.ok((line['down'] as number) >= counted, `${String(line['down'])} >= ${counted}`);
    await stop(setupped);
  });
});

test('a quota without "then": open connections are closed and new ones refused until the period ends', async () => {
  const setupped = setup(
    { accounting: { period: 'hour', timezone: 'Asia/Kolkata' }, tiers: { capped: { connection: { down: '1MiB/s' }, quota: { bytes: '1MB', direction: 'both' } } }, defaultTier: 'capped' },
    '2025-06-06T10:00:00Z',
  );
  const { clock, shaper: s } = setupped;
  const a = await connection(s, '127.1.0.2');
  const b = await connection(s, '127.1.0.2');
  a.down.feed(Buffer.alloc(4 * MiB));
  advanceUntil(clock, () => a.closed.length > 0, 5000);
  assert.deepEqual([a.closed, b.closed], [['quota_exceeded'], ['quota_exceeded']]);
  const u = (await s.plans.usage('127.1.0.2'))!;
  assert.ok(u.down >= 1_000_000 && u.down < 1_000_000 + 64 * KiB, `closed at ${u.down}`);
  assert.deepEqual([u.exceeded, u.quota?.then, u.period.start, u.period.end], [true, null, '2025-06-06T15:00:00+05:30', '2025-06-06T16:00:00+05:30']);
  assert.equal(await s.admit({ clientAddress: '127.1.0.2', app: 'web', port: 1 }), 'quota_exceeded');
  const other = await s.admit({ clientAddress: '127.1.0.3', app: 'web', port: 1 });
  assert.ok(other && typeof other !== 'string', 'another source is another customer');
  // The hour ends at 16:00 local (10:30Z): admitted again.
  for (const sc of [...s.customers.get('127.1.0.2')!.connections]) s.release(sc);
  clock.advance(3_600_000);
  await s.plans.settled();
  const again = await s.admit({ clientAddress: '127.1.0.2', app: 'web', port: 1 });
  assert.ok(again && typeof again !== 'string', String(again));
  await stop(setupped);
});

test('an "up" quota counts only the bytes sent: downloads never reach it, an upload switches at its byte', async () => {
  const setupped = setup(
    {
      accounting: { period: 'month', timezone: 'UTC' },
      tiers: {
        seeder: { customer: { down: '1MiB/s', up: '1MiB/s' }, quota: { bytes: '1MiB', direction: 'up', then: 'slow' } },
        slow: { customer: { down: '1MiB/s', up: '100KiB/s' } },
      },
      defaultTier: 'seeder',
    },
    '2025-06-06T12:00:00Z',
  );
  const { clock, shaper: s } = setupped;
  const { up, down } = await connection(s, '127.1.0.8');
  const cust = s.customers.get('127.1.0.8')!;
  down.feed(Buffer.alloc(3 * MiB));
  clock.advance(4000);
  const downloaded = (await s.plans.usage('127.1.0.8'))!;
  assert.deepEqual([downloaded.down, downloaded.up, downloaded.exceeded, cust.tier], [3 * MiB, 0, false, 'seeder']);
  assert.equal(downloaded.remaining, MiB);
  up.feed(Buffer.alloc(4 * MiB));
  advanceUntil(clock, () => cust.tier === 'slow', 5000);
  const u = (await s.plans.usage('127.1.0.8'))!;
  assert.ok(u.up >= MiB && u.up < MiB + 64 * KiB, `switched at ${u.up} bytes up (quota ${MiB})`);
  assert.deepEqual([u.down, u.exceeded, u.remaining], [3 * MiB, true, 0]);
  await stop(setupped);
});

test('a day period rolls over at local midnight on the 25-hour day (Europe/Berlin, 2025-10-26)', async () => {
  await withTempDir(async (dir) => {
    const setupped = setup(
      { accounting: { period: 'day', timezone: 'Europe/Berlin', log: join(dir, 'billing', 'usage.jsonl') }, tiers: { t: { connection: { down: '1MiB/s' } } }, defaultTier: 't' },
      '2025-10-26T22:59:00Z',
      join(dir, 's.json'),
    );
    const { clock, shaper: s } = setupped;
    const { down } = await connection(s, '127.1.0.4');
    down.feed(Buffer.alloc(100 * KiB));
    clock.advance(59_999);
    assert.equal(s.plans.book!.period.start, Date.parse('2025-10-25T22:00:00Z'), 'still the 26th');
    clock.advance(1);
    await s.plans.settled();
    assert.equal(s.plans.book!.period.start, Date.parse('2025-10-26T23:00:00Z'));
    const [line] = (await readFile(join(dir, 'billing', 'usage.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual([line!['start'], line!['end'], line!['down']], ['2025-10-26T00:00:00+02:00', '2025-10-27T00:00:00+01:00', 100 * KiB]);
    await stop(setupped);
  });
});

test('schedule windows: the caps change at the boundary (to the millisecond), live, and change back', async () => {
  const setupped = setup(
    {
      accounting: { period: 'month', timezone: 'Europe/Berlin' },
      tiers: { business: { customer: { down: '1MiB/s' }, schedule: [{ days: 'mon-fri', from: '18:00', to: '23:00', customer: { down: '10MiB/s' } }] } },
      customers: [{ id: 'acme', tier: 'business', match: {} }],
    },
    '2025-06-06T15:59:59Z', // Friday 17:59:59 in Berlin
  );
  const { clock, shaper: s } = setupped;
  await connection(s, '127.1.0.5');
  const acme = s.customers.get('acme')!;
  assert.equal(acme.nodes.down.bucket!.rate, MiB);
  clock.advance(999);
  assert.equal(acme.nodes.down.bucket!.rate, MiB);
  clock.advance(1);
  assert.equal(acme.nodes.down.bucket!.rate, 10 * MiB, 'from 18:00');
  assert.equal(s.plans.schedules.active.get('business'), 0);
  clock.advance(5 * 3_600_000 - 1);
  assert.equal(acme.nodes.down.bucket!.rate, 10 * MiB);
  clock.advance(1);
  assert.equal(acme.nodes.down.bucket!.rate, MiB, 'from 23:00');
  // Saturday 18:00: no window (mon-fri).
  clock.advance(19 * 3_600_000);
  assert.equal(acme.nodes.down.bucket!.rate, MiB);
  await stop(setupped);
});

test('usage survives a restart through the store, and leaves memory a minute after its last connection', async () => {
  await withTempDir(async (dir) => {
    const stateFile = join(dir, 'p.state.json');
    const config = { accounting: { period: 'month' }, tiers: { t: { connection: { down: '1MiB/s' } } }, defaultTier: 't' };
    const first = setup(config, '2025-06-06T12:00:00Z', stateFile);
    const a = await connection(first.shaper, '127.1.0.6');
    a.down.feed(Buffer.alloc(300_000));
    first.clock.advance(1000);
    await stop(first);

    const second = setup(config, '2025-06-06T13:00:00Z', stateFile);
    const s = second.shaper;
    const b = await connection(s, '127.1.0.6');
    assert.equal((await s.plans.usage('127.1.0.6'))!.down, 300_000, 'read back at the customer\'s next connection');
    b.down.feed(Buffer.alloc(1000));
    second.clock.advance(100);
    s.release(b.sc);
    assert.equal((await s.plans.usage('127.1.0.6'))!.down, 301_000);
    // Flushed every 5 s; evicted once no connection for a minute.
    for (let t = 0; t < 70_000; t += 5000) {
      second.clock.advance(5000);
      await s.plans.settled();
    }
    assert.equal(s.plans.book!.records.has('127.1.0.6'), false, 'out of memory');
    assert.equal((await s.plans.usage('127.1.0.6'))!.down, 301_000, 'from the store');
    const page = await s.plans.usagePage(undefined, 10)!;
    assert.deepEqual(page.customers.map((c) => [c.customer, c.down]), [['127.1.0.6', 301_000]]);
    assert.equal(page.next, null);
    await stop(second);
  });
});

test('a config change looks at the quotas again: a quota raised past the usage lets the customer go back, live', async () => {
  const setupped = setup(FREE, '2025-06-06T12:00:00Z');
  const { clock, shaper: s } = setupped;
  const { down } = await connection(s, '127.1.0.7');
  const cust = s.customers.get('127.1.0.7')!;
  down.feed(Buffer.alloc(8 * MiB));
  advanceUntil(clock, () => cust.tier === 'slow', 5000);
  const config = s.plans.config!;
  const free = config.tiers['free']!;
  s.apply({ ...config, tiers: { ...config.tiers, free: { ...free, quota: { ...free.quota!, bytes: 100 * MiB } } } });
  assert.equal(cust.tier, 'free', 'under the new quota: back in its own tier');
  assert.equal((await s.plans.usage('127.1.0.7'))!.exceeded, false);
  // And a period given anew (hour instead of day) closes the one in force at once.
  s.apply({ ...s.plans.config!, accounting: { period: 'hour', timezone: 'UTC', log: null } });
  await s.plans.settled();
  assert.equal(s.plans.book!.period.start, Date.parse('2025-06-06T12:00:00Z'));
  assert.equal((await s.plans.usage('127.1.0.7'))!.last!.start, '2025-06-06T00:00:00+00:00');
  await stop(setupped);
});

test('the plans chore rests while it has nothing to do (no accounting, no schedule), and wakes for a schedule a reload brings', async () => {
  const clock = new ManualClock(0);
  let timers = 0;
  const setTimer = clock.setTimer.bind(clock);
  clock.setTimer = (ms: number, fn: () => void) => {
    timers++;
    return setTimer(ms, fn);
  };
  const apps = [{ name: 'web', ports: [1], targets: ['127.0.0.1:2'] }];
  const start = Date.parse('2025-06-02T10:00:00Z');
  const shaper = new Shaper(parseConfig({ apps, tiers: { gold: { connection: { down: '1mbit' } } }, defaultTier: 'gold' }, {}), clock, undefined, { wall: () => start + clock.now() });
  const housekeeping = new Housekeeping(clock);
  shaper.plans.start(housekeeping);
  clock.advance(60_000);
  // It used to run every millisecond once its first flush period (5 s) had passed: 55,000 timers.
  assert.ok(timers <= 2, `${timers} timers in a minute`);
  assert.equal(housekeeping.size, 0, 'the chore is at rest');

  // A reload brings a schedule window (12:00-13:00 UTC): the chore wakes at its start, to the millisecond.
  const windowed = { gold: { connection: { down: '1mbit' }, schedule: [{ days: 'mon-sun', from: '12:00', to: '13:00', connection: { down: '2mbit' } }] } };
  shaper.apply(parseConfig({ apps, tiers: windowed, defaultTier: 'gold' }, {}));
  const before = timers;
  const due = Date.parse('2025-06-02T12:00:00Z') - (start + clock.now());
  clock.advance(due - 1);
  assert.equal(shaper.plans.schedules.active.get('gold') ?? -1, -1, 'not yet');
  clock.advance(1);
  assert.equal(shaper.plans.schedules.active.get('gold'), 0, 'the window is on at its start');
  assert.ok(timers - before <= 3, `${timers - before} timers for the two-hour wait`);
  housekeeping.stop();
  await shaper.plans.stop();
  shaper.stop();
});
