/**
 * `promtool check metrics` (Debian's prometheus package; .ci/run installs it) on a real scrape after
 * traffic: nothing beyond its complaint about prom-client's own standard nodejs_active_*_total
 * gauges (names prom-client fixes, which dashboards expect).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { app, config, roundTrip, startBackend, startProxy, tier, pattern, which } from '../helpers.js';

const PROMTOOL = which('promtool');

test('promtool check metrics finds nothing wrong with /metrics (beyond prom-client\'s nodejs_active_* gauges)', { skip: PROMTOOL ? false : 'promtool not installed (.ci/run installs the prometheus package)' }, async (t) => {
  const backend = await startBackend('echo');
  const proxy = await startProxy(
    config([app('web', [backend.address], { protocol: 'foo' })], {
      admin: { host: '127.0.0.1', port: 0 },
      tiers: { free: tier('free', { connection: { down: 50_000_000, up: 50_000_000 }, total: { down: 100_000_000, up: 100_000_000 } }) },
      defaultTier: 'free',
    }),
    [backend],
  );
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  for (let i = 0; i < 3; i++) await roundTrip(proxy.portOf('web'), pattern(5000, i));
  await roundTrip(proxy.portOf('web'), Buffer.from('REQ 1 hello\n'));
  const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  const lint = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const problems = `${lint.stdout}${lint.stderr}`
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^nodejs_active_\w+_total counter metrics should have "_total" suffix|^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix/.test(l.trim()));
  assert.deepEqual(problems, [], `promtool:\n${lint.stdout}${lint.stderr}`);
});
