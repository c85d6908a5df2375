/**
 * createProxy(config, deps): the one place that wires the parts of a proxy together. Each part
 * gets only what it needs of the others (narrow interfaces declared by the part itself); every
 * change of the effective config reaches the parts through the config store, in one order.
 */
import { hostname } from 'node:os';
import { realClock, type Clock } from './clock.js';
import { ConfigStore, type ConfigChange } from './config/store.js';
import type { ProxyConfig } from './config/types.js';
import { Housekeeping } from './housekeeping.js';
import type { Logger } from './log.js';
import { Acceptor, type AcceptorParts, type ListenerStatus } from './server/acceptor.js';
import { OpenConnections } from './server/registry.js';
import { TlsContexts } from './server/tls.js';
import { Upstreams } from './upstream/upstreams.js';
import { HealthChecker } from './upstream/health.js';
import { Standby } from './upstream/wake.js';
import { Shaper, type AdmissionFactory } from './shaping/shaper.js';
import { Observer } from './observe/observer.js';
import { RateSampler } from './observe/rates.js';
import { openBytes, type ReadingSources } from './observe/sources.js';
import { statsView } from './observe/view.js';
import { createMetrics, type Metrics } from './observe/metrics.js';
import type { StatsDocument } from './observe/stats-document.js';
import { registerAdminApi } from './admin/api.js';
import { dashboardRoutes } from './admin/dashboard.js';
import { registerOperations } from './admin/operate.js';
import { Router, sendJson } from './admin/router.js';
import { AdminHttp } from './admin/server.js';
import { statusView } from './admin/status.js';
import { Fleet } from './cluster/fleet.js';
import { VERSION } from './version.js';
import { NativeEngine } from './native/engine.js';
import { descriptorUse } from './server/limits.js';
import { SHAPED_PIPE, UNSHAPED_PIPE, type NativePort } from './server/native-path.js';
import { Reloader } from './reloader.js';
import { ProxyError } from './errors.js';

export interface ProxyDeps extends Pick<AcceptorParts, 'inherited'> {
  log: Logger;
  clock?: Clock;
  /** Wall-clock epoch ms for accounting periods and schedule windows; default Date.now. */
  wall?: () => number;
  /** The config file the config came from: reloads (SIGHUP, POST /reload, ...) read it again. */
  file?: string;
  /** Applied to every config loaded from the file (the CLI's --log-level). */
  adjust?: (config: ProxyConfig) => ProxyConfig;
}

export type { ListenerStatus };

/**
 * A running proxy: start(), reload(), shutdown(), and read access to its parts for the CLI, the
 * tests and the bench. It holds no logic of its own beyond the order of start and shutdown.
 */
export class Proxy {
  readonly log: Logger;
  readonly clock: Clock;
  /** The config in force: the file's, with the admin API's runtime changes overlaid. */
  readonly store: ConfigStore;
  readonly housekeeping: Housekeeping;
  readonly upstreams: Upstreams;
  readonly health: HealthChecker;
  readonly standby: Standby;
  readonly tls: TlsContexts;
  readonly shaper: Shaper;
  /** Fleet mode (config `cluster`): caps shared with the other instances through Redis; null: alone. */
  readonly fleet: Fleet | null;
  readonly connections: OpenConnections;
  readonly acceptor: Acceptor;
  readonly observer: Observer;
  readonly metrics: Metrics;
  readonly sampler: RateSampler;
  readonly router = new Router();
  readonly admin: AdminHttp;
  readonly startedAt = Date.now();
  /** Reloads from the config file (null: the config did not come from a file). */
  readonly reloader: Reloader | null;
  #stopping = false;

