/**
 * The architecture, checked (issue 13, /README "Architecture"): dependencies point one way through
 * the layers, with no import cycles (type imports included), nothing but cli.ts imports index.ts,
 * and no source file is over 400 lines. dependency-cruiser reads the TypeScript sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cruise, type ICruiseResult, type IForbiddenRuleType } from 'dependency-cruiser';
import { ROOT } from './helpers.js';

/** The layers, lowest first: a module may import its own layer or lower ones. */
const LAYERS: { name: string; paths: string }[] = [
  { name: 'base', paths: '^src/(errors|clock|log|log-pretty|housekeeping|atomic-file|channels|version)\\.ts$|^src/net/' },
  { name: 'config', paths: '^src/config/' },
  { name: 'identify', paths: '^src/identify/' },
  { name: 'upstream', paths: '^src/upstream/' },
  { name: 'shaping', paths: '^src/shaping/' },
  { name: 'native', paths: '^src/native/' },
  { name: 'server', paths: '^src/server/' },
  { name: 'observe', paths: '^src/observe/' },
  { name: 'admin', paths: '^src/admin/' },
  { name: 'cluster', paths: '^src/cluster/' },
  { name: 'wiring', paths: '^src/(index|demo|reloader|upgrade)\\.ts$' },
  { name: 'commands', paths: '^src/(cli|ctl)\\.ts$|^src/ctl/' },
];

/** Layers that sit side by side: neither may import the other. */
const SIDE_BY_SIDE: [string, string][] = [
  ['upstream', 'shaping'],
  ['admin', 'cluster'],
];

function rules(): IForbiddenRuleType[] {
  const out: IForbiddenRuleType[] = [
    { name: 'no-circular', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
    { name: 'index-only-from-cli', severity: 'error', from: { path: '^src/', pathNot: '^src/cli\\.ts$' }, to: { path: '^src/index\\.ts$' } },
    // The library entry pulls in the shaping engine and what it stands on, never the proxy.
    { name: 'library-stays-small', severity: 'error', from: { path: '^src/lib\\.ts$' }, to: { path: '^src/(server|observe|admin|cluster|upstream|identify|index|cli|ctl)' } },
  ];
  LAYERS.forEach((layer, i) => {
    const higher = LAYERS.slice(i + 1).map((l) => `(${l.paths})`).join('|');
    if (higher) out.push({ name: `${layer.name}-imports-no-higher-layer`, severity: 'error', from: { path: layer.paths }, to: { path: higher } });
  });
  for (const [a, b] of SIDE_BY_SIDE) {
    const pa = LAYERS.find((l) => l.name === a)!.paths;
    const pb = LAYERS.find((l) => l.name === b)!.paths;
    out.push({ name: `${a}-not-${b}`, severity: 'error', from: { path: pa }, to: { path: pb } });
    out.push({ name: `${b}-not-${a}`, severity: 'error', from: { path: pb }, to: { path: pa } });
  }
  return out;
}

test('src/: dependencies point one way through the layers, with no cycles; only cli.ts imports index.ts', async () => {
  const cwd = process.cwd();
  process.chdir(ROOT);
  let result: ICruiseResult;
  try {
    const reported = await cruise(['src'], {
      validate: true,
      ruleSet: { forbidden: rules() },
      tsPreCompilationDeps: true,
      tsConfig: { fileName: 'tsconfig.json' },
      exclude: { path: '^src/admin/dashboard/' },
    });
    result = reported.output as ICruiseResult;
  } finally {
    process.chdir(cwd);
  }
  const violations = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`);
  assert.deepEqual(violations, []);
  // Every file of src/ was seen (a misread tsconfig would cruise nothing and pass).
  assert.ok(result.modules.filter((m) => m.source.startsWith('src/')).length > 60, `${result.modules.length} modules cruised`);
});

test('no source file in src/ is over 400 lines', () => {
  const files = fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const long = files
    .map((f) => [f, fs.readFileSync(path.join(ROOT, 'src', f), 'utf8').split('\n').length - 1] as const)
    .filter(([, lines]) => lines > 400)
    .map(([f, lines]) => `src/${f}: ${lines} lines`);
  assert.deepEqual(long, []);
});

test('the layer rules catch an upward import (the check itself works)', async () => {
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    // shaping importing server is forbidden: cruise one real file against a rule set that says so.
    const reported = await cruise(['src/shaping/socket-flow.ts'], {
      validate: true,
      ruleSet: { forbidden: [{ name: 'shaping-not-net', severity: 'error', from: { path: '^src/shaping/' }, to: { path: '^src/net/' } }] },
      tsPreCompilationDeps: true,
      tsConfig: { fileName: 'tsconfig.json' },
    });
    const names = (reported.output as ICruiseResult).summary.violations.map((v) => v.rule.name);
    assert.ok(names.includes('shaping-not-net'), JSON.stringify(names));
  } finally {
    process.chdir(cwd);
  }
});
