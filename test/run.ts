/**
 * `npm test`: node's test runner over the compiled test files, listed here because no form in
 * package.json works on every Node we support: `node --test dist/test/` takes the directory as a
 * module on Node 22 and 24, and Node 20's --test has no globs (they came in 21).
 * The list comes from test/**\/*.test.ts, so a stale dist/test file of a deleted test never runs.
 * Arguments go to `node --test` before the files, e.g. `npm test -- --test-name-pattern=delay`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test, where this file runs from */
const DIST_TEST = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(DIST_TEST, '../..');

/** dist/test/**\/x.test.js for every test/**\/x.test.ts, sorted. */
export function testFiles(dir = path.join(ROOT, 'test'), out = path.join(ROOT, 'dist/test')): string[] {
  const files: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) files.push(...testFiles(path.join(dir, e.name), path.join(out, e.name)));
    else if (e.name.endsWith('.test.ts')) files.push(path.join(out, e.name.replace(/\.ts$/, '.js')));
  }
  return files.sort();
}

/**
 * --test-timeout bounds each test on Node 24, but each whole file (one child process) on Node 20
 * and 22, where the faults file (2 GiB through the proxy, 50 reloads) needs several minutes on a
 * loaded machine: 3 min a test there, 10 min a file here.
 */
export function timeoutFlag(nodeMajor: number): string {
  return `--test-timeout=${nodeMajor >= 24 ? 180_000 : 600_000}`;
}

// Imported (by its own test) it only lends testFiles and timeoutFlag; run, it runs the suite.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = testFiles().map((f) => path.relative(process.cwd(), f));
  const missing = files.filter((f) => !fs.existsSync(f));
  if (files.length === 0 || missing.length > 0) {
    process.stderr.write(`test: ${files.length === 0 ? 'no test/**/*.test.ts' : `not compiled: ${missing.join(', ')}`}; run tsc -p . first\n`);
    process.exit(1);
  }
  const major = Number(process.versions.node.split('.')[0]);
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', timeoutFlag(major), ...process.argv.slice(2), ...files], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}
