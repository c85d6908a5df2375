import net from 'node:net';
import type { AppConfig, ProxyConfig } from './config/types.js';
import type { Logger } from './log.js';
import { realClock, type Clock } from './clock.js';
import { RetryingListen } from './server/listen.js';
import { AcceptPause, descriptorBudget, descriptorUse, isFdExhaustion, SourceLimits, type RefuseReason } from './server/limits.js';
import { Connection, PROXY_HEADER_TIMEOUT_MS, type ConnectionDeps, type ConnectionSummary } from './server/connection.js';
import { TlsContexts } from './server/tls.js';
import { isProxyError } from './errors.js';
import { Upstreams } from './upstream/upstreams.js';
import { HealthChecker } from './upstream/health.js';
import { AdminServer } from './admin/server.js';
import { Router } from './admin/router.js';
import { Shaper, type AdmissionFactory } from './shaping/shaper.js';
import { registerAdminApi, type AdminApi } from './admin/api.js';
import { cloneRuntime, RuntimeChanges, type RuntimeState } from './admin/runtime.js';
import { Observer } from './observe/observer.js';
import { statsView } from './observe/view.js';
import { createMetrics, type Metrics } from './observe/metrics.js';
import { Fleet } from './cluster/fleet.js';
import { Housekeeping, type Chore } from './housekeeping.js';

/** How often per-address customers without connections are looked at (Shaper.forgetIdle). */
const FORGET_CUSTOMERS_EVERY_MS = 1000;

export interface ProxyDeps {
  log: Logger;
  clock?: Clock;
}

interface PortListener {
  key: string;
  appName: string;
  listen: RetryingListen;
}

export interface ListenerStatus {
  app: string;
  host: string;
  port: number;
  boundPort: number | undefined;
  state: string;
  attempts: number;
  lastError?: string;
}

/**
 * The running proxy: listeners for every app port, the upstreams with their
 * health checks, the open connections and the admin server. createProxy() is
 * the one place that wires these together.
 */
export class Proxy {
  /** The config in force: `baseConfig` with the admin API's runtime changes overlaid. */
  config: ProxyConfig;
  /** The config as loaded (from the file), without runtime changes. */
  baseConfig: ProxyConfig;
  /** Tiers and customers changed through the admin API, and their state file. */
  readonly runtime: RuntimeChanges;
  readonly #api: AdminApi;
  readonly log: Logger;
  readonly clock: Clock;
  readonly upstreams = new Upstreams();
  readonly health: HealthChecker;
  readonly connections = new Set<Connection>();
  readonly router = new Router();
  readonly shaper: Shaper;
  /** Fleet mode (config `cluster`): caps shared with the other instances through Redis; null: alone. */
  readonly fleet: Fleet | null = null;
  /** Counters, histograms and rates, for /stats, /metrics and the signal dumps. */
  readonly observer: Observer;
  readonly metrics: Metrics;
  readonly #listeners = new Map<string, PortListener>();
  #admin: AdminServer | undefined;
  #adminKey = '';
  #stopping = false;
  readonly startedAt = Date.now();
  /** Abuse limits (config `limits`) checked at accept. */
  readonly limits: SourceLimits;
  /** Backoff of accepting while file descriptors run out (EMFILE / ENFILE). */
  readonly acceptPause: AcceptPause;
  /** ms a client on an `acceptProxyProtocol` port has to send its PROXY header. */
  proxyHeaderTimeoutMs = PROXY_HEADER_TIMEOUT_MS;
  /** The TLS contexts of the apps with `tls`, rebuilt from the files on every (re)load. */
  readonly tls: TlsContexts;
  /** The periodic chores (idle sweep, forgetting customers that left), on one timer of the clock. */
  readonly housekeeping: Housekeeping;
  #idleChore: Chore | undefined;

