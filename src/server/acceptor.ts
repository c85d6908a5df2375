/**
 * The front door: a listener for every port of every app (retrying busy ports), and what happens
 * at accept before a connection exists: the abuse limits, the descriptor budget and the pause
 * while descriptors run out. An accepted socket becomes a Connection and joins the open ones.
 */
import net from 'node:net';
import { publish, type ConnectionInfo } from '../channels.js';
import type { Clock } from '../clock.js';
import type { AppConfig, ProxyConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { listeningFd, type HandedListener, type InheritedFds } from '../net/listen-fds.js';
import type { AppUpstream, Upstreams } from '../upstream/upstreams.js';
import type { Target } from '../upstream/target.js';
import { Connection, PROXY_HEADER_TIMEOUT_MS, type Analyzer, type ConnectionDeps, type ShapingPort } from './connection.js';
import { AccessRules } from './access.js';
import { AcceptPause, descriptorBudget, descriptorUse, SourceLimits, type RefuseReason } from './limits.js';
import { RetryingListen } from './listen.js';
import type { NativePort } from './native-path.js';
import type { OpenConnections } from './registry.js';
import type { TlsContexts } from './tls.js';

export interface ListenerStatus {
  app: string;
  host: string;
  port: number;
  boundPort: number | undefined;
  state: string;
  attempts: number;
  lastError?: string;
}

/** What the acceptor and its connections use of the rest of the proxy. */
export interface AcceptorParts {
  /** the proxy's token on its lifecycle events */
  owner: object;
  log: Logger;
  clock: Clock;
  upstreams: Upstreams;
  tls: TlsContexts;
  registry: OpenConnections;
  shaper: ShapingPort & { readonly active: boolean };
  health: { recordFailure(target: Target, error: Error, passive: boolean): void };
  /** the native data plane, once it runs (undefined: JavaScript only) */
  native(): (NativePort & { descriptors(): number }) | undefined;
  /** an analyser for a connection's bytes (the Foo analyser), if its app wants one */
  analyzer(conn: ConnectionInfo & { readonly app: AppUpstream }): Analyzer | null;
  /** listening descriptors handed over by the process this one upgrades */
  inherited?: InheritedFds;
}

interface PortListener {
  appName: string;
  listen: RetryingListen;
}

export class Acceptor {
  /** Abuse limits (config `limits`) checked at accept. */
  readonly limits: SourceLimits;
  /** Backoff of accepting while file descriptors run out (EMFILE / ENFILE). */
  readonly pause: AcceptPause;
  /** apps[].allow / deny, checked at accept (and on a PROXY header's client address). */
  readonly access = new AccessRules();
  /** ms a client on an `acceptProxyProtocol` port has to send its PROXY header. */
  proxyHeaderTimeoutMs = PROXY_HEADER_TIMEOUT_MS;
  readonly #parts: AcceptorParts;
  readonly #listeners = new Map<string, PortListener>();
  #config: ProxyConfig;
  #started = false;
  #stopping = false;
  #draining = false;
  #fdLimit: number | undefined;
  /** descriptors the proxied connections may use: the limit less what is open at start and a spare */
  #fdBudget: number | undefined;
  #deps: { key: string; deps: ConnectionDeps } | undefined;

  constructor(parts: AcceptorParts, config: ProxyConfig) {
    this.#parts = parts;
    this.#config = config;
    this.limits = new SourceLimits(config.limits, parts.clock);
    this.pause = new AcceptPause(parts.clock, () => parts.log.debug('accepting resumed'));
  }

  /** Sizes the descriptor budget (once, before the first listener), then listens on every app port. */
  async start(): Promise<void> {
    this.#budgetDescriptors();
    this.#started = true;
    this.configure(this.#config);
    // Wait for the ports that can bind now; busy ones keep retrying behind.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.#listeners.values()].map((l) => l.listen.start())),
      new Promise((r) => (timer = setTimeout(r, 200))),
    ]);
    clearTimeout(timer);
  }

  /** A new effective config: limits, and listeners added, kept or removed by port. */
  configure(config: ProxyConfig): void {
    this.#config = config;
    this.limits.configure(config.limits);
    this.access.configure(config.apps);
    if (!this.#started || this.#draining) return; // start() listens; undrain() does after a drain
    const wanted = new Map<string, AppConfig>();
    for (const app of config.apps) app.ports.forEach((port, i) => wanted.set(listenerKey(app.bind, port, app.name, i), app));
    for (const [key, l] of this.#listeners) {
      if (wanted.has(key)) continue;
      void l.listen.close();
      this.#listeners.delete(key);
      this.#parts.log.info({ app: l.appName, port: l.listen.port }, 'listener removed');
    }
    for (const [key, app] of wanted) {
      const existing = this.#listeners.get(key);
      if (existing) {
        existing.appName = app.name;
        continue;
      }
      const port = Number(key.split('|')[1]);
      const entry: PortListener = { appName: app.name, listen: undefined as unknown as RetryingListen };
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, keepAlive: true }, (socket) => this.#accept(socket, entry.appName));
      entry.listen = new RetryingListen(server, app.bind, port, this.#parts.log.child({ app: app.name }), `app:${app.name}`, this.#parts.clock);
      entry.listen.onExhausted = (err) => this.exhausted(err.code ?? 'EMFILE', app.name);
      entry.listen.inheritedFd = this.#parts.inherited?.take(`app:${key}`);
      this.#listeners.set(key, entry);
      if (!this.#stopping) void entry.listen.start();
    }
  }

  /** Every app listener and its state (the bound port differs from the config's for port 0). */
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

  /** The listening sockets' descriptors, for an upgrade to hand to the new process. */
  handoff(): HandedListener[] {
    const out: HandedListener[] = [];
    for (const [key, l] of this.#listeners) {
      const fd = l.listen.state === 'listening' ? listeningFd(l.listen.server) : -1;
      if (fd >= 0) out.push({ key: `app:${key}`, fd });
    }
    return out;
  }

  /** Draining (POST /drain): no listener, open connections go on; undrain() listens again. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Stop accepting until undrain(): every listener closes (the ports are free meanwhile); open connections go on. */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const l of this.#listeners.values()) void l.listen.close();
    this.#listeners.clear();
  }

  /** Accept again after a drain: a listener for every port of the config in force (busy ports retry). */
  undrain(): void {
    if (!this.#draining) return;
    this.#draining = false;
    this.configure(this.#config);
  }

  /** Stop accepting: every listener closes (open connections are the registry's). */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.pause.stop();
    await Promise.all([...this.#listeners.values()].map((l) => l.listen.close()));
  }

  /**
   * Out of file descriptors (the budget is full, or an accept or a dial failed with EMFILE /
   * ENFILE): pause accepting for a while; logged once per episode.
   */
  exhausted(code: string, app: string): void {
    const pause = this.pause.exhausted();
    if (!pause?.firstOfEpisode) return;
    this.#parts.log.error(
      { app, code, pauseMs: pause.ms, connections: this.#parts.registry.size, budget: this.limits.budget, fdLimit: this.#fdLimit },
      'out of file descriptors: accepting paused, open connections keep going',
    );
  }

  #accept(socket: net.Socket, appName: string): void {
    const app = this.#parts.upstreams.apps.get(appName);
    // Never plaintext on a TLS port (should its certificate not have loaded).
    if (!app || this.#stopping || this.#draining || (app.config.tls && !this.#parts.tls.get(appName))) {
      socket.destroy();
      return;
    }
    // Access control, abuse limits and descriptor exhaustion: refused before any dial. The native
    // data plane's pipes (two descriptors each, while bytes are in flight, and its pool) come off the budget.
    if (this.#fdBudget !== undefined) this.limits.budget = Math.max(0, Math.floor((this.#fdBudget - (this.#parts.native()?.descriptors() ?? 0)) / 2));
    const source = socket.remoteAddress;
    const refused = this.pause.paused ? 'resource_exhausted' : this.access.denied(appName, source) ? 'denied' : this.limits.admit(source);
    if (refused) {
      if (refused === 'resource_exhausted' && !this.pause.paused) this.exhausted('descriptor_budget', appName);
      this.#refuse(socket, source, refused, appName);
      return;
    }
    const conn = new Connection(socket, app, this.#connectionDeps());
    this.#parts.registry.add(conn);
    void conn.start();
  }

  #refuse(socket: net.Socket, source: string | undefined, reason: RefuseReason, app: string): void {
    socket.on('error', () => {});
    socket.destroy();
    this.#refused(source, reason, app);
  }

  /** A refusal counted, and logged at most once per source per 10 s. */
  #refused(source: string | undefined, reason: RefuseReason, app: string): void {
    publish('refused', { owner: this.#parts.owner, reason, app, source });
    if (reason === 'resource_exhausted') return; // logged once per pause episode
    const log = this.limits.shouldLog(source);
    if (!log) return;
    const why = reason === 'denied' ? 'connection refused: source not allowed (apps[].allow / deny)' : 'connection refused by abuse limits';
    this.#parts.log.warn({ app, client: source, reason, suppressed: log.suppressed }, why);
  }

  /** A PROXY header's client address refused on the app: counted and logged like a refusal at accept. */
  #deniedAfterHeader = (app: string, address: string): boolean => {
    if (!this.access.denied(app, address)) return false;
    this.#refused(address, 'denied', app);
    return true;
  };

  /** One deps object for all connections, rebuilt only when a setting it carries changed. */
  #connectionDeps(): ConnectionDeps {
    const p = this.#parts;
    const shaped = p.shaper.active;
    const { latency, foo } = this.#config.observe;
    const key = `${shaped}|${latency}|${foo}|${this.proxyHeaderTimeoutMs}|${p.native()?.plane ?? 'none'}`;
    if (this.#deps?.key === key) return this.#deps.deps;
    const deps: ConnectionDeps = {
      owner: p.owner,
      log: p.log,
      native: p.native(),
      shaping: shaped ? p.shaper : undefined,
      health: p.health,
      limits: this.limits,
      registry: p.registry,
      exhausted: (code, app) => this.exhausted(code, app),
      // The app's certificates as they are when the connection starts (a reload swaps them).
      tlsFor: (app) => p.tls.get(app),
      analyzer: foo ? (c) => p.analyzer(c) : undefined,
      measureFirstByte: latency,
      proxyHeaderTimeoutMs: this.proxyHeaderTimeoutMs,
      denied: this.#deniedAfterHeader,
    };
    this.#deps = { key, deps };
    return deps;
  }

  #budgetDescriptors(): void {
    const use = descriptorUse();
    if (!use) return;
    this.#fdLimit = use.limit;
    this.limits.budget = descriptorBudget(use);
    this.#fdBudget = 2 * this.limits.budget;
    const max = this.#config.limits?.maxConnections;
    const fields = { fdLimit: use.limit, fdOpen: use.open, budget: this.limits.budget };
    if (max !== undefined && max > this.limits.budget) {
      this.#parts.log.warn({ ...fields, maxConnections: max }, `limits.maxConnections ${max} needs ${2 * max} descriptors but ulimit -n is ${use.limit}: connections beyond ${this.limits.budget} will be refused (raise ulimit -n / LimitNOFILE)`);
    } else if (max === undefined) {
      this.#parts.log.info(fields, 'connections beyond the descriptor budget will be refused (raise ulimit -n for more)');
    }
  }
}

function listenerKey(bind: string, port: number, app: string, index: number): string {
  // Port 0 asks for any free port: each such entry is its own listener.
  return port === 0 ? `${bind}|0|${app}|${index}` : `${bind}|${port}`;
}