  constructor(config: ProxyConfig, deps: ProxyDeps) {
    // Every line names the instance (the fleet's id, else the host), so a fleet's logs can be merged.
    this.log = deps.log.child({ instance: config.cluster?.instance ?? hostname() });
    this.clock = deps.clock ?? realClock;
    this.upstreams = new Upstreams(this.clock);
    const owner = this; // the token on this proxy's lifecycle events
    this.store = new ConfigStore(config, this.log);
    this.reloader = deps.file ? new Reloader(deps.file, (next, why) => this.reload(next, why), this.log, deps.adjust) : null;
    this.housekeeping = new Housekeeping(this.clock, (chore, err) => this.log.error({ chore, error: String(err) }, 'housekeeping chore failed'));
    this.tls = new TlsContexts(this.log);
    this.health = new HealthChecker(this.upstreams, config.health, this.log, this.housekeeping);
    this.standby = new Standby(this.upstreams, this.housekeeping, this.clock, this.log);
    this.fleet = config.cluster
      ? new Fleet(config.cluster, {
          log: this.log,
          housekeeping: this.housekeeping,
          clock: this.clock,
          runtime: () => this.store.runtime,
          adopt: (state) => {
            const next = { ...this.store.draft(), tiers: state.tiers, customers: state.customers };
            this.store.applyRuntime(next, 'fleet').catch(() => {}); // logged by the store
          },
          connections: () => this.connections.size,
        })
      : null;
    const fleet = this.fleet;
    const admission: AdmissionFactory | undefined = fleet ? (customer, tier) => fleet.admissionFor(customer, tier) : undefined;
    this.shaper = new Shaper(config, this.clock, admission, { wall: deps.wall, stateFile: () => this.store.stateFile, owner, log: this.log });
    this.connections = new OpenConnections(this.housekeeping);
    this.sampler = new RateSampler(this.connections);
    this.observer = new Observer({
      owner,
      clock: this.clock,
      log: this.log,
      housekeeping: this.housekeeping,
      config: () => this.store.config,
      stateFile: () => this.store.stateFile,
      tierBytes: () => this.#tierBytes(),
      openBytes: () => openBytes(this.connections),
    });
    this.acceptor = new Acceptor(
      {
        owner, log: this.log, clock: this.clock,
        upstreams: this.upstreams,
        tls: this.tls,
        registry: this.connections,
        shaper: this.shaper,
        health: this.health,
        analyzer: (c) => this.observer.analyzer(c),
        native: () => this.#native?.port, ...(deps.inherited ? { inherited: deps.inherited } : {}),
      },
      config,
    );
    const sources: ReadingSources = {
      startedAt: this.startedAt,
      stats: this.observer.stats,
      config: () => this.store.config,
      connections: this.connections,
      customers: () => this.shaper.customers.values(),
      tierBytes: () => this.#tierBytes(),
      targets: (app) => this.upstreams.apps.get(app)?.targets ?? [],
      apps: () => [...this.upstreams.apps].map(([name, up]) => [name, up.targets] as [string, typeof up.targets]),
      rates: (c) => this.sampler.rates(c),
      plans: () => this.shaper.plans.summary(),
      configFile: () => this.reloader?.state ?? null,
      fleet: () => fleet?.view() ?? null,
    };
    this.metrics = createMetrics(
      {
        ...sources,
        version: VERSION,
        budget: () => this.acceptor.limits.budget,
        reloads: () => this.reloader?.state ?? null,
        certificates: () => this.#certificates(),
      },
      fleet ? { get up() { return fleet.link.up; }, get errors() { return fleet.link.errors; }, get liveMembers() { return fleet.liveMembers; }, get rebalances() { return fleet.rebalances; }, get shares() { return fleet.shares; } } : null);
    this.admin = new AdminHttp(this.router, this.log, deps.inherited);
    this.router
      .on('GET', '/health', () => ({ status: this.#stopping ? 'stopping' : 'ok' }))
      // Readiness for load balancers: 503 before any app port listens and from the start of a drain.
      .on('GET', '/ready', (_req, res) => {
        const status = this.#stopping || this.acceptor.draining ? 'draining' : this.acceptor.listeners().some((l) => l.state === 'listening') ? 'ready' : 'starting';
        sendJson(res, status === 'ready' ? 200 : 503, { status });
        return undefined;
      })
      .on('GET', '/status', () => this.status())
      .on('POST', '/reload', async (_req, res) => {
        if (!this.reloader) throw new ProxyError('SHAPER_ERR_ADMIN_BAD_REQUEST', 'this proxy was not started from a config file: nothing to reload');
        const result = await this.reloader.reload('admin API');
        if (result.ok) sendJson(res, 200, result);
        else sendJson(res, 400, { ...result, code: 'SHAPER_ERR_CONFIG', error: `the config file does not load; the old config stays in force:\n${result.errors!.join('\n')}` });
        return undefined;
      })
      .on('GET', '/stats', (req) => statsView(sources, req.query.get('history') === '1'))
      .on('GET', '/metrics', async (_req, res) => {
        const body = await this.metrics.scrape();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
        res.end(body);
        return undefined;
      });
    registerAdminApi(this.router, {
      store: this.store,
      customers: this.shaper.customers,
      connections: this.connections,
      rates: (c) => this.sampler.rates(c),
      usage: this.shaper.plans,
      ...(fleet ? { publish: (hash: 'tiers' | 'customers', field: string, value: unknown) => fleet.publish(hash, field, value) } : {}),
    });
    registerOperations(this.router, { log: this.log, connections: this.connections, accepting: this.acceptor });
    dashboardRoutes(this.router);
    this.store.onChange((change) => this.#applied(change));
    this.#sources = sources;
  }

  readonly #sources: ReadingSources;

  /** Every change of the effective config reaches the parts here, in this order. */
  #applied({ kind, config, why }: ConfigChange): void {
    this.shaper.apply(config);
    if (kind === 'runtime' || kind === 'fleet') return; // tiers and customers only
    if (kind === 'reload') this.#syncDataPlaneOnReload(config);
    const { added, removed } = this.upstreams.apply(config.apps);
    this.tls.apply(config.apps);
    this.acceptor.configure(config);
    this.connections.configure(config.apps);
    this.observer.reconfigured(config);
    this.health.configure(config.health);
    this.standby.apply(config.apps);
    // At start the logger comes with its level (the CLI's --log-level beats the config).
    if (kind === 'start') return;
    this.log.level = config.log.level;
    this.admin.configure(config.admin);
    for (const address of added) {
      const t = this.upstreams.byAddress.get(address);
      if (t) void this.health.check(t);
    }
    this.log.info({ ...(why ? { why } : {}), apps: config.apps.length, targetsAdded: added, targetsRemoved: removed }, 'config reloaded');
  }

  *#certificates(): Iterable<{ app: string; cert: string; subject: string; validTo: string }> {
    for (const app of this.store.config.apps) if (app.tls) for (const c of this.tls.certificates(app.name)) yield { app: app.name, cert: c.cert, subject: c.subject, validTo: c.validTo };
  }

  /** The native data plane in use, and the port connections use (rebuilt when `dataPlane` changes). */
  #native: { engine: NativeEngine; port: NativePort & { descriptors(): number } } | undefined;
  /** Why the native data plane is not in use (null: it is). */
  #nativeUnavailable: string | null = 'not started';

  /** Opens the native engine when the config wants it (at start, and when a reload asks for it). */
  #syncDataPlane(config: ProxyConfig): void {
    const wanted = config.dataPlane !== 'js' || config.apps.some((a) => a.dataPlane !== undefined && a.dataPlane !== 'js');
    if (!wanted) {
      this.#native = undefined;
      this.#nativeUnavailable = 'dataPlane "js"';
      return;
    }
    // The pool of empty pipes (two descriptors each) is a cache for churn: sized to the descriptor
    // limit so that it never eats a small limit's connections (64 per kind from 65,536 up).
    const limit = descriptorUse()?.limit ?? 65_536;
    const engine = this.#native?.engine ?? NativeEngine.open({ maxPooled: Math.min(64, Math.floor(limit / 1024)), pipeSize: UNSHAPED_PIPE, shapedPipeSize: SHAPED_PIPE });
    if (typeof engine === 'string') {
      if (config.dataPlane === 'native') throw new ProxyError('SHAPER_ERR_NATIVE', `dataPlane is "native" but ${engine}`);
      this.#nativeUnavailable = engine;
      return;
    }
    this.#nativeUnavailable = null;
    this.#native = {
      engine,
      port: {
        plane: config.dataPlane,
        relay: (client, backend, options) => engine.relay(client, backend, options),
        // The pipes: two descriptors each, in use or pooled (the sockets replace the handed-over ones).
        descriptors: () => {
          const s = engine.stats();
          return 2 * (s.pipes + s.pooled);
        },
      },
    };
  }

