#!/usr/bin/env node
/**
 * `npm run test:asan`: builds the addon with AddressSanitizer (into build-asan/, the normal build
 * stays as it is) and runs the native tests (integrity first) on it, with the ASan runtime
 * preloaded into node. Any heap overflow, use-after-free or double free aborts the test process
 * with ASan's report, and this script exits non-zero.
 *
 * Leaks: LeakSanitizer does not run at node's exit when the runtime is preloaded, so leaks are
 * checked by the tests themselves (the engine counts its live allocations and descriptors, and
 * test/native/accounting.test.ts wants both back at zero).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const built = spawnSync(process.execPath, [path.join(ROOT, 'src/native/build.mjs'), '--asan', path.join(ROOT, 'build-asan')], { encoding: 'utf8' });
if (built.status !== 0) {
  process.stderr.write(built.stderr || built.stdout);
  process.exit(1);
}
const addon = built.stdout.trim().split('\n').pop();
let runtime;
try {
  runtime = execFileSync(process.env.CC || 'gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
} catch (err) {
  process.stderr.write(`test:asan: cannot find libasan.so (${err.message})\n`);
  process.exit(1);
}
if (!path.isAbsolute(runtime)) {
  process.stderr.write(`test:asan: the compiler has no libasan.so (Debian: libasan8 comes with gcc)\n`);
  process.exit(1);
}
const tests = ['integrity', 'halfclose', 'reset', 'shaped', 'accounting', 'handover'].map((t) => path.join(ROOT, `dist/test/native/${t}.test.js`));
process.stdout.write(`test:asan: ${addon}\n  with LD_PRELOAD=${runtime}\n`);
const env = {
  ...process.env,
  LD_PRELOAD: runtime,
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1',
  SHAPER_NATIVE_ADDON: addon,
};
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', ...tests], { stdio: 'inherit', env });
if (run.status !== 0) process.exit(run.status ?? 1);
// Then the proxy's own integrity test (test/e2e/faults.test.ts) through the native data plane, on the
// sanitized build: 200 connections of random sizes, shaped and unshaped, every sha256 checked.
process.stdout.write('test:asan: the proxy\'s integrity test on the native data plane\n');
const e2e = spawnSync(
  process.execPath,
  ['--test', '--test-timeout=600000', '--test-name-pattern=integrity', path.join(ROOT, 'dist/test/e2e/faults.test.js')],
  { stdio: 'inherit', env: { ...env, SHAPER_FAULTS_QUICK: '1', SHAPER_FAULTS_PLANES: 'native' } },
);
process.exit(e2e.status ?? 1);
