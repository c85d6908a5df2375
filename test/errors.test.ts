import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ERRORS, ProxyError, isProxyError } from '../src/errors.js';
import { ROOT } from './helpers.js';

test('every error code is documented in the README', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  for (const code of Object.keys(ERRORS)) assert.ok(readme.includes(`\`${code}\``), `${code} is not in README.md`);
});

test('every code of the catalogue is raised somewhere in src/, and none is raised that it lacks', () => {
  const files = fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  // The catalogue itself does not count as raising its codes (ConfigError, below it, does).
  const withoutCatalogue = (text: string) => text.replace(/export const ERRORS = \{[\s\S]*?\} as const/, '');
  const source = files.map((f) => withoutCatalogue(fs.readFileSync(path.join(ROOT, 'src', f), 'utf8'))).join('\n');
  for (const code of Object.keys(ERRORS)) assert.ok(source.includes(`'${code}'`), `${code} is never raised`);
  for (const [used] of source.matchAll(/SHAPER_ERR_[A-Z_]+/g)) assert.ok(Object.hasOwn(ERRORS, used), `${used} is not in the catalogue`);
});

test('each error answers the admin API with its catalogue status', () => {
  assert.equal(new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', 'x').status, 404);
  assert.equal(new ProxyError('SHAPER_ERR_CONFIG', 'x').status, 400);
  assert.equal(new ProxyError('SHAPER_ERR_ADMIN_BODY_TOO_LARGE', 'x').status, 413);
});

test('ProxyError carries its code and is recognised', () => {
  const err = new ProxyError('SHAPER_ERR_NO_TARGET', 'nothing');
  assert.equal(err.code, 'SHAPER_ERR_NO_TARGET');
  assert.ok(isProxyError(err, 'SHAPER_ERR_NO_TARGET'));
  assert.ok(!isProxyError(err, 'SHAPER_ERR_CONFIG'));
  assert.ok(!isProxyError(new Error('x')));
});
