/** Every example config users copy from config/ loads without a problem. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigFile } from '../../src/config/load.js';
import { ROOT } from '../helpers.js';

const dir = path.join(ROOT, 'config');
for (const name of fs.readdirSync(dir).filter((f) => /\.(jsonc?|ya?ml|toml)$/.test(f) && !/\.(schema|state|stats)\./.test(f))) {
  test(`config/${name} loads`, async () => {
    const config = await loadConfigFile(path.join(dir, name));
    assert.ok(config.apps.length > 0);
  });
}

test('config/fleet.yaml runs in fleet mode', async () => {
  const config = await loadConfigFile(path.join(dir, 'fleet.yaml'));
  assert.equal(config.cluster?.redis, 'redis://10.0.1.5:6379');
  assert.equal(config.tiers['gold']!.total.down, 125_000_000);
});
