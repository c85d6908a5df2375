/**
 * Upgrade without dropping a connection (nginx's USR2 binary upgrade, HAProxy's `-x`, Envoy's hot
 * restart): the running process starts the program again from disk (the same command line) and
 * hands it its listening sockets; the new process reads its config, listens on those sockets and
 * says it is ready; only then does the old one stop accepting and drain. If the new one cannot start
 * (a bad config, a crash, not ready in time), the old one keeps serving and says why.
 *
 * The handover: the listening descriptors go to the new process as its fds 4 and up (spawn's stdio),
 * their keys in $SHAPER_UPGRADE; fd 3 is a pipe on which the new process writes one JSON line,
 * {"ready":true,"pid":N} or {"error":"..."}. The sockets are the same kernel sockets in both
 * processes, so the ports never stop listening: a connection waits in the shared backlog for
 * whichever process accepts first, and none is refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { sendJson, type Router } from './admin/router.js';
import { writeFileAtomic } from './atomic-file.js';
import { ProxyError } from './errors.js';
import type { Logger } from './log.js';
import { InheritedListeners, type HandedListener } from './net/listen-fds.js';

/** The environment variable that tells a new process what it was handed. */
export const UPGRADE_ENV = 'SHAPER_UPGRADE';
/** How long the new process has to start and say it is ready; then it is killed and the old one stays. */
export const UPGRADE_TIMEOUT_MS = 30_000;
const STATUS_FD = 3;
const FIRST_LISTENER_FD = 4;

/** The command line that starts this program again. */
export interface Program {
  execPath: string;
  args: string[];
  /** Why this process cannot be upgraded (it runs demo backends, say); undefined: it can. */
  unavailable?: string;
}

/** The command line of this process: node with its flags, the script, the arguments. */
export function thisProgram(): Program {
  return { execPath: process.execPath, args: [...process.execArgv, ...process.argv.slice(1)] };
}

export interface UpgradeResult {
  ok: boolean;
  /** ISO time the upgrade began */
  at: string;
  why: string;
  oldPid: number;
  /** the process that serves now (null: the upgrade failed, this one still serves) */
  newPid: number | null;
  /** listening sockets handed over */
  listeners: number;
  /** connections this process drains (ok) */
  draining?: number;
  ms: number;
  /** why it failed */
  error?: string;
}

/** What the upgrader does to the proxy. */
export interface UpgradeParts {
  log: Logger;
  /** the listening sockets to hand over, as they are now */
  listeners(): HandedListener[];
  /** before the new process starts: save what it reads at start (the counters) */
  prepare(): Promise<void>;
  /** the new process is ready: stop accepting and let it own the shared files */
  handOver(): Promise<void>;
  /** open connections (to say how many are left to drain) */
  connections(): number;
  /** the proxy is shutting down (no upgrade then) */
  stopping(): boolean;
  /** the listeners are closed by POST /drain: nothing to hand over, and the new process would accept */
  draining(): boolean;
}

/** The parts of a proxy an upgrade uses (a narrow view of the Proxy). */
export interface UpgradableProxy {
  readonly log: Logger;
  readonly acceptor: { handoff(): HandedListener[]; stop(): Promise<void>; readonly draining: boolean };
  readonly admin: { handoff(): HandedListener[]; closeListener(): Promise<void> };
  /** the counters file: saved for the new process to restore, then left to it */
  readonly observer: { save(): Promise<void>; release(): void };
  readonly connections: { readonly size: number };
}

/**
 * A proxy's upgrades (the CLI's): its Upgrader (null without a program to start again) and the admin
 * API's POST /upgrade. `stopping`: whether the process is shutting down.
 */
