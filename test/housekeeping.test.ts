import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/clock.js';
import { Housekeeping } from '../src/housekeeping.js';

test('chores run at their own periods on one timer of the clock', () => {
  const clock = new ManualClock();
  const hk = new Housekeeping(clock);
  const runs: string[] = [];
  hk.add('fast', 100, (now) => runs.push(`fast@${now}`));
  hk.add('slow', 250, (now) => runs.push(`slow@${now}`));
  assert.equal(clock.pendingTimers, 1);
  clock.advance(500);
  assert.deepEqual(runs, ['fast@100', 'fast@200', 'slow@250', 'fast@300', 'fast@400', 'fast@500', 'slow@500']);
  assert.equal(clock.pendingTimers, 1);
  hk.stop();
  assert.equal(clock.pendingTimers, 0);
});

test('a chore can change its period, stop and start again, or be cancelled', () => {
  const clock = new ManualClock();
  const hk = new Housekeeping(clock);
  let n = 0;
  const chore = hk.add('sweep', 0, () => n++);
  clock.advance(1000);
  assert.equal(n, 0, 'a period of 0 does not run');
  chore.every(10);
  clock.advance(100);
  assert.equal(n, 10);
  chore.every(50);
  clock.advance(100);
  assert.equal(n, 12);
  chore.every(0);
  clock.advance(100);
  assert.equal(n, 12);
  assert.equal(hk.size, 0);
  chore.every(10);
  chore.cancel();
  clock.advance(100);
  assert.equal(n, 12);
  assert.equal(clock.pendingTimers, 0);
});

test('a chore that throws is reported and the others keep running', () => {
  const clock = new ManualClock();
  const errors: string[] = [];
  const hk = new Housekeeping(clock, (name, err) => errors.push(`${name}: ${(err as Error).message}`));
  let ok = 0;
  hk.add('bad', 10, () => {
    throw new Error('boom');
  });
  hk.add('good', 10, () => ok++);
  clock.advance(30);
  assert.equal(ok, 3);
  assert.deepEqual(errors, ['bad: boom', 'bad: boom', 'bad: boom']);
});
