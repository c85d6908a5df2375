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

test('the README names the histogram build src/observe/histogram.ts loads (the JS one, not WebAssembly)', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const paragraph = readme.slice(readme.indexOf('**Latency histograms**'), readme.indexOf('\n\n', readme.indexOf('**Latency histograms**')));
  const code = fs.readFileSync(path.join(ROOT, 'src/observe/histogram.ts'), 'utf8');
  assert.ok(code.includes("('hdr-histogram-js/dist/Int32Histogram.js')"), 'histogram.ts loads the JS Int32Histogram');
  assert.match(paragraph, /JS\s+build with 32-bit counts \(`Int32Histogram`/);
  assert.doesNotMatch(paragraph, /^\*\*Latency histograms\*\* use [^.]*, the\s+WebAssembly build/);
});
