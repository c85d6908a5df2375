/**
 * The library from outside: `npm pack` this package, install the tarball offline into a copy of
 * test/fixtures/library-project (a project that depends on shaper-proxy by name), compile its
 * check.ts with tsc against the installed package's types, list what importing the package
 * loads, and run the check (3 MiB through one 1 MiB/s ShapingStream; four 1 MiB streams under one
 * 2 MiB/s SharedCap; real clock). Used by test/package (correctness) and `bench library` (times).
 * Needs dist/ built and the dependencies in npm's cache (as after `npm ci`).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT } from './children.js';

const run = promisify(execFile);

export interface Transfer {
  unchanged: boolean;
  bytes: number;
  /** ms from the start of the transfer (the four shared ones: from their common start) to its end */
  ms: number;
}

export interface LibraryCheck {
  single: Transfer;
  shared: Transfer[];
  /** a bad rate threw SHAPER_ERR_UNIT */
  unitError: boolean;
  /** modules importing the package loads, as paths under the project's node_modules */
  modules: string[];
  tarball: { file: string; files: number; bytes: number };
  /** ms each step took */
  steps: { pack: number; install: number; tsc: number; check: number };
}

async function step<T>(steps: Record<string, number>, name: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await fn();
  } finally {
    steps[name] = performance.now() - t;
  }
}

/** Output of a failed command, for the error. */
function failure(what: string, err: unknown): Error {
  const e = err as { stdout?: string; stderr?: string; message: string };
  return new Error(`${what} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`.trim());
}

export async function libraryProject(): Promise<LibraryCheck> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'shaper-library-'));
  const steps = { pack: 0, install: 0, tsc: 0, check: 0 };
  try {
    const packed = await step(steps, 'pack', async () => {
      const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT, maxBuffer: 16 << 20 }).catch((err) => {
        throw failure('npm pack', err);
      });
      const [info] = JSON.parse(stdout) as { filename: string; entryCount: number; size: number }[];
      return { file: info!.filename, files: info!.entryCount, bytes: info!.size };
    });
    const project = path.join(tmp, 'project');
    await fs.cp(path.join(ROOT, 'test/fixtures/library-project'), project, { recursive: true });
    await step(steps, 'install', () =>
      run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', path.join(tmp, packed.file)], { cwd: project }).catch((err) => {
        throw failure('npm install --offline (are the dependencies in the npm cache? run npm ci)', err);
      }),
    );
    await step(steps, 'tsc', () =>
      run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project, '--typeRoots', path.join(ROOT, 'node_modules/@types')], { cwd: project }).catch((err) => {
        throw failure('tsc in the library project', err);
      }),
    );
    const traced = await run(process.execPath, ['--import', './trace.mjs', '--input-type=module', '-e', "await import('shaper-proxy')"], { cwd: project });
    const base = path.join(project, 'node_modules') + path.sep;
    const modules = traced.stderr
      .split('\n')
      .filter((l) => l.startsWith('load '))
      .map((l) => {
        const p = decodeURIComponent(new URL(l.slice(5)).pathname);
        return p.startsWith(base) ? p.slice(base.length) : p;
      });
    const out = await step(steps, 'check', () =>
      run(process.execPath, ['out/check.js'], { cwd: project }).catch((err) => {
        throw failure('the library check', err);
      }),
    );
    const result = JSON.parse(out.stdout.trim().split('\n').pop()!) as Pick<LibraryCheck, 'single' | 'shared' | 'unitError'>;
    return { ...result, modules: [...new Set(modules)], tarball: packed, steps };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
