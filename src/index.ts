import net from 'node:net';
import type { AppConfig, ProxyConfig } from './config/types.js';
import type { Logger } from './log.js';
import { realClock, type Clock } from './clock.js';
import { RetryingListen } from './server/listen.js';
import { AcceptPause, isFdExhaustion, SourceLimits, type RefuseReason } from './server/limits.js';
import { Connection, PROXY_HEADER_TIMEOUT_MS, SNI_PREREAD_TIMEOUT_MS, type ConnectionSummary } from './server/connection.js';
import { TlsContexts } from './server/tls.js';
import { isProxyError } from './errors.js';
import { Upstreams } from './upstream/upstreams.js';
import { HealthChecker } from './upstream/health.js';
import { AdminServer } from './admin/server.js';
import { Router } from './admin/router.js';
import { Shaper } from './shaping/shaper.js';
import { registerAdminApi, type AdminApi } from './admin/api.js';
import { RuntimeChanges } from './admin/runtime.js';
import { Observer } from './observe/observer.js';
import { statsView } from './observe/view.js';
import { createMetrics, type Metrics } from './observe/metrics.js';

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
  /** ms a client on an `sniPreread` port has to send its ClientHello. */
  sniPrereadTimeoutMs = SNI_PREREAD_TIMEOUT_MS;
  /** The TLS contexts of the apps with `tls`, rebuilt from the files on every (re)load. */
  readonly tls: TlsContexts;

  constructor(config: ProxyConfig, deps: ProxyDeps) {
    this.config = config;
    this.baseConfig = config;
    this.log = deps.log;
    this.runtime = new RuntimeChanges(this.log);
    this.clock = deps.clock ?? realClock;
    this.upstreams.apply(config.apps);
    this.tls = new TlsContexts(this.log);
    this.tls.apply(config.apps);
    this.health = new HealthChecker(this.upstreams, config.health, this.log);
    this.shaper = new Shaper(config, this.clock);
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

  async start(): Promise<void> {
    await this.runtime.load(this.baseConfig);
    this.config = this.runtime.effective(this.baseConfig);
    this.shaper.apply(this.config);
    await this.observer.start();
    this.#api.start();
    this.health.start();
    this.#syncListeners();
    this.#syncAdmin();
    // Wait for the ports that can bind now; busy ones keep retrying behind.
    await Promise.race([
      Promise.all([...this.#listeners.values()].map((l) => l.listen.start())),
      new Promise((r) => setTimeout(r, 200)),
    ]);
  }

  /** Apply a new, already validated config without dropping connections. */
  reload(config: ProxyConfig): void {
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
    for (const address of added) {
      const t = this.upstreams.byAddress.get(address);
      if (t) void this.health.check(t);
    }
    this.log.info({ apps: config.apps.length, targetsAdded: added, targetsRemoved: removed }, 'config reloaded');
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
      this.#refuse(socket, source, refused, appName);
      return;
    }
    const conn = new Connection(socket, app, {
      onTargetFailed: (target, err) => {
        if (isProxyError(err, 'SHAPER_ERR_TARGET_TLS')) {
          this.stats.targetTlsFailed();
          // Once per failed dial (the target is then down): OpenSSL's reason is what the operator needs.
          this.log.warn({ app: appName, target: target.address, error: err.message }, 'TLS with the target failed; trying the next');
        }
        this.health.recordFailure(target, err, true);
      },
      admit: this.shaper.active ? (c) => this.#admit(c) : undefined,
      stages: (c) => (c.shaped ? this.shaper.stages(c.shaped, `conn:${c.id}`) : undefined),
      // A TLS socket takes no onread: its down flow reads through 'data' (TLS allocates per read anyway).
      backendRead: (c) => (c.shaped && !c.app.config.targetTls ? this.shaper.backendRead() : undefined),
      ...(tls ? { tls } : {}),
      ...(this.config.observe.latency
        ? { onConnected: (c: Connection, ms: number) => this.observer.connected(c, ms), onFirstByte: (c: Connection, ms: number) => this.observer.firstByte(c, ms) }
        : {}),
      analyzer: this.config.observe.foo ? (c) => this.observer.analyzer(c) : undefined,
      proxyHeaderTimeoutMs: this.proxyHeaderTimeoutMs,
      sniPrereadTimeoutMs: this.sniPrereadTimeoutMs,
      onClose: (c, summary) => {
        this.limits.release(source);
        this.#onClose(c, summary);
      },
    });
    this.connections.add(conn);
    this.observer.opened();
    void conn.start();
  }

  #refuse(socket: net.Socket, source: string | undefined, reason: RefuseReason, appName: string): void {
    socket.on('error', () => {});
    socket.destroy();
    this.stats.refuse(reason);
    if (reason === 'resource_exhausted') return; // logged once per pause episode
    const log = this.limits.shouldLog(source);
    if (log) this.log.warn({ app: appName, client: source, reason, suppressed: log.suppressed }, 'connection refused by abuse limits');
  }

  /** Out of file descriptors (an accept or a dial failed with EMFILE / ENFILE): pause accepting for a while. */
  #exhausted(err: { code?: string | undefined }, appName: string): void {
    const pause = this.acceptPause.exhausted();
    if (pause?.firstOfEpisode) {
      this.log.error({ app: appName, code: err.code, pauseMs: pause.ms, connections: this.connections.size }, 'out of file descriptors: accepting paused, open connections keep going');
    }
  }

  async #admit(conn: Connection): Promise<boolean> {
    const verdict = await this.shaper.admit({
      clientAddress: conn.clientAddress,
      app: conn.appName,
      port: conn.localPort,
      ...(conn.serverName !== undefined ? { sni: conn.serverName } : {}),
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
      apps: this.config.apps.map((app) => ({
        name: app.name,
        balance: app.balance,
        protocol: app.protocol,
        ...(app.tls ? { tls: this.tls.certificate(app.name) ?? null } : {}),
        listeners: listeners.filter((l) => l.app === app.name),
        targets: (this.upstreams.apps.get(app.name)?.targets ?? []).map((t) => ({
          address: t.address,
          weight: t.weight,
          health: t.health,
          active: t.active,
          total: t.total,
          ...(t.lastError ? { lastError: t.lastError } : {}),
        })),
      })),
    };
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
    this.shaper.stop();
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
