/**
 * The acceptance check as a test: a separate project that depends on shaper-proxy by name
 * (the packed tarball, installed offline) compiles against its types and moves its bytes through
 * ShapingStream and SharedCap unchanged. The times are the bench's (`npm run bench -- library`),
 * never asserted here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { libraryProject } from '../../bench/lib/library-project.js';

test('from a project that depends on the package by name: types compile, bytes arrive unchanged, the import is light', async () => {
  const r = await libraryProject();
  assert.equal(r.single.bytes, 3 * 1024 * 1024);
  assert.ok(r.single.unchanged, '3 MiB through one 1 MiB/s stream');
  assert.equal(r.shared.length, 4);
  for (const s of r.shared) assert.ok(s.unchanged && s.bytes === 1024 * 1024, 'each of four streams under one SharedCap');
  assert.ok(r.unitError, 'a bad rate is a SHAPER_ERR_UNIT ProxyError');
  // The library entry does not pull in the proxy (logger, config files, Redis, metrics, sockets).
  assert.ok(r.modules.some((m) => m.startsWith('shaper-proxy/dist/src/lib.js')), r.modules.join('\n'));
  const heavy = r.modules.filter((m) => /^(pino|ioredis|convict|prom-client|yaml|smol-toml|bottleneck)\/|^shaper-proxy\/dist\/src\/(server\/|admin\/|observe\/|cluster\/|index\.js)/.test(m));
  assert.deepEqual(heavy, []);
});