  constructor(config: ProxyConfig, deps: ProxyDeps) {
    this.config = config;
    this.baseConfig = config;
    this.log = deps.log;
    this.runtime = new RuntimeChanges(this.log);
    this.clock = deps.clock ?? realClock;
    this.housekeeping = new Housekeeping(this.clock, (chore, err) => this.log.error({ chore, error: String(err) }, 'housekeeping chore failed'));
    this.upstreams.apply(config.apps);
    this.tls = new TlsContexts(this.log);
    this.tls.apply(config.apps);
    this.health = new HealthChecker(this.upstreams, config.health, this.log);
    if (config.cluster) {
      const proxy = this;
      this.fleet = new Fleet(config.cluster, {
        get shaper() {
          return proxy.shaper;
        },
        log: this.log,
        runtime: () => this.runtime.state,
        adopt: (state) => this.#adoptRuntime(state),
        connections: () => this.connections.size,
      });
    }
    this.shaper = new Shaper(config, this.clock, this.fleetAdmission());
    this.limits = new SourceLimits(config.limits, this.clock);
    this.acceptPause = new AcceptPause(this.clock, () => this.log.debug('accepting resumed'));
    this.observer = new Observer(this);
    this.metrics = createMetrics(this);
    this.router
      .on('GET', '/health', () => ({ status: this.#stopping ? 'stopping' : 'ok' }))
      .on('GET', '/status', () => this.status())
      .on('GET', '/stats', (req) => statsView(this, req.query.get('history') === '1'))
      .on('GET', '/metrics', async (_req, res) => {
        const body = await this.metrics.scrape();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
        res.end(body);
        return undefined;
      });
    this.#api = registerAdminApi(this);
  }

  /** In fleet mode, customers' admission limits hold across the fleet (Fleet.admissionFor). */
  private fleetAdmission(): AdmissionFactory | undefined {
    if (!this.config.cluster) return undefined;
    return (customer, tier) => this.fleet!.admissionFor(customer, tier);
  }

  /** Tiers and customers changed on another instance of the fleet: in force here at once, and saved. */
  #adoptRuntime(state: Pick<RuntimeState, 'tiers' | 'customers'>): void {
    const next = { ...cloneRuntime(this.runtime.state), tiers: state.tiers, customers: state.customers };
    this.config = this.runtime.effective(this.baseConfig, next);
    this.shaper.apply(this.config);
    this.runtime.persist().catch((err: unknown) => this.log.error({ error: String(err) }, 'could not save the runtime state'));
  }

  async start(): Promise<void> {
    this.#budgetDescriptors();
    await this.runtime.load(this.baseConfig);
    this.config = this.runtime.effective(this.baseConfig);
    this.shaper.apply(this.config);
    // Before any listener: the first connections already count fleet-wide (Redis is waited for at most redisTimeout).
    await this.fleet?.start();
    await this.observer.start();
    this.#api.start();
    this.health.start();
    this.#syncListeners();
    this.#syncAdmin();
    this.#syncIdleSweep();
    this.housekeeping.add('forget idle customers', FORGET_CUSTOMERS_EVERY_MS, (now) => this.shaper.forgetIdle(now));
    // Wait for the ports that can bind now; busy ones keep retrying behind.
    await Promise.race([
      Promise.all([...this.#listeners.values()].map((l) => l.listen.start())),
      new Promise((r) => setTimeout(r, 200)),
    ]);
  }

  /** Apply a new, already validated config without dropping connections; `why` goes into the log line. */
  reload(config: ProxyConfig, why?: string): void {
    if (JSON.stringify(config.cluster ?? null) !== JSON.stringify(this.baseConfig.cluster ?? null)) {
      // The fleet's Redis, id and keys are fixed for the life of the process.
      this.log.warn('cluster settings changed: they take effect at the next restart; the rest of the config is reloaded');
      config = { ...config, ...(this.baseConfig.cluster ? { cluster: this.baseConfig.cluster } : {}) };
      if (!this.baseConfig.cluster) delete config.cluster;
    }
    const { added, removed } = this.upstreams.apply(config.apps);
    this.tls.apply(config.apps);
    this.config = this.runtime.rebase(this.baseConfig, config);
    this.baseConfig = config;
    this.shaper.apply(this.config);
    this.limits.configure(config.limits);
    this.observer.reconfigured();
    this.log.level = config.log.level;
    this.health.configure(config.health);
    this.#syncListeners();
    this.#syncAdmin();
    this.#syncIdleSweep();
    for (const address of added) {
      const t = this.upstreams.byAddress.get(address);
      if (t) void this.health.check(t);
    }
    this.log.info({ ...(why ? { why } : {}), apps: config.apps.length, targetsAdded: added, targetsRemoved: removed }, 'config reloaded');
  }

  #syncListeners(): void {
    const wanted = new Map<string, AppConfig>();
    for (const app of this.config.apps) app.ports.forEach((port, i) => wanted.set(listenerKey(app.bind, port, app.name, i), app));
    for (const [key, l] of this.#listeners) {
      if (!wanted.has(key)) {
        void l.listen.close();
        this.#listeners.delete(key);
        this.log.info({ app: l.appName, port: l.listen.port }, 'listener removed');
      }
    }
    for (const [key, app] of wanted) {
      const existing = this.#listeners.get(key);
      if (existing) {
        existing.appName = app.name;
        continue;
      }
      const port = Number(key.split('|')[1]);
      const entry: PortListener = { key, appName: app.name, listen: undefined as unknown as RetryingListen };
      const server = net.createServer(
        { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, keepAlive: true },
        (socket) => this.#accept(socket, entry.appName),
      );
      entry.listen = new RetryingListen(server, app.bind, port, this.log.child({ app: app.name }), `app:${app.name}`, this.clock);
      entry.listen.onExhausted = (err) => this.#exhausted(err, app.name);
      this.#listeners.set(key, entry);
      if (!this.#stopping) void entry.listen.start();
    }
  }

  /**
   * One chore sweeps every connection for idleness (Connection.sweepIdle), every quarter of the
   * shortest idleTimeout, between 10 ms and 1 s: a per-socket timeout cost ~0.4 KB a connection.
   */
  #syncIdleSweep(): void {
    const timeouts = this.config.apps.map((a) => a.idleTimeout).filter((ms) => ms > 0);
    const everyMs = timeouts.length > 0 ? Math.min(1000, Math.max(10, Math.floor(Math.min(...timeouts) / 4))) : 0;
    // forEach: a for-of over the Set made an iterator result per connection per sweep.
    this.#idleChore ??= this.housekeeping.add('idle sweep', 0, (now) => this.connections.forEach((c) => c.sweepIdle(now)));
    this.#idleChore.every(everyMs);
  }

  #syncAdmin(): void {
    const a = this.config.admin;
    const key = a ? `${a.host}:${a.port}` : '';
    if (key === this.#adminKey) return;
    void this.#admin?.close();
    this.#admin = undefined;
    this.#adminKey = key;
    if (a) {
      this.#admin = new AdminServer(a.host, a.port, this.router, this.log, () => this.config.admin?.token);
      void this.#admin.start();
    }
  }

  #accept(socket: net.Socket, appName: string): void {
    const app = this.upstreams.apps.get(appName);
    const tls = this.tls.get(appName);
    // Never plaintext on a TLS port (should its certificate not have loaded).
    if (!app || this.#stopping || (app.config.tls && !tls)) {
      socket.destroy();
      return;
    }
    // Abuse limits and descriptor exhaustion: refused before any dial.
    const source = socket.remoteAddress;
    const refused = this.acceptPause.paused ? 'resource_exhausted' : this.limits.admit(source);
    if (refused) {
      if (refused === 'resource_exhausted' && !this.acceptPause.paused) this.#exhausted({ code: 'descriptor_budget' }, appName);
      this.#refuse(socket, source, refused, appName);
      return;
    }
    const conn = new Connection(socket, app, this.#connectionDeps());
    this.connections.add(conn);
    this.observer.opened();
    void conn.start();
  }

  #deps: { shaped: boolean; latency: boolean; foo: boolean; headerMs: number; deps: ConnectionDeps } | undefined;

  /**
   * What connections get from the proxy: one object shared by all of them, rebuilt only when a
   * setting it depends on changed. (Built per connection, its closures cost ~0.5 KB each.)
   */
  #connectionDeps(): ConnectionDeps {
    const shaped = this.shaper.active;
    const { latency, foo } = this.config.observe;
    const headerMs = this.proxyHeaderTimeoutMs;
    const d = this.#deps;
    if (d && d.shaped === shaped && d.latency === latency && d.foo === foo && d.headerMs === headerMs) return d.deps;
    const deps: ConnectionDeps = {
      onTargetFailed: (target, err) => {
        if (isProxyError(err, 'SHAPER_ERR_TARGET_TLS')) {
          this.stats.targetTlsFailed();
          // Once per failed dial (the target is then down): OpenSSL's reason is what the operator needs.
          this.log.warn({ target: target.address, error: err.message }, 'TLS with the target failed; trying the next');
        }
        this.health.recordFailure(target, err, true);
      },
      admit: shaped ? (c) => this.#admit(c) : undefined,
      stages: (c) => (c.shaped ? this.shaper.stages(c.shaped, `conn:${c.id}`) : undefined),
      // A TLS socket takes no onread: its down flow reads through 'data' (TLS allocates per read anyway).
      backendRead: (c) => (c.shaped && !c.app.config.targetTls ? this.shaper.backendRead() : undefined),
      // The app's certificates as they are when the connection starts (a reload swaps them).
      tlsFor: (c) => this.tls.get(c.appName),
      ...(latency
        ? { onConnected: (c: Connection, ms: number) => this.observer.connected(c, ms), onFirstByte: (c: Connection, ms: number) => this.observer.firstByte(c, ms) }
        : {}),
      analyzer: foo ? (c) => this.observer.analyzer(c) : undefined,
      proxyHeaderTimeoutMs: headerMs,
      onClose: (c, summary) => {
        this.limits.release(c.peerAddress);
        this.#onClose(c, summary);
      },
    };
    this.#deps = { shaped, latency, foo, headerMs, deps };
    return deps;
  }

  #refuse(socket: net.Socket, source: string | undefined, reason: RefuseReason, appName: string): void {
    socket.on('error', () => {});
    socket.destroy();
    this.stats.refuse(reason);
    if (reason === 'resource_exhausted') return; // logged once per pause episode
    const log = this.limits.shouldLog(source);
    if (log) this.log.warn({ app: appName, client: source, reason, suppressed: log.suppressed }, 'connection refused by abuse limits');
  }

  /**
   * Out of file descriptors (the descriptor budget is full, or an accept or a dial failed with
   * EMFILE / ENFILE): pause accepting for a while; logged once per episode.
   */
  #exhausted(err: { code?: string | undefined }, appName: string): void {
    const pause = this.acceptPause.exhausted();
    if (pause?.firstOfEpisode) {
      this.log.error(
        { app: appName, code: err.code, pauseMs: pause.ms, connections: this.connections.size, budget: this.limits.budget, fdLimit: this.#fdLimit },
        'out of file descriptors: accepting paused, open connections keep going',
      );
    }
  }

  #fdLimit: number | undefined;

  /** Sizes the descriptor budget once, from the limit and what is open before the first listener. */
  #budgetDescriptors(): void {
    const use = descriptorUse();
    if (!use) return;
    this.#fdLimit = use.limit;
    this.limits.budget = descriptorBudget(use);
    const max = this.baseConfig.limits?.maxConnections;
    const fields = { fdLimit: use.limit, fdOpen: use.open, budget: this.limits.budget };
    if (max !== undefined && max > this.limits.budget) {
      this.log.warn({ ...fields, maxConnections: max }, `limits.maxConnections ${max} needs ${2 * max} descriptors but ulimit -n is ${use.limit}: connections beyond ${this.limits.budget} will be refused (raise ulimit -n / LimitNOFILE)`);
    } else if (max === undefined) {
      this.log.info(fields, 'connections beyond the descriptor budget will be refused (raise ulimit -n for more)');
    }
  }

