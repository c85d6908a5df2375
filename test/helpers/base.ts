/** What the other helpers stand on: the repo's paths, the per-test cleanups, temp dirs, waiting. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The repo root, from dist/test/helpers/base.js. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'dist/src/cli.js');

/** Each running test's cleanups, run by its one after-hook. */
const stacks = new WeakMap<TestContext, (() => unknown)[]>();

/**
 * Runs `fn` after the test, the last registered first (as Go's t.Cleanup): a proxy stops before the
 * backends it dials close, a child is killed before its directory goes. Every cleanup runs even if
 * one throws (a hook that gave up half way would leave a server open, and the test file would never
 * exit); the first error then fails the test.
 */
export function cleanup(t: TestContext, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (!stack) {
    const fns: (() => unknown)[] = [];
    stacks.set(t, fns);
    t.after(async () => {
      const errors: unknown[] = [];
      for (let f = fns.pop(); f; f = fns.pop()) {
        try {
          await f();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw errors[0];
    });
    stack = fns;
  }
  stack.push(fn);
}

/** Poll `fn` until it returns truthy, up to `ms` (for state that changes asynchronously). */
export async function waitFor<T>(fn: () => T | Promise<T>, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const tempDirs = new Set<string>();
let tempDirsHooked = false;

/**
 * A temp dir removed after the test, after what the test started later (cleanups run last first).
 * The removal retries and never throws: a child the test runs by itself (runCli, not cliFor) may
 * still write into the dir. Whatever is left goes when the test process exits.
 */
export async function tempDir(t: TestContext, prefix = 'shaper-'): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  if (!tempDirsHooked) {
    tempDirsHooked = true;
    process.once('exit', () => {
      for (const d of tempDirs) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort at exit
        }
      }
    });
  }
  cleanup(t, async () => {
    try {
      await fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      tempDirs.delete(dir);
    } catch {
      // a child still writing: removed at exit
    }
  });
  return dir;
}

/** Runs `fn` with a fresh temp dir, removed when it is done (a dir for one step rather than the whole test). */
export async function withTempDir(fn: (dir: string) => Promise<void>, prefix = 'shaper-'): Promise<void> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    await fn(dir);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

/** The full path of `cmd` on PATH, or undefined (tests of features that need a Debian tool skip without it). */
export { which } from '../../bench/lib/which.js';
