import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  effectiveShaping,
  emptyRuntime,
  loadRuntime,
  pruneRuntime,
  saveRuntime,
  type RuntimeState,
} from '../../src/config/runtime-state.js';
import { ConfigStore } from '../../src/config/store.js';
import type { TierConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { app, config, tempDir } from '../helpers.js';

const U = Infinity;
function tier(name: string, down = U): TierConfig {
  return { name, rtt: 50, weight: 1, connection: { down, up: U }, customer: { down: U, up: U }, total: { down: U, up: U } };
}

const base = config([app('web', ['127.0.0.1:9'])], {
  tiers: { free: tier('free', 125_000), silver: tier('silver', 250_000) },
  customers: [
    { id: 'acme', tier: 'free', match: { sources: ['10.1.0.0/16'] } },
    { id: 'zed', tier: 'silver', match: { apps: ['web'] } },
  ],
  defaultTier: 'free',
});

function state(s: Partial<RuntimeState>): RuntimeState {
  return { ...emptyRuntime(), ...s };
}

test('overlay: runtime tiers replace and add, runtime customers replace, add and delete', () => {
  const { config: eff, dropped, runtimeTiers, runtimeCustomers } = effectiveShaping(
    base,
    state({
      tiers: { free: { connection: { down: '2mbit' } }, gold: { connection: { down: '100mbit' } } },
      customers: {
        acme: { tier: 'gold', match: { sources: ['10.1.0.0/16'] } },
        bob: { tier: 'free', match: { sources: ['10.2.0.0/16'] } },
        zed: null,
      },
    }),
  );
  assert.deepEqual(dropped, []);
  assert.equal(eff.tiers['free']!.connection.down, 250_000);
  assert.equal(eff.tiers['gold']!.connection.down, 12_500_000);
  assert.equal(eff.tiers['silver']!.connection.down, 250_000);
  assert.deepEqual(eff.customers.map((c) => `${c.id}:${c.tier}`), ['acme:gold', 'bob:free']);
  assert.deepEqual([...runtimeTiers].sort(), ['free', 'gold']);
  assert.deepEqual([...runtimeCustomers].sort(), ['acme', 'bob']);
  // The base is untouched.
  assert.equal(base.tiers['free']!.connection.down, 125_000);
  assert.equal(base.customers.length, 2);
  assert.equal(eff.apps, base.apps);
});

test('overlay: entries that no longer fit are dropped and reported, the rest applies', () => {
  const { config: eff, dropped } = effectiveShaping(
    base,
    state({
      tiers: { broken: { connection: { down: 'fast' } } },
      customers: {
        acme: { tier: 'platinum', match: {} },
        bob: { tier: 'free', match: { apps: ['gone'] } },
        carol: { tier: 'silver', match: { ports: [5001] } },
      },
    }),
  );
  assert.equal(dropped.length, 3);
  assert.match(dropped[0]!, /^tiers\.broken\.connection\.down: "fast" is not a rate/);
  assert.match(dropped[1]!, /^customers\.acme\.tier: "platinum" is not a tier/);
  assert.match(dropped[2]!, /^customers\.bob\.match\.apps\[0\]: no app named "gone"/);
  assert.ok(!('broken' in eff.tiers));
  // acme keeps its config entry; carol is added.
  assert.deepEqual(eff.customers.map((c) => `${c.id}:${c.tier}`), ['acme:free', 'zed:silver', 'carol:silver']);
});

test('prune: a tier the config removed takes its override and its runtime customers along', () => {
  const before = state({
    tiers: { silver: { connection: { down: '5mbit' } }, platinum: { connection: { down: '1gbit' } }, free: {} },
    customers: {
      bob: { tier: 'silver', match: { sources: ['10.2.0.0/16'] } },
      carol: { tier: 'platinum', match: { sources: ['10.3.0.0/16'] } },
      dave: { tier: 'free', match: {} },
      zed: null,
      ghost: null,
    },
  });
  const next = config(base.apps, { tiers: { free: tier('free') }, customers: [{ id: 'zed', tier: 'free', match: {} }], defaultTier: 'free' });
  const { state: pruned, pruned: what } = pruneRuntime(before, ['free', 'silver'], next);
  assert.deepEqual(Object.keys(pruned.tiers).sort(), ['free', 'platinum']);
  assert.deepEqual(Object.keys(pruned.customers).sort(), ['carol', 'dave', 'zed']);
  assert.deepEqual(what.sort(), ['customers.bob', 'customers.ghost (deletion)', 'tiers.silver']);
  assert.deepEqual(pruned.configTiers, ['free']);
  // The input is not modified.
  assert.ok('silver' in before.tiers);
  // Nothing removed from the config: nothing pruned.
  assert.deepEqual(pruneRuntime(pruned, ['free'], next).pruned, []);
});


test('save is atomic (temp file renamed over) and load reads back what was saved', async (t) => {
  const dir = await tempDir(t, 'shaper-runtime-');
  const file = join(dir, 'sub', 'state.json');
  const s1 = state({ tiers: { gold: { connection: { down: '1gbit' } } }, customers: { acme: { tier: 'gold', match: {} }, zed: null } });
  await saveRuntime(file, s1);
  assert.deepEqual(await loadRuntime(file), { state: s1, warnings: [] });
  const s2 = state({ tiers: {}, customers: { bob: { tier: 'free', match: { ports: [1] } } }, configTiers: ['free'] });
  await saveRuntime(file, s2);
  assert.deepEqual((await loadRuntime(file)).state, s2);
  assert.deepEqual(await readdir(join(dir, 'sub')), ['state.json']); // no temp file left behind
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), s2);
});