export function upgrades(program: Program | undefined, router: Router, proxy: UpgradableProxy, stopping: () => boolean): Upgrader | null {
  const upgrader = program
    ? new Upgrader(program, {
        log: proxy.log,
        listeners: () => [...proxy.acceptor.handoff(), ...proxy.admin.handoff()],
        prepare: () => proxy.observer.save(),
        // The new process is ready: it accepts from now on, and owns the counters file.
        handOver: async () => {
          await proxy.acceptor.stop();
          await proxy.admin.closeListener();
          proxy.observer.release();
        },
        connections: () => proxy.connections.size,
        stopping,
        draining: () => proxy.acceptor.draining,
      })
    : null;
  router.on('POST', '/upgrade', async (_req, res) => {
    if (!upgrader) throw new ProxyError('SHAPER_ERR_UPGRADE', 'this proxy was not started by the shaper-proxy command: there is no program to start again');
    const result = await upgrader.upgrade('admin API');
    sendJson(res, result.ok ? 200 : 500, result.ok ? result : { ...result, code: 'SHAPER_ERR_UPGRADE' });
    return undefined;
  });
  return upgrader;
}

/**
 * One upgrade at a time, for every trigger (SIGWINCH, POST /upgrade, `shaper-proxy ctl upgrade`);
 * a trigger while one runs gets its result. After a successful one this process only drains:
 * `onUpgraded` listeners (the CLI) drain and exit.
 */
export class Upgrader {
  #running: Promise<UpgradeResult> | null = null;
  #done: UpgradeResult | null = null;
  readonly #upgraded: ((result: UpgradeResult) => void)[] = [];

  constructor(
    private readonly program: Program,
    private readonly parts: UpgradeParts,
    private readonly timeoutMs = UPGRADE_TIMEOUT_MS,
  ) {}

  /** Called once the new process serves (this one then drains). */
  onUpgraded(fn: (result: UpgradeResult) => void): void {
    this.#upgraded.push(fn);
  }

  upgrade(why: string): Promise<UpgradeResult> {
    this.#running ??= this.#run(why).finally(() => (this.#running = null));
    return this.#running;
  }

  async #run(why: string): Promise<UpgradeResult> {
    const t0 = performance.now();
    const base = { at: new Date().toISOString(), why, oldPid: process.pid };
    const { log } = this.parts;
    const failed = (error: string, listeners = 0): UpgradeResult => {
      log.error({ why, error }, 'upgrade failed; this process keeps serving');
      return { ...base, ok: false, newPid: null, listeners, ms: Math.round(performance.now() - t0), error };
    };
    if (this.#done) return failed(`this process handed its listeners to pid ${this.#done.newPid} already and is draining`);
    if (this.program.unavailable) return failed(this.program.unavailable);
    if (this.parts.stopping()) return failed('this process is shutting down');
    if (this.parts.draining()) return failed('this process is drained (POST /drain): its ports are closed, and the new process would accept on them; undrain it first');
    await this.parts.prepare();
    // Read and hand over in one go: no listener can close (and its descriptor be reused) in between.
    const listeners = this.parts.listeners();
    log.info({ why, listeners: listeners.length }, 'upgrade: starting the new process');
    let child: ChildProcess;
    try {
      child = spawn(this.program.execPath, this.program.args, {
        stdio: ['ignore', 'inherit', 'inherit', 'pipe', ...listeners.map((l) => l.fd)],
        env: { ...process.env, [UPGRADE_ENV]: JSON.stringify({ from: process.pid, listeners: listeners.map((l, i) => ({ key: l.key, fd: FIRST_LISTENER_FD + i })) }) },
      });
    } catch (err) {
      return failed(`cannot start ${this.program.execPath}: ${(err as Error).message}`, listeners.length);
    }
    const outcome = await waitReady(child, this.timeoutMs);
    if ('error' in outcome) return failed(outcome.error, listeners.length);
    if (this.parts.stopping()) {
      // A stop came while the new process started: it was meant for the program, not just this process.
      child.kill('SIGTERM');
      return failed(`this process began shutting down during the upgrade; the new process (pid ${outcome.pid}) was told to stop too`, listeners.length);
    }
    await this.parts.handOver();
    child.unref();
    const result: UpgradeResult = { ...base, ok: true, newPid: outcome.pid, listeners: listeners.length, draining: this.parts.connections(), ms: Math.round(performance.now() - t0) };
    this.#done = result;
    log.info({ why, newPid: result.newPid, listeners: result.listeners, draining: result.draining, ms: result.ms }, 'upgraded: the new process serves; this one drains and exits');
    setImmediate(() => this.#upgraded.forEach((fn) => fn(result)));
    return result;
  }
}

/** The new process's line on the status pipe, or why it never came. */
function waitReady(child: ChildProcess, ms: number): Promise<{ pid: number } | { error: string }> {
  return new Promise((resolve) => {
    const status = child.stdio[STATUS_FD] as Readable;
    let text = '';
    let said: string | undefined;
    const finish = (outcome: { pid: number } | { error: string }) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      status.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ error: `the new process (pid ${child.pid}) was not ready within ${ms / 1000}s and was killed (is the program on disk a version without upgrades?)` });
    }, ms);
    status.setEncoding('utf8');
    status.on('error', () => {});
    status.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      let line: { ready?: unknown; pid?: unknown; error?: unknown };
      try {
        line = JSON.parse(text.slice(0, nl)) as typeof line;
      } catch {
        line = { error: `unreadable status line ${JSON.stringify(text.slice(0, nl))}` };
      }
      if (line.ready === true && typeof line.pid === 'number') finish({ pid: line.pid });
      else said = String(line.error ?? 'no reason given'); // it exits next: resolved on its exit
    });
    // After the outcome an error (a failed kill) has nothing left to change.
    child.on('error', (err) => finish({ error: `cannot start the new process: ${err.message}` }));
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      finish({ error: said ? `the new process ${how}: ${said}` : `the new process (pid ${child.pid}) ${how} before it was ready (its log says why)` });
    };
    child.once('exit', onExit);
  });
}

