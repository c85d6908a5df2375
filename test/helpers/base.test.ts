import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { cleanup, ROOT } from './base.js';

test('cleanup: runs after the test, the last registered first, each awaited', async (t) => {
  const order: string[] = [];
  await t.test('inner', (inner) => {
    cleanup(inner, () => order.push('first registered'));
    cleanup(inner, async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push('second registered');
    });
    order.push('body');
  });
  assert.deepEqual(order, ['body', 'second registered', 'first registered']);
});

test('cleanup: one that throws fails the test, and the others still run', () => {
  const fixture = path.join(ROOT, 'dist/test/fixtures/cleanup-throws.js');
  // Not as a subtest of this run: the child reports on its own (no NODE_TEST_CONTEXT).
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', fixture], { encoding: 'utf8', env, timeout: 30_000 });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /the later cleanup failed/);
  assert.match(r.stdout, /the earlier cleanup ran/);
});