  async #admit(conn: Connection): Promise<boolean> {
    const verdict = await this.shaper.admit({
      clientAddress: conn.clientAddress,
      app: conn.appName,
      port: conn.localPort,
      ...(conn.serverName !== undefined ? { sni: conn.serverName } : {}),
      ...(conn.clientCert !== undefined ? { clientCert: conn.clientCert } : {}),
    });
    if (verdict === 'rejected') {
      this.log.warn({ app: conn.appName, client: conn.clientAddress }, 'connection refused by customer limits');
      return false;
    }
    if (conn.closed) {
      // The client left while admission was pending: give the slot back at once.
      if (verdict) this.shaper.release(verdict);
      return false;
    }
    conn.shaped = verdict;
    return true;
  }

  #onClose(conn: Connection, summary: ConnectionSummary): void {
    this.connections.delete(conn);
    if (conn.shaped) this.shaper.release(conn.shaped);
    if (isFdExhaustion(summary.error)) this.#exhausted({ code: summary.error }, conn.appName);
    this.observer.closed(conn, summary);
    if (summary.reason === 'no_target') this.log.warn(summary, 'connection closed');
    else this.log.info(summary, 'connection closed');
    if (this.#stopping && this.connections.size === 0) this.#drained?.();
  }

  #drained: (() => void) | undefined;

  /** Port the app listens on (the bound one; differs from config for port 0). */
  listeners(): ListenerStatus[] {
    return [...this.#listeners.values()].map((l) => ({
      app: l.appName,
      host: l.listen.host,
      port: l.listen.port,
      boundPort: l.listen.boundPort,
      state: l.listen.state,
      attempts: l.listen.attempts,
      ...(l.listen.lastError ? { lastError: l.listen.lastError } : {}),
    }));
  }

  get stats() {
    return this.observer.stats;
  }

  /** Closed connections by reason (the stats' counters, restored across restarts). */
  get closedByReason(): ReadonlyMap<string, number> {
    return this.observer.stats.byReason;
  }

  /** Each connection's current rate each way (sampled once a second). */
  get sampler() {
    return this.#api.sampler;
  }

  /** The bound port of the admin server, once it listens. */
  get adminPort(): number | undefined {
    return this.#admin?.port;
  }

  status(): unknown {
    const listeners = this.listeners();
    return {
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      connections: this.connections.size,
      ...(this.fleet ? { cluster: this.fleet.view() } : {}),
      apps: this.config.apps.map((app) => ({
        name: app.name,
        balance: app.balance,
        protocol: app.protocol,
        ...(app.tls ? { tls: this.#tlsStatus(app.name, app.tls) } : {}),
        listeners: listeners.filter((l) => l.app === app.name),
        targets: (this.upstreams.apps.get(app.name)?.targets ?? []).map((t, i) => ({
          address: t.address,
          weight: this.upstreams.apps.get(app.name)?.weights[i] ?? 1,
          health: t.health,
          active: t.active,
          total: t.total,
          ...(t.lastError ? { lastError: t.lastError } : {}),
        })),
      })),
    };
  }

  /**
   * An app's TLS on /status: the default certificate's fields at the top (as before several
   * certificates), then every certificate it serves and how clients are checked.
   */
  #tlsStatus(app: string, tls: NonNullable<AppConfig['tls']>): unknown {
    const certificates = this.tls.certificates(app);
    if (certificates.length === 0) return null;
    return { ...certificates[0], certificates, clientAuth: tls.clientAuth, ...(tls.clientCa ? { clientCa: tls.clientCa.path } : {}) };
  }

  /**
   * Stop accepting, let open connections finish for up to `drainTimeout` ms,
   * then close the rest.
   */
  async shutdown(drainTimeout = this.config.drainTimeout): Promise<{ drained: number; closed: number }> {
    this.#stopping = true;
    this.health.stop();
    this.acceptPause.stop();
    this.#api.stop();
    await Promise.all([...this.#listeners.values()].map((l) => l.listen.close()));
    const open = this.connections.size;
    this.log.info({ connections: open, drainTimeout }, 'shutting down: draining connections');
    if (open > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeout);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const left = this.connections.size;
    for (const c of [...this.connections]) c.close('shutdown');
    this.housekeeping.stop();
    this.shaper.stop();
    await this.fleet?.stop();
    await this.#admin?.close();
    await this.runtime.flush();
    await this.observer.stop();
    this.log.info({ drained: open - left, closed: left }, 'shutdown complete');
    return { drained: open - left, closed: left };
  }
}

function listenerKey(bind: string, port: number, app: string, index: number): string {
  // Port 0 asks for any free port: each such entry is its own listener.
  return port === 0 ? `${bind}|0|${app}|${index}` : `${bind}|${port}`;
}

export function createProxy(config: ProxyConfig, deps: ProxyDeps): Proxy {
  return new Proxy(config, deps);
}
