/**
 * The README's config examples are real configs: the reference example and the "Running a fleet"
 * block pass the loader as written (comments removed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { ROOT } from './helpers.js';

const blocks = (): string[] => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```jsonc\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\s+\/\/ .*$/gm, ''));
};

test('the README\'s config reference example loads as written', () => {
  const config = parseConfig(JSON.parse(blocks()[0]!), {});
  assert.equal(config.apps[0]!.name, 'web');
  assert.deepEqual(Object.keys(config.tiers), ['free', 'gold']);
  assert.equal(config.cluster, undefined);
});

test('the README\'s fleet block loads as written', () => {
  const fleet = blocks().find((b) => b.trimStart().startsWith('"cluster"'));
  assert.ok(fleet, 'no jsonc block starting with "cluster" in the README');
  const config = parseConfig(JSON.parse(`{"apps": [{"name": "a", "ports": [1], "targets": ["h:1"]}], ${fleet}}`), {});
  assert.equal(config.cluster!.instance, 'edge-1');
  assert.equal(config.cluster!.rebalanceInterval, 200);
});
