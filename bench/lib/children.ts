/**
 * Child processes for the bench: the proxy under test, the plain pipe and the backends each run
 * in their own process, so the measuring client does not share their event loop. Every child
 * spawned here is registered and killed when the runner exits, however it exits.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep } from './scenario.js';

/** The repo root, from dist/bench/lib/children.js. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DIST_BENCH_LIB = path.join(ROOT, 'dist/bench/lib');
/**
 * The proxy the bench runs: this checkout's build, or SHAPER_BENCH_PROXY (another build's
 * dist/src/cli.js), so a before/after comparison runs both through the same harness.
 */
export const CLI = process.env['SHAPER_BENCH_PROXY'] ? path.resolve(process.env['SHAPER_BENCH_PROXY']) : path.join(ROOT, 'dist/src/cli.js');
/**
 * Where results go: a checkout's bench/results; the installed package (no bench sources beside its
 * dist) writes to ./shaper-bench-results in the working directory, as its own folder may be read-only.
 */
export const RESULTS_DIR = fs.existsSync(path.join(ROOT, 'bench/run.ts')) ? path.join(ROOT, 'bench/results') : path.resolve('shaper-bench-results');
/** Node flags the shaper-proxy bin runs with (its shebang line), so the bench runs the proxy as users do. */
export const PROXY_NODE_FLAGS: string[] = (() => {
  const first = fs.readFileSync(CLI, 'utf8').split('\n', 1)[0] ?? '';
  const flags = first.replace(/^#!\S*env -S node\s*/, '').split(/\s+/).filter((f) => f.startsWith('--'));
  // SHAPER_PROXY_NODE_FLAGS: more flags for the proxy children only (memory and GC experiments).
  return [...flags, ...(process.env['SHAPER_PROXY_NODE_FLAGS'] ?? '').split(/\s+/).filter(Boolean)];
})();

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  stdout: string;
  stderr: string;
  /** The first line of stdout parsed as JSON (our bench children announce their ports so). */
  firstLine: Promise<unknown>;
  exited: Promise<number | null>;
  alive(): boolean;
  kill(): Promise<void>;
}

const running = new Set<Child>();

function killAllSync(): void {
  for (const c of running) if (c.alive()) c.proc.kill('SIGKILL');
}
process.on('exit', killAllSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllSync();
    process.exit(130);
  });
}

export interface SpawnOptions {
  /**
   * Run under `ulimit -n` this many descriptors, or 'hard' for the hard limit (through sh,
   * which then execs the command, so the pid stays the command's).
   */
  fdLimit?: number | 'hard';
  /** added to this process's environment */
  env?: NodeJS.ProcessEnv;
}

const shQuote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

export function spawnChild(name: string, command: string, args: string[], opts: SpawnOptions = {}): Child {
  if (opts.fdLimit !== undefined) {
    const n = opts.fdLimit === 'hard' ? '"$(ulimit -Hn)"' : String(opts.fdLimit);
    args = ['-c', `ulimit -n ${n} && exec ${[command, ...args].map(shQuote).join(' ')}`];
    command = 'sh';
  }
  // stdin stays open as a pipe: our own children exit when it closes (the runner died).
  const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
  if (proc.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  let resolveLine: (v: unknown) => void = () => {};
  let rejectLine: (e: Error) => void = () => {};
  const c: Child = {
    name,
    proc,
    pid: proc.pid,
    stdout: '',
    stderr: '',
    firstLine: new Promise((res, rej) => {
      resolveLine = res;
      rejectLine = rej;
    }),
    exited: new Promise((r) => proc.on('exit', (code) => r(code))),
    alive: () => proc.exitCode === null && proc.signalCode === null,
    async kill() {
      if (c.alive()) proc.kill('SIGKILL');
      await c.exited;
      running.delete(c);
    },
  };
  c.firstLine.catch(() => {}); // only some callers wait for it
  running.add(c);
  proc.on('error', (err) => rejectLine(err));
  proc.stdin!.on('error', () => {});
  let announced = false;
  proc.stdout!.on('data', (d: Buffer) => {
    c.stdout += d.toString();
    const nl = c.stdout.indexOf('\n');
    if (announced || nl < 0) return;
    announced = true;
    try {
      resolveLine(JSON.parse(c.stdout.slice(0, nl)));
    } catch (err) {
      rejectLine(new Error(`${name}: first line is not JSON: ${c.stdout.slice(0, nl)}`));
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (c.stderr += d.toString()));
  void c.exited.then((code) => rejectLine(new Error(`${name} exited (${code}) before it was ready: ${c.stderr.trim()}`)));
  return c;
}

/** Run one of the bench's own child scripts (dist/bench/lib/<script>.js) with node. */
export function spawnNodeScript(name: string, script: string, args: string[], opts: SpawnOptions = {}): Child {
  return spawnChild(name, process.execPath, [path.join(DIST_BENCH_LIB, `${script}.js`), ...args], opts);
}

/** Resolves with the child's first stdout line, or rejects when it exits or takes longer than `ms`. */
export async function ready<T>(c: Child, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${c.name}: not ready within ${ms} ms; stderr: ${c.stderr.trim()}`)), ms);
  });
  try {
    return (await Promise.race([c.firstLine, timeout])) as T;
  } finally {
    clearTimeout(timer);
  }
}

/** A port that was free a moment ago, for children that cannot report the one they bound. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Wait until something accepts TCP connections on the port (the connection is closed at once). */
export async function waitForPort(port: number, child: Child, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (!child.alive()) throw new Error(`${child.name} exited: ${child.stderr.trim() || child.stdout.trim()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${child.name}: nothing listens on port ${port} after ${ms} ms`);
    await sleep(50);
  }
}

export { which } from './which.js';

export interface ProxyProcess {
  child: Child;
  /** the config file the child runs on (in a temp dir removed by stop()) */
  file: string;
  stop(): Promise<void>;
}

/**
 * shaper-proxy as users run it (the CLI, with the bin's node flags) on `config`, written to a
 * temp file; resolves once every port of `waitPorts` accepts. stop() kills it and removes the file.
 */
export async function startProxyProcess(config: unknown, waitPorts: number[], logLevel = 'warn', opts: SpawnOptions & { cli?: string } = {}): Promise<ProxyProcess> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'shaper-bench-'));
  const file = path.join(dir, 'proxy.json');
  await fs.promises.writeFile(file, JSON.stringify(config, null, 2));
  // Its state and counters files in the temp dir too (an env variable: an older build under comparison ignores it).
  const child = spawnChild('shaper-proxy', process.execPath, [...PROXY_NODE_FLAGS, opts.cli ?? CLI, '--config', file, '--log-level', logLevel], { ...opts, env: { SHAPER_STATE_DIR: dir, ...opts.env } });
  const stop = async () => {
    await child.kill();
    await fs.promises.rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of waitPorts) await waitForPort(port, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, file, stop };
}
