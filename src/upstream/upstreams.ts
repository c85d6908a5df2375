import { realClock, type Clock } from '../clock.js';
import type { Socket } from 'node:net';
import type { AppConfig, TargetConfig } from '../config/types.js';
import type { Balancer } from './balancer.js';
import { createBalancer } from './balancers.js';
import { Target } from './target.js';

/** What the dialer takes from an app's pre-dialed connections (src/upstream/preconnect.ts). */
export interface PoolPort {
  /** An idle connection to `target`, paused, ready for a client (a replacement is dialed), or null. */
  take(target: Target): Socket | null;
  /** Idle connections to `target` now (/status). */
  idle(target: Target): number;
  /** connections taken, dialed ahead, failed, and closed unused by reason (/status) */
  readonly counts: Readonly<Record<string, number>>;
}

/**
 * What a dial needs of an AbortSignal. A connection passes a DialCancel (an AbortController and its
 * signal cost about 1.5 KB of garbage per connection, most of the garbage opening one made).
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** How a wait for a target ended: one accepted a probe, wake.timeout passed, or the client went away. */
export type WakeOutcome = 'up' | 'timeout' | 'cancelled';

/** What a connection does when no target of its app accepts (src/upstream/wake.ts). */
export interface WakePort {
  /** Wake the app (once for all waiting) and wait for a target; 'cancelled' when `signal` aborts. */
  hold(signal: CancelSignal): Promise<WakeOutcome>;
}

/** The targets of one app and the balancer that chooses among them. */
export class AppUpstream {
  targets: Target[] = [];
  /** weights[i] is targets[i]'s weight in this app (the same address may weigh differently elsewhere). */
  weights: number[] = [];
  balancer: Balancer;
  /** Pre-dialed connections (config `preconnect`), set by the Preconnector; null: none. */
  pool: PoolPort | null = null;
  /** Wake-on-connect (config `wake`), set by the Wakers; null: none. */
  wake: WakePort | null = null;
  /** /status of its wake and sleep (config `wake` or `sleep`); null: neither. */
  wakeView: (() => unknown) | null = null;
  /** client connections open now, and ever (the sleep check reads them) */
  open = 0;
  opened = 0;

  constructor(public config: AppConfig) {
    this.balancer = createBalancer(config.balance);
  }

  update(config: AppConfig, targets: Target[]): void {
    if (config.balance !== this.config.balance) this.balancer = createBalancer(config.balance);
    this.config = config;
    this.targets = targets;
    this.weights = config.targets.map((t) => t.weight);
    this.balancer.setTargets(targets, this.weights);
  }

  /** The target's weight in this app (1 for a target the app does not list). */
  weightOf(target: Target): number {
    const i = this.targets.indexOf(target);
    return i < 0 ? 1 : (this.weights[i] ?? 1);
  }
}

/**
 * Every target of every app, one Target object per address, so that two apps
 * sharing a backend share its health and connection count, and a reload keeps
 * the state of targets that stay.
 */
export class Upstreams {
  readonly byAddress = new Map<string, Target>();
  readonly apps = new Map<string, AppUpstream>();

  /** `clock`: the proxy's (targets' latency estimates decay on it). */
  constructor(readonly clock: Clock = realClock) {}

  /** Apply a (new) config: add, update and drop apps and targets. */
  apply(apps: readonly AppConfig[]): { added: string[]; removed: string[] } {
    const wanted = new Map<string, TargetConfig>();
    for (const app of apps) for (const t of app.targets) if (!wanted.has(t.address)) wanted.set(t.address, t);

    const added: string[] = [];
    const removed: string[] = [];
    for (const [address, cfg] of wanted) {
      if (!this.byAddress.has(address)) {
        this.byAddress.set(address, new Target(cfg, this.clock));
        added.push(address);
      }
    }
    for (const [address, t] of this.byAddress) {
      if (!wanted.has(address)) {
        t.removed = true;
        this.byAddress.delete(address);
        removed.push(address);
      }
    }

    const names = new Set(apps.map((a) => a.name));
    for (const name of this.apps.keys()) if (!names.has(name)) this.apps.delete(name);
    for (const app of apps) {
      const targets = app.targets.map((t) => this.byAddress.get(t.address)!);
      let up = this.apps.get(app.name);
      if (!up) {
        up = new AppUpstream(app);
        this.apps.set(app.name, up);
      }
      up.update(app, targets);
    }
    return { added, removed };
  }
}
