import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, ProxyError, isProxyError } from '../src/errors.js';
import { ROOT } from './helpers.js';

test('every error code is documented in the README', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  for (const code of Object.keys(ErrorCodes)) assert.ok(readme.includes(`\`${code}\``), `${code} is not in README.md`);
});

test('ProxyError carries its code and is recognised', () => {
  const err = new ProxyError('SHAPER_ERR_NO_TARGET', 'nothing');
  assert.equal(err.code, 'SHAPER_ERR_NO_TARGET');
  assert.ok(isProxyError(err, 'SHAPER_ERR_NO_TARGET'));
  assert.ok(!isProxyError(err, 'SHAPER_ERR_CONFIG'));
  assert.ok(!isProxyError(new Error('x')));
});
