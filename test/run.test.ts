import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './helpers.js';
import { testFiles, timeoutFlag } from './run.js';

test('the test runner lists the compiled file of every test/**/*.test.ts, nested folders included', () => {
  const files = testFiles();
  assert.ok(files.length > 50, `${files.length} test files`);
  assert.ok(files.includes(fileURLToPath(import.meta.url)), 'this very file');
  assert.ok(files.includes(path.join(ROOT, 'dist/test/bench/load.test.js')), 'a file one folder down');
  for (const f of files) assert.ok(fs.existsSync(f), `${f} compiled`);
  assert.ok(!files.some((f) => f.endsWith('helpers.js') || f.endsWith('run.js')), 'helpers are not test files');
  assert.match(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.test, /node dist\/test\/run\.js$/);
});

test('the runner bounds a test by 3 min on Node 24, a whole file by 10 min before (where --test-timeout is per file)', () => {
  assert.equal(timeoutFlag(20), '--test-timeout=600000');
  assert.equal(timeoutFlag(22), '--test-timeout=600000');
  assert.equal(timeoutFlag(24), '--test-timeout=180000');
});
