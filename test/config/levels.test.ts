/** Peak rates and guaranteed minimums in the config: the forms, the numbers, the problems by key path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig, parseTierBody } from '../../src/config/load.js';
import { minimumsOfTiers } from '../../src/config/levels.js';

const noEnv = {};
const apps = [{ name: 'web', ports: [5001], targets: ['127.0.0.1:9001'] }];
const MiB = 1024 * 1024;

const load = (extra: Record<string, unknown>) => parseConfig({ apps, ...extra }, noEnv);

function problems(extra: Record<string, unknown>): string[] {
  try {
    load(extra);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  assert.fail('the config loaded');
}

test('peak: one rate for the directions that have a rate, or one per direction; at every level', () => {
  const c = load({
    global: { down: '1gbit', up: '1gbit', peak: '2gbit' },
    tiers: {
      gold: {
        connection: { down: '1MiB/s', burst: '4MB', peak: '8MiB/s' },
        customer: { down: '2MiB/s', up: '1MiB/s', peak: { down: '16MiB/s', up: '4MiB/s' } },
        total: { up: '10MiB/s', peak: { up: '20MiB/s' } },
      },
    },
  });
  const gold = c.tiers['gold']!;
  assert.deepEqual(gold.connection, { down: MiB, up: Infinity, burstDown: 4e6, burstUp: 4e6, peakDown: 8 * MiB });
  assert.deepEqual(gold.customer, { down: 2 * MiB, up: MiB, peakDown: 16 * MiB, peakUp: 4 * MiB });
  assert.deepEqual(gold.total, { down: Infinity, up: 10 * MiB, peakUp: 20 * MiB });
  assert.deepEqual(c.global, { down: 125e6, up: 125e6, peakDown: 250e6, peakUp: 250e6 });
});

test('peak problems name their key paths: not above the rate, no rate to be above, unlimited', () => {
  assert.deepEqual(problems({ tiers: { gold: { connection: { down: '1MiB/s', peak: '512KiB/s' } } } }), [
    'tiers.gold.connection.peak: "512KiB/s" must be above the rate down "1MiB/s" (for down)',
  ]);
  assert.deepEqual(problems({ tiers: { gold: { customer: { down: '1MiB/s', peak: { down: '1MiB/s' } } } } }), [
    'tiers.gold.customer.peak.down: "1MiB/s" must be above the rate down "1MiB/s"',
  ]);
  assert.deepEqual(problems({ tiers: { gold: { total: { down: '1MiB/s', peak: { up: '8MiB/s' } } } } }), [
    'tiers.gold.total.peak.up: "8MiB/s" needs a rate to be above: set "up" too, or leave peak.up out',
  ]);
  assert.deepEqual(problems({ global: { peak: '8MiB/s' } }), [
    'global.peak: "8MiB/s" needs a rate to be above: set "down" or "up" (a peak limits how fast a full bucket drains)',
  ]);
  const [unlimited] = problems({ tiers: { gold: { connection: { down: '1mbit', peak: 'unlimited' } } } });
  assert.match(unlimited!, /^tiers\.gold\.connection\.peak: must be a rate like "8MiB\/s"/);
  const [bad] = problems({ tiers: { gold: { connection: { down: '1mbit', peak: { down: 'fast' } } } } });
  assert.match(bad!, /^tiers\.gold\.connection\.peak\.down: "fast" is not a rate/);
});

test('min: on a tier total, one rate for both directions or one per direction', () => {
  const c = load({
    global: { down: '1gbit', up: '1gbit' },
    tiers: {
      business: { total: { down: '1gbit', min: '200mbit' } },
      home: { total: { down: '500mbit', up: '100mbit', min: { down: '100mbit', up: '50mbit' } } },
    },
  });
  assert.deepEqual(c.tiers['business']!.total, { down: 125e6, up: Infinity, minDown: 25e6, minUp: 25e6 });
  assert.deepEqual(c.tiers['home']!.total, { down: 62.5e6, up: 12.5e6, minDown: 12.5e6, minUp: 6.25e6 });
});

test('min problems: above the total, the sum over global (naming every minimum), on a level that has none', () => {
  assert.deepEqual(problems({ tiers: { gold: { total: { down: '100mbit', min: { down: '200mbit' } } } } }), [
    'tiers.gold.total.min.down: "200mbit" is above the tier\'s total down "100mbit": a minimum is at most the total',
  ]);
  assert.deepEqual(
    problems({
      global: { down: '1gbit' },
      tiers: { a: { total: { min: '600mbit' } }, b: { total: { min: { down: '500mbit' } } }, c: { total: { down: '1gbit' } } },
    }),
    [
      "global.down: the tiers' guaranteed minimums add up to 1.1 Gbit/s (tiers.a.total.min 600 Mbit/s + tiers.b.total.min.down 500 Mbit/s), more than global.down 1 Gbit/s: lower them or raise global.down",
    ],
  );
  // Under an unlimited global the minimums fit whatever they add up to (they then never matter).
  assert.doesNotThrow(() => load({ tiers: { a: { total: { min: '600mbit' } }, b: { total: { min: '600mbit' } } } }));
  assert.deepEqual(problems({ tiers: { a: { customer: { down: '1mbit', min: '1mbit' } } } }), [
    'tiers.a.customer.min: unknown key (known keys: down, up, burst, peak)',
  ]);
});

test('the minimums check on typed tiers (a tier changed through the admin API)', () => {
  const gold = parseTierBody('gold', { total: { min: '600mbit' } });
  const silver = parseTierBody('silver', { total: { min: { up: '300mbit' } } });
  assert.deepEqual(minimumsOfTiers({ gold, silver }, { down: 125e6, up: 125e6 }), []);
  const more = parseTierBody('more', { total: { min: '500mbit' } });
  assert.deepEqual(minimumsOfTiers({ gold, silver, more }, { down: 125e6, up: 125e6 }), [
    "global.down: the tiers' guaranteed minimums add up to 1.1 Gbit/s (tiers.gold.total.min 600 Mbit/s + tiers.more.total.min 500 Mbit/s), more than global.down 1 Gbit/s: lower them or raise global.down",
    "global.up: the tiers' guaranteed minimums add up to 1.4 Gbit/s (tiers.gold.total.min 600 Mbit/s + tiers.silver.total.min 300 Mbit/s + tiers.more.total.min 500 Mbit/s), more than global.up 1 Gbit/s: lower them or raise global.up",
  ]);
});