test('a missing state file is an empty state; a corrupt one too, with a warning, and is kept aside', async (t) => {
  const dir = await tempDir(t, 'shaper-runtime-');
  const file = join(dir, 'state.json');
  assert.deepEqual(await loadRuntime(file), { state: emptyRuntime(), warnings: [] });

  await writeFile(file, '{"version": 1, "tiers": {');
  const corrupt = await loadRuntime(file);
  assert.deepEqual(corrupt.state, emptyRuntime());
  assert.equal(corrupt.warnings.length, 1);
  assert.match(corrupt.warnings[0]!, /is not valid JSON .*starting without runtime changes.*moved to .*state\.json\.corrupt/);
  assert.equal(await readFile(`${file}.corrupt`, 'utf8'), '{"version": 1, "tiers": {');

  await writeFile(file, '{"version": 7}');
  const future = await loadRuntime(file);
  assert.deepEqual(future.state, emptyRuntime());
  assert.match(future.warnings[0]!, /version 7 is not 1/);

  await writeFile(file, '{"version": 1, "tiers": {"gold": {}, "__proto__": {}}, "customers": {"acme": 5, "bob": null}}');
  const partly = await loadRuntime(file);
  assert.deepEqual(partly.state, state({ tiers: { gold: {} }, customers: { bob: null } }));
  assert.equal(partly.warnings.length, 2);
});

test('ConfigStore: a restart with a config that removed a tier prunes the state file', async (t) => {
  const dir = await tempDir(t, 'shaper-runtime-');
  const file = join(dir, 'state.json');
  await saveRuntime(file, state({
    tiers: { silver: { connection: { down: '5mbit' } }, platinum: {} },
    customers: { bob: { tier: 'silver', match: {} }, carol: { tier: 'platinum', match: {} } },
    configTiers: ['free', 'silver'],
  }));
  const next = { ...base, tiers: { free: tier('free') }, customers: [], stateFile: file };
  const rt = new ConfigStore(next, silentLogger());
  const changes: string[] = [];
  rt.onChange((c) => changes.push(c.kind));
  await rt.start();
  assert.deepEqual(changes, ['start']);
  const eff = rt.config;
  assert.deepEqual(Object.keys(eff.tiers).sort(), ['free', 'platinum']);
  assert.deepEqual(eff.customers.map((c) => c.id), ['carol']);
  await rt.flush();
  const saved = (await loadRuntime(file)).state;
  assert.deepEqual(Object.keys(saved.tiers), ['platinum']);
  assert.deepEqual(Object.keys(saved.customers), ['carol']);
  assert.deepEqual(saved.configTiers, ['free']);
});