/** The new process's side: what it was handed, and how it tells the old one it is ready or failed. */
export interface UpgradeChild {
  /** the old process's pid */
  from: number;
  inherited: InheritedListeners;
  ready(): void;
  failed(message: string): void;
}

/** This process's handover when an upgrade started it (and takes $SHAPER_UPGRADE out of the environment); else null. */
export function upgradeChild(env: NodeJS.ProcessEnv = process.env): UpgradeChild | null {
  const text = env[UPGRADE_ENV];
  if (text === undefined) return null;
  delete env[UPGRADE_ENV];
  const parsed = JSON.parse(text) as { from?: unknown; listeners?: unknown };
  const listeners = Array.isArray(parsed.listeners) ? (parsed.listeners as { key?: unknown; fd?: unknown }[]) : [];
  const handed = listeners.filter((l): l is HandedListener => typeof l.key === 'string' && typeof l.fd === 'number');
  let reported = false;
  const report = (line: object) => {
    if (reported) return;
    reported = true;
    try {
      writeSync(STATUS_FD, `${JSON.stringify(line)}\n`);
      closeSync(STATUS_FD);
    } catch {
      // the old process is gone: nobody to tell
    }
  };
  return {
    from: Number(parsed.from),
    inherited: new InheritedListeners(handed),
    ready: () => report({ ready: true, pid: process.pid }),
    failed: (message) => report({ error: message }),
  };
}

/**
 * Whether this process has a controlling terminal: a window resize sends it SIGWINCH, so SIGWINCH
 * cannot mean "upgrade" then (nginx, unicorn and gunicorn honour WINCH only when daemonized).
 */
export function hasControllingTerminal(): boolean {
  try {
    closeSync(openSync('/dev/tty', 'r'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether systemd started this process as a service (its parent is systemd, which sets
 * $INVOCATION_ID). Then the service's main process must be able to change: see the README's
 * "Upgrades" (`--pid-file` with `PIDFile=`). The system manager is pid 1, whose /proc entry a
 * service with ProtectProc=invisible cannot read; a user manager runs as the service's user.
 */
export function startedBySystemd(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!env['INVOCATION_ID']) return false;
  if (process.ppid === 1) return true;
  try {
    return readFileSync(`/proc/${process.ppid}/comm`, 'utf8').trim() === 'systemd';
  } catch {
    return false;
  }
}

/** Writes this process's pid to `file` (atomically: systemd may read it at any moment). */
export async function writePidFile(file: string): Promise<void> {
  await writeFileAtomic(file, `${process.pid}\n`);
}

/** Removes `file` if it still names this process (after an upgrade it names the new one). */
export async function removePidFile(file: string): Promise<void> {
  try {
    if ((await readFile(file, 'utf8')).trim() === String(process.pid)) await unlink(file);
  } catch {
    // gone already
  }
}
