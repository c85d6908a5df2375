/**
 * Wake-on-connect and sleep (config `apps[].wake`, `apps[].sleep`; fly.io's scale-to-zero).
 *
 * Wake: when no target of the app accepts a client, its wake hook runs once for everyone who
 * arrives while it wakes; those clients are held (the proxy reads nothing from them: what they send
 * waits in their socket, bounded by its receive buffer, and TCP holds the rest back), and every
 * target is probed with a TCP connect every PROBE_MS. The first probe a target accepts ends the
 * wake: the held clients dial again. `timeout` after the hook started, the wake gives up and the
 * held clients are closed (close reason wake_timeout); the next client starts a new wake.
 *
 * Sleep: once the app has had no open connection (and no held client) for `after`, its sleep hook
 * runs, once, until a connection comes again.
 */
import { execFile } from 'node:child_process';
import type { Clock, Timer } from '../clock.js';
import type { AppConfig, HookConfig } from '../config/types.js';
import type { Housekeeping } from '../housekeeping.js';
import type { Logger } from '../log.js';
import type { CancelSignal } from './dialer.js';
import { connectTarget } from './dialer.js';
import { Preconnector } from './preconnect.js';
import type { AppUpstream, Upstreams, WakeOutcome, WakePort } from './upstreams.js';

/** How often a waking app's targets are probed. */
export const PROBE_MS = 100;
/** How often apps with `sleep` are checked for idleness. */
const SLEEP_SWEEP_MS = 250;

/** How long a hook may run (a command is killed, a POST aborted) before it counts as failed. */
export const HOOK_TIMEOUT_MS = 60_000;

/** Runs `hook` for `app`; resolves with what happened (never rejects): null when it succeeded, else why not. */
export function runHook(hook: HookConfig, app: string, event: 'wake' | 'sleep'): Promise<string | null> {
  if ('command' in hook) {
    const [file, ...args] = hook.command;
    return new Promise((resolve) => {
      execFile(file!, args, { timeout: HOOK_TIMEOUT_MS, env: { ...process.env, SHAPER_APP: app, SHAPER_EVENT: event } }, (err, _stdout, stderr) => {
        if (!err) return resolve(null);
        const tail = stderr.trim().split('\n').slice(-1)[0];
        resolve(`${err.message.split('\n')[0]}${tail ? ` (${tail})` : ''}`);
      });
    });
  }
  return fetch(hook.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app, event }),
    signal: AbortSignal.timeout(HOOK_TIMEOUT_MS),
  }).then(
    async (res) => {
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? null : `HTTP ${res.status}`;
    },
    (err: Error) => err.message,
  );
}

/** A wake in progress. */
interface Waking {
  startedAt: number;
  deadline: Timer;
  probe: Timer | null;
}

class AppWaker implements WakePort {
  config: AppConfig;
  /** clients waiting for the wake now */
  held = 0;
  readonly counts = { wakes: 0, woke: 0, timedOut: 0, hookFailures: 0, clientsHeld: 0, sleeps: 0 };
  /** ms the last successful wake took, from its hook's start to the first accepted probe */
  lastWakeMs: number | null = null;
  #waking: Waking | null = null;
  readonly #waiters = new Set<(r: WakeOutcome) => void>();
  #idleSince: number;
  #openedSeen = -1;
  #asleep = false;

  constructor(
    readonly up: AppUpstream,
    config: AppConfig,
    readonly clock: Clock,
    readonly log: Logger,
  ) {
    this.config = config;
    this.#idleSince = clock.now();
  }

