/** Configs as the loader yields them, and the proxy in process: started, waited for, stopped. */
import type { TestContext } from 'node:test';
import type { AppConfig, ProxyConfig, TierConfig } from '../../src/config/types.js';
import type { Clock } from '../../src/clock.js';
import { createProxy, type Proxy } from '../../src/index.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { cleanup, waitFor } from './base.js';
import type { Backend } from './net.js';

export function app(name: string, targets: string[], extra: Partial<AppConfig> = {}): AppConfig {
  return {
    name,
    ports: [0],
    bind: '127.0.0.1',
    targets: targets.map((address) => {
      const i = address.lastIndexOf(':');
      return { address, host: address.slice(0, i), port: Number(address.slice(i + 1)), weight: 1 };
    }),
    balance: 'round-robin',
    connectTimeout: 1000,
    idleTimeout: 0,
    protocol: 'tcp',
    ...extra,
  };
}

/** A tier with every level unlimited; `c` sets what the test needs. */
export function tier(name: string, c: Partial<TierConfig> = {}): TierConfig {
  const U = Infinity;
  return { name, rtt: 50, weight: 1, connection: { down: U, up: U }, customer: { down: U, up: U }, total: { down: U, up: U }, ...c };
}

export function config(apps: AppConfig[], extra: Partial<ProxyConfig> = {}): ProxyConfig {
  return {
    apps,
    health: { interval: 60_000, timeout: 500, unhealthyAfter: 2, healthyAfter: 1 },
    admin: null,
    log: { level: 'silent' },
    drainTimeout: 1000,
    // The config's default, or the suite-wide choice (SHAPER_DATA_PLANE=js runs every in-process proxy on the JS data plane).
    dataPlane: (process.env['SHAPER_DATA_PLANE'] as ProxyConfig['dataPlane'] | undefined) ?? 'auto',
    watch: true,
    observe: { latency: true, foo: true },
    tiers: {},
    global: { down: Infinity, up: Infinity },
    customers: [],
    defaultTier: null,
    stateFile: null,
    ...extra,
  };
}

/** A logger whose JSON lines the test can read (`lines`, parsed, in order). */
export function captureLogger(level = 'info'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

export type TestProxy = Proxy & {
  /** The bound port of the app's `i`th listening port. */
  portOf(app: string, i?: number): number;
  /** shutdown(0). Shutdown runs once: a second call (or stop()) gets the first one's result. */
  stop(): Promise<void>;
};

/** A proxy not started yet, with portOf() and stop(). */
function testProxy(cfg: ProxyConfig, log: Logger, clock: Clock | undefined): TestProxy {
  const proxy = createProxy(cfg, { log, ...(clock ? { clock } : {}) });
  const shutdown = proxy.shutdown.bind(proxy);
  let down: ReturnType<Proxy['shutdown']> | undefined;
  return Object.assign(proxy, {
    shutdown: (drainTimeout?: number) => (down ??= shutdown(drainTimeout)),
    portOf(appName: string, i = 0) {
      const ls = proxy.listeners().filter((l) => l.app === appName && l.state === 'listening');
      const port = ls[i]?.boundPort;
      if (!port) throw new Error(`app ${appName} has no listening port #${i}`);
      return port;
    },
    async stop() {
      await proxy.shutdown(0);
    },
  });
}

/**
 * Starts it, waits for the first round of health checks, then resets the counts of `backends` so
 * tests see only their own connections.
 */
async function ready(proxy: TestProxy, backends: Backend[]): Promise<void> {
  await proxy.start();
  await waitFor(() => [...proxy.upstreams.byAddress.values()].every((t) => t.lastCheck !== undefined), 5000, 'first health checks');
  await new Promise((r) => setTimeout(r, 20)); // let the backends see the checks' FINs
  for (const b of backends) b.resetCounts();
}

/** An in-process proxy, silent unless given a logger; the caller stops it (`stop()`). */
export async function startProxy(cfg: ProxyConfig, backends: Backend[] = [], log: Logger = silentLogger(), clock?: Clock): Promise<TestProxy> {
  const proxy = testProxy(cfg, log, clock);
  await ready(proxy, backends);
  return proxy;
}

export interface ProxyOptions {
  /** helper backends whose counts start from zero once the proxy's first health checks are done */
  backends?: Backend[];
  /** silent if not given (captureLogger() to read the lines) */
  log?: Logger;
  /** a ManualClock for shaping and housekeeping */
  clock?: Clock;
}

/**
 * An in-process proxy (as startProxy) stopped after the test, once, even if the test stopped it
 * itself; with an admin server in `cfg`, it resolves once that listens (`proxy.adminPort`).
 */
export async function proxyFor(t: TestContext, cfg: ProxyConfig, opts: ProxyOptions = {}): Promise<TestProxy> {
  const proxy = testProxy(cfg, opts.log ?? silentLogger(), opts.clock);
  cleanup(t, () => proxy.stop());
  await ready(proxy, opts.backends ?? []);
  if (cfg.admin) await waitFor(() => proxy.adminPort, 3000, 'admin port');
  return proxy;
}
