import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as layout from '../../src/native/layout.js';
import { ROOT } from '../helpers.js';

test('layout.ts mirrors every shared-memory constant of engine.h', () => {
  const header = fs.readFileSync(path.join(ROOT, 'src/native/engine.h'), 'utf8');
  const defines = new Map([...header.matchAll(/^#define ([A-Z][A-Z0-9_]*) (\d+)\b/gm)].map((m) => [m[1]!, Number(m[2])]));
  const shared = [...defines.keys()].filter((k) => /^(SLOT|S_|F_|H_|E_)/.test(k));
  assert.ok(shared.length > 20, `found ${shared.length} constants`);
  for (const name of shared) assert.equal((layout as Record<string, number>)[name], defines.get(name), name);
  for (const name of Object.keys(layout)) assert.ok(defines.has(name), `${name} is in engine.h`);
});
