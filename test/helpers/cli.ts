/** The CLI as a real child process: `shaper-proxy` running, run to its end, and `shaper-proxy ctl`. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { CLI, cleanup, waitFor } from './base.js';

export interface Child {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** Parsed JSON log lines seen so far. */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
  waitLog(pred: (l: Record<string, unknown>) => boolean, ms?: number, what?: string): Promise<Record<string, unknown>>;
  kill(): Promise<void>;
}

export interface CliOptions {
  /** run it under `ulimit -n` (through sh, which then execs node, so the pid is node's) */
  fdLimit?: number;
  /** run it in a session of its own: no controlling terminal, as under systemd */
  session?: boolean;
  /** run it as this user and group id (a test running as root that needs permissions to count) */
  uid?: number;
}

/**
 * The proxy's state and counters files go to the config file's folder (the test's temp dir), not
 * to the user's default state directory, unless the test's `env` says where (or unsets it).
 */
function stateDirBesideConfig(args: readonly string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const i = args.findIndex((a) => a === '--config' || a === '-c');
  const file = i >= 0 ? args[i + 1] : undefined;
  if (file === undefined || Object.hasOwn(env, 'SHAPER_STATE_DIR')) return {};
  return { SHAPER_STATE_DIR: path.dirname(path.resolve(file)) };
}

/** Run the CLI as a real child process; `kill()` is safe to call in a finally. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, opts: CliOptions = {}): Child {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const [command, argv] =
    opts.fdLimit === undefined
      ? [process.execPath, [CLI, ...args]]
      : ['sh', ['-c', `ulimit -n ${opts.fdLimit} && exec ${[process.execPath, CLI, ...args].map(quote).join(' ')}`]];
  const proc = spawn(command, argv, {
    env: { ...process.env, ...stateDirBesideConfig(args, env), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.session === true,
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
  });
  const c: Child = {
    proc,
    stdout: '',
    stderr: '',
    logs: [],
    exited: new Promise((r) => {
      proc.on('exit', (code) => r(code));
      // A child that cannot start (EACCES, ENOENT) ends here, with why on its stderr, instead of an uncaught error.
      proc.on('error', (err) => {
        c.stderr += `spawn failed: ${err.message}\n`;
        r(null);
      });
    }),
    waitLog: async (pred, ms = 5000, what = 'log line') => (await waitFor(() => c.logs.find(pred), ms, what))!,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await c.exited;
    },
  };
  let partial = '';
  proc.stdout!.on('data', (d: Buffer) => {
    c.stdout += d.toString();
    partial += d.toString();
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      try {
        c.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (c.stderr += d.toString()));
  return c;
}

/** The CLI (runCli), SIGKILLed after the test if it still runs. */
export function cliFor(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}, opts: CliOptions = {}): Child {
  const c = runCli(args, env, opts);
  cleanup(t, () => c.kill());
  return c;
}

/** Runs the CLI to its end (killed after 20 s); resolves once its exit code and all of its output are in. */
export async function runToEnd(args: string[], env: NodeJS.ProcessEnv = {}, opts: CliOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = runCli(args, env, opts);
  const closed = new Promise((r) => c.proc.once('close', r));
  const timer = setTimeout(() => void c.kill(), 20_000);
  try {
    const code = await c.exited;
    await closed;
    return { code, stdout: c.stdout, stderr: c.stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** `shaper-proxy ctl ...args` as a child process (killed after 15 s); no SHAPER_ADMIN_TOKEN unless `env` sets one. */
export function ctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'ctl', ...args],
      { env: { ...process.env, SHAPER_ADMIN_TOKEN: '', ...env }, timeout: 15_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
