import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { Housekeeping } from '../../src/housekeeping.js';
import { RateSampler } from '../../src/observe/rates.js';

test('rate sampler: bytes per second each way between two samples', () => {
  const conn = { startedAt: 1000, bytesUp: 0, bytesDown: 0 };
  const sampler = new RateSampler([conn]);
  conn.bytesDown = 500;
  // Before any sample: the average since the start.
  assert.deepEqual(sampler.rates(conn, 1500), { up: 0, down: 1000 });
  sampler.sample(2000);
  assert.deepEqual(sampler.rates(conn, 2100), { up: 0, down: 500 });
  conn.bytesUp = 100;
  conn.bytesDown = 2500;
  sampler.sample(2500);
  assert.deepEqual(sampler.rates(conn), { up: 200, down: 4000 });
});

test('rate sampler: samples once a second on the housekeeping timer, until stopped', () => {
  const clock = new ManualClock();
  const hk = new Housekeeping(clock);
  let visits = 0;
  const sampler = new RateSampler({ forEach: () => void visits++ });
  sampler.start(hk);
  sampler.start(hk); // once is enough
  clock.advance(3000);
  assert.equal(visits, 3);
  sampler.stop();
  clock.advance(3000);
  assert.equal(visits, 3);
});