  #syncDataPlaneOnReload(config: ProxyConfig): void {
    const before = this.#native ? 'native' : 'js';
    try {
      this.#syncDataPlane({ ...config, dataPlane: config.dataPlane === 'native' ? 'auto' : config.dataPlane });
      if (this.#native) this.#native.port = { ...this.#native.port, plane: config.dataPlane };
    } catch {
      // dataPlane "native" without the addon was refused at start; a reload keeps what runs.
    }
    const after = this.#native ? 'native' : 'js';
    if (after !== before) this.log.info({ dataPlane: after, reason: this.#nativeUnavailable }, 'data plane changed for new connections');
  }

  /** /status: which data plane moves plain TCP bytes, and the engine's counts. */
  #dataPlaneStatus(): unknown {
    const config = this.store.config;
    if (!this.#native) return { configured: config.dataPlane, active: 'js', reason: this.#nativeUnavailable };
    return { configured: config.dataPlane, active: 'native', engine: this.#native.engine.stats() };
  }

  #tierBytes(): Map<string, { down: number; up: number }> {
    const bytes = new Map<string, { down: number; up: number }>();
    for (const [name, t] of this.shaper.tiers) bytes.set(name, { down: t.nodes.down.bytes, up: t.nodes.up.bytes });
    return bytes;
  }

  /** The config in force (the file's with the runtime changes). */
  get config(): ProxyConfig {
    return this.store.config;
  }

  /** The config as loaded from the file, without runtime changes. */
  get baseConfig(): ProxyConfig {
    return this.store.base;
  }

  async start(): Promise<void> {
    await this.reloader?.started();
    this.#syncDataPlane(this.store.base);
    if (this.#native) this.log.info({ dataPlane: 'native', configured: this.store.base.dataPlane }, 'data plane: native splice(2) relay for plain TCP connections');
    else this.log.info({ dataPlane: 'js', configured: this.store.base.dataPlane, reason: this.#nativeUnavailable }, 'data plane: JavaScript');
    await this.store.start();
    // Before any listener: the first connections already count fleet-wide (Redis is waited for at most redisTimeout).
    await this.fleet?.start(this.shaper);
    await this.observer.start();
    this.sampler.start(this.housekeeping);
    this.health.start();
    this.admin.configure(this.store.config.admin);
    this.shaper.start(this.housekeeping);
    await this.acceptor.start();
  }

  /** Apply a new, already validated config without dropping connections; `why` goes into the log line. */
  reload(config: ProxyConfig, why?: string): void {
    const base = this.store.base;
    if (JSON.stringify(config.cluster ?? null) !== JSON.stringify(base.cluster ?? null)) {
      // The fleet's Redis, id and keys are fixed for the life of the process.
      this.log.warn('cluster settings changed: they take effect at the next restart; the rest of the config is reloaded');
      config = { ...config, ...(base.cluster ? { cluster: base.cluster } : {}) };
      if (!base.cluster) delete config.cluster;
    }
    this.store.reload(config, why);
  }

  listeners(): ListenerStatus[] {
    return this.acceptor.listeners();
  }

  /** The bound port of the admin server, once it listens. */
  get adminPort(): number | undefined {
    return this.admin.port;
  }

  get stats() {
    return this.observer.stats;
  }

  /** Closed connections by reason (the stats' counters, restored across restarts). */
  get closedByReason(): ReadonlyMap<string, number> {
    return this.observer.stats.byReason;
  }

  get limits() {
    return this.acceptor.limits;
  }

  /** ms a client on an `acceptProxyProtocol` port has to send its PROXY header. */
  get proxyHeaderTimeoutMs(): number {
    return this.acceptor.proxyHeaderTimeoutMs;
  }

  set proxyHeaderTimeoutMs(ms: number) {
    this.acceptor.proxyHeaderTimeoutMs = ms;
  }

  status(): unknown {
    return statusView({
      startedAt: this.startedAt,
      configFile: () => this.reloader?.state ?? null,
      config: () => this.store.config,
      connections: () => this.connections.size,
      listeners: () => this.acceptor.listeners(),
      app: (name) => this.upstreams.apps.get(name),
      certificates: (app) => this.tls.certificates(app),
      fleet: () => this.fleet?.view() ?? null,
      dataPlane: () => this.#dataPlaneStatus(),
    });
  }

  /** The `GET /stats` document (also what SIGUSR1 / SIGUSR2 log). */
  statsDocument(withHistory = false): StatsDocument {
    return statsView(this.#sources, withHistory);
  }

  /** Stop accepting, let open connections finish for up to `drainTimeout` ms, then close the rest. */
  async shutdown(drainTimeout = this.store.config.drainTimeout): Promise<{ drained: number; closed: number }> {
    this.#stopping = true;
    this.health.stop();
    this.standby.stop();
    this.sampler.stop();
    await this.acceptor.stop();
    const open = this.connections.size;
    this.log.info({ connections: open, drainTimeout }, 'shutting down: draining connections');
    const left = await this.connections.drain(drainTimeout);
    this.connections.closeAll('shutdown');
    this.connections.stop();
    this.housekeeping.stop();
    await this.shaper.plans.stop();
    this.shaper.stop();
    await this.fleet?.stop();
    await this.admin.close();
    await this.store.flush();
    await this.observer.stop();
    this.log.info({ drained: open - left, closed: left }, 'shutdown complete');
    return { drained: open - left, closed: left };
  }
}

export function createProxy(config: ProxyConfig, deps: ProxyDeps): Proxy {
  return new Proxy(config, deps);
}