  hold(signal: CancelSignal): Promise<WakeOutcome> {
    if (signal.aborted) return Promise.resolve('cancelled');
    if (!this.#waking) this.#start();
    this.held++;
    this.counts.clientsHeld++;
    return new Promise((resolve) => {
      const done = (r: WakeOutcome): void => {
        this.#waiters.delete(done);
        signal.removeEventListener('abort', onAbort);
        this.held--;
        resolve(r);
      };
      const onAbort = (): void => done('cancelled');
      this.#waiters.add(done);
      signal.addEventListener('abort', onAbort);
    });
  }

  /** What /status shows. */
  view(): unknown {
    return { state: this.#waking ? 'waking' : this.#asleep ? 'asleep' : 'idle', held: this.held, ...this.counts, lastWakeMs: this.lastWakeMs };
  }

  /** The sleep check (chore): the hook once the app was idle for `sleep.after`. */
  tick(now: number): void {
    const sleep = this.config.sleep;
    if (!sleep) return;
    if (this.up.open > 0 || this.held > 0 || this.up.opened !== this.#openedSeen) {
      this.#openedSeen = this.up.opened;
      this.#idleSince = now;
      this.#asleep = false;
      return;
    }
    if (this.#asleep || now - this.#idleSince < sleep.after) return;
    this.#asleep = true;
    this.counts.sleeps++;
    const app = this.config.name;
    this.log.info({ app, idleMs: Math.round(now - this.#idleSince) }, 'app idle: running its sleep hook');
    void runHook(sleep.hook, app, 'sleep').then((failed) => {
      if (failed) {
        this.counts.hookFailures++;
        this.log.warn({ app, event: 'sleep', error: failed }, 'sleep hook failed');
      }
    });
  }

  /** Let every held client go (`outcome`) and stop waking. */
  finish(outcome: WakeOutcome): void {
    const w = this.#waking;
    if (!w) return;
    this.#waking = null;
    w.deadline.cancel();
    w.probe?.cancel();
    const app = this.config.name;
    if (outcome === 'up') {
      this.counts.woke++;
      this.lastWakeMs = Math.round((this.clock.now() - w.startedAt) * 100) / 100;
      this.log.info({ app, ms: this.lastWakeMs, held: this.held }, 'app woke: a target accepts');
    } else if (outcome === 'timeout') {
      this.counts.timedOut++;
      this.log.warn({ app, timeoutMs: this.config.wake?.timeout, held: this.held }, 'app did not wake within wake.timeout: closing the held clients');
    }
    for (const done of [...this.#waiters]) done(outcome);
  }

  #start(): void {
    const wake = this.config.wake!;
    const app = this.config.name;
    this.counts.wakes++;
    this.#waking = { startedAt: this.clock.now(), deadline: this.clock.setTimer(wake.timeout, () => this.finish('timeout')), probe: null };
    this.log.info({ app, timeoutMs: wake.timeout }, 'no target accepts: running the wake hook, holding clients');
    void runHook(wake.hook, app, 'wake').then((failed) => {
      if (!failed) return;
      this.counts.hookFailures++;
      this.log.warn({ app, event: 'wake', error: failed }, 'wake hook failed (clients stay held until a target accepts or wake.timeout)');
    });
    this.#probe(this.#waking);
  }

  /** One round of probes of every target; the next after PROBE_MS unless one accepted. */
  #probe(w: Waking): void {
    if (this.#waking !== w) return;
    const targets = this.up.targets.filter((t) => !t.removed);
    let left = targets.length;
    const next = (): void => {
      if (--left <= 0 && this.#waking === w) w.probe = this.clock.setTimer(PROBE_MS, () => this.#probe(w));
    };
    if (left === 0) {
      left = 1;
      return next();
    }
    for (const t of targets) {
      connectTarget(t.host, t.port, Math.min(this.config.connectTimeout, 1000)).then(
        (socket) => {
          socket.destroy();
          if (this.#waking === w) this.finish('up');
        },
        next,
      );
    }
  }
}

/** The wakers of every app with `wake` or `sleep`. */
export class Wakers {
  readonly #byApp = new Map<string, AppWaker>();
  #chore: { cancel(): void } | null = null;

  constructor(
    readonly upstreams: Upstreams,
    readonly housekeeping: Housekeeping,
    readonly clock: Clock,
    readonly log: Logger,
  ) {}

  /** The config changed: apps keep their waker (and held clients) while they keep `wake` or `sleep`. */
  apply(apps: readonly AppConfig[]): void {
    const wanted = new Map(apps.filter((a) => a.wake || a.sleep).map((a) => [a.name, a]));
    for (const [name, w] of this.#byApp) {
      if (wanted.has(name) && this.upstreams.apps.get(name) === w.up) continue;
      w.finish('up'); // held clients dial once more, as without wake
      w.up.wake = null;
      w.up.wakeView = null;
      this.#byApp.delete(name);
    }
    for (const [name, app] of wanted) {
      const up = this.upstreams.apps.get(name);
      if (!up) continue;
      let w = this.#byApp.get(name);
      if (!w) this.#byApp.set(name, (w = new AppWaker(up, app, this.clock, this.log)));
      w.config = app;
      if (!app.wake) w.finish('up');
      up.wake = app.wake ? w : null;
      up.wakeView = () => w.view();
    }
    if (this.#byApp.size > 0 && !this.#chore) this.#chore = this.housekeeping.add('sleep', SLEEP_SWEEP_MS, (now) => this.#tick(now));
  }

  stop(): void {
    this.#chore?.cancel();
    this.#chore = null;
    for (const w of this.#byApp.values()) w.finish('cancelled');
  }

  #tick(now: number): void {
    for (const w of this.#byApp.values()) w.tick(now);
  }
}

/**
 * What keeps an app's targets ready besides health checks: connections dialed ahead
 * (src/upstream/preconnect.ts) and wake-on-connect / sleep (src/upstream/wake.ts), applied and
 * stopped together.
 */
export class Standby {
  readonly preconnect: Preconnector;
  readonly wakers: Wakers;

  constructor(upstreams: Upstreams, housekeeping: Housekeeping, clock: Clock, log: Logger) {
    this.preconnect = new Preconnector(upstreams, housekeeping, clock);
    this.wakers = new Wakers(upstreams, housekeeping, clock, log);
  }

  /** After the upstreams took the config. */
  apply(apps: readonly AppConfig[]): void {
    this.preconnect.apply(apps);
    this.wakers.apply(apps);
  }

  stop(): void {
    this.preconnect.stop();
    this.wakers.stop();
  }
}
