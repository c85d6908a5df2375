/**
 * The admin API for tiers, customers and connections, JSON in and out:
 *
 *   GET    /tiers              GET /tiers/:name       PUT /tiers/:name      (a tier object as in the config)
 *   GET    /customers          GET /customers/:id     PUT /customers/:id    ({"tier": ..., "match": ...})
 *   DELETE /customers/:id
 *   GET    /connections
 *
 * A change is validated by the config's own code (400 with the key path, and nothing changes
 * when it fails), becomes part of the runtime state, is applied to the shaper at once — live
 * connections included — and is then saved to the state file.
 */
import { ConfigError, parseCustomerBody, parseTierBody } from '../config/load.js';
import { isPlainObject } from '../config/fly.js';
import type { CustomerConfig, LevelLimits, TierConfig } from '../config/types.js';
import { ProxyError } from '../errors.js';
import type { Proxy } from '../index.js';
import type { Connection } from '../server/connection.js';
import type { CustomerState } from '../shaping/shaper.js';
import { dashboardRoutes } from './dashboard.js';
import { cloneRuntime, type RuntimeState } from './runtime.js';

/** A rate in bytes/s, or "unlimited" (JSON has no Infinity). */
export type RateView = number | 'unlimited';

export interface LevelView {
  down: RateView;
  up: RateView;
  burstDown?: number;
  burstUp?: number;
}

export interface TierView {
  name: string;
  /** runtime: created or replaced through the admin API */
  source: 'config' | 'runtime';
  /** ms */
  rtt: number;
  weight: number;
  connection: LevelView;
  customer: LevelView;
  total: LevelView;
  maxConnections: number | null;
  /** new connections per customer: `count` per `per` ms */
  connectionRate: { count: number; per: number } | null;
  customers: number;
  connections: number;
}

export interface CustomerView {
  id: string;
  tier: string;
  match: CustomerConfig['match'];
  /** defaultTier: one source address matched by no customer (dynamic) */
  source: 'config' | 'runtime' | 'defaultTier';
  dynamic: boolean;
  connections: number;
}

export interface ConnectionView {
  id: number;
  client: string;
  app: string;
  target: string | null;
  customer: string | null;
  tier: string | null;
  /** the TLS server name the client sent (apps with tls or sniPreread), or null */
  sni: string | null;
  /** the subject of the client's verified certificate (apps with tls.clientAuth), or null */
  clientCert: string | null;
  /** ISO time */
  started: string;
  durationMs: number;
  bytesUp: number;
  bytesDown: number;
  /** bytes/s over the last sample (about a second) */
  rateUp: number;
  rateDown: number;
}

export interface AdminApi {
  readonly sampler: RateSampler;
  /** Starts the rate sampler. */
  start(): void;
  stop(): void;
}

/** Adds the routes to `proxy.router`; the returned handle runs the connections' rate sampler. */
export function registerAdminApi(proxy: Proxy): AdminApi {
  const sampler = new RateSampler(() => proxy.connections);

  const tierView = (tier: TierConfig): TierView => {
    let customers = 0;
    let connections = 0;
    for (const c of proxy.shaper.customers.values()) {
      if (c.tier !== tier.name) continue;
      customers++;
      connections += c.connections.size;
    }
    return {
      name: tier.name,
      source: proxy.runtime.runtimeTiers.has(tier.name) ? 'runtime' : 'config',
      rtt: tier.rtt,
      weight: tier.weight,
      connection: levelView(tier.connection),
      customer: levelView(tier.customer),
      total: levelView(tier.total),
      maxConnections: tier.maxConnections ?? null,
      connectionRate: tier.connectionRate ?? null,
      customers,
      connections,
    };
  };

  const customerView = (c: CustomerConfig): CustomerView => ({
    id: c.id,
    tier: c.tier,
    match: c.match,
    source: proxy.runtime.runtimeCustomers.has(c.id) ? 'runtime' : 'config',
    dynamic: false,
    connections: proxy.shaper.customers.get(c.id)?.connections.size ?? 0,
  });

  const tierNamed = (name: string): TierConfig => {
    const tier = Object.hasOwn(proxy.config.tiers, name) ? proxy.config.tiers[name] : undefined;
    if (!tier) throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no tier ${JSON.stringify(name)} (tiers: ${Object.keys(proxy.config.tiers).join(', ') || 'none'})`);
    return tier;
  };

  /** Makes `next` the runtime state, applies the result to live connections, then saves it. */
  const commit = async (next: RuntimeState): Promise<void> => {
    proxy.config = proxy.runtime.effective(proxy.baseConfig, next);
    proxy.shaper.apply(proxy.config);
    try {
      await proxy.runtime.persist();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      proxy.log.error({ error: message }, 'admin change applied but not saved');
      throw new ProxyError('SHAPER_ERR_STATE', `${message}; the change is in force but will be lost at restart`, { cause: err });
    }
  };

  proxy.router
    .on('GET', '/tiers', () => Object.values(proxy.config.tiers).map(tierView))
    .on('GET', '/tiers/:name', (req) => tierView(tierNamed(req.params['name']!)))
    .on('PUT', '/tiers/:name', async (req) => {
      const name = req.params['name']!;
      parseTierBody(name, req.body); // 400 with the key path; nothing has changed yet
      const next = cloneRuntime(proxy.runtime.state);
      next.tiers[name] = req.body;
      await commit(next);
      await proxy.fleet?.publish('tiers', name, req.body);
      return tierView(tierNamed(name));
    })
    .on('GET', '/customers', () => [
      ...proxy.config.customers.map(customerView),
      ...[...proxy.shaper.customers.values()].filter((c) => !c.configured).map(dynamicView),
    ])
    .on('GET', '/customers/:id', (req) => {
      const id = req.params['id']!;
      const configured = proxy.config.customers.find((c) => c.id === id);
      if (configured) return customerView(configured);
      const dynamic = proxy.shaper.customers.get(id);
      if (dynamic && !dynamic.configured) return dynamicView(dynamic);
      throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no customer ${JSON.stringify(id)}`);
    })
    .on('PUT', '/customers/:id', async (req) => {
      const id = req.params['id']!;
      const body = req.body;
      parseCustomerBody(id, body, Object.keys(proxy.config.tiers), proxy.config.apps.map((a) => a.name));
      // In a config a missing match means "every connection"; over the API that is too easy to
      // do by accident, so the match must be written out ({} for every connection).
      if (!isPlainObject(body) || !Object.hasOwn(body, 'match')) {
        throw new ConfigError([`${customerPath(id)}.match: required (e.g. {"sources": ["10.1.0.0/16"]}; {} matches every connection)`]);
      }
      const { id: _id, ...stored } = body;
      const next = cloneRuntime(proxy.runtime.state);
      next.customers[id] = stored;
      await commit(next);
      await proxy.fleet?.publish('customers', id, stored);
      return customerView(proxy.config.customers.find((c) => c.id === id)!);
    })
    .on('DELETE', '/customers/:id', async (req) => {
      const id = req.params['id']!;
      // A runtime entry that is not in force (its tier or app is gone) can be deleted too.
      const stale = Object.hasOwn(proxy.runtime.state.customers, id) && proxy.runtime.state.customers[id] !== null;
      if (!stale && !proxy.config.customers.some((c) => c.id === id)) {
        const dynamic = proxy.shaper.customers.get(id);
        const why = dynamic ? ` (${JSON.stringify(id)} is a source address under defaultTier, not a configured customer)` : '';
        throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no customer ${JSON.stringify(id)}${why}`);
      }
      const next = cloneRuntime(proxy.runtime.state);
      // A customer of the config is deleted with a marker; one made at runtime is simply forgotten.
      if (proxy.baseConfig.customers.some((c) => c.id === id)) next.customers[id] = null;
      else delete next.customers[id];
      await commit(next);
      await proxy.fleet?.publish('customers', id, next.customers[id]);
      return { deleted: id };
    })
    .on('GET', '/connections', () => [...proxy.connections].map((c) => connectionView(c, sampler)));
  dashboardRoutes(proxy.router);

  return {
    sampler,
    start: () => sampler.start(),
    stop: () => sampler.stop(),
  };
}

function customerPath(id: string): string {
  return /^[A-Za-z0-9_-]+$/.test(id) ? `customers.${id}` : `customers[${JSON.stringify(id)}]`;
}

const rateView = (rate: number): RateView => (Number.isFinite(rate) ? rate : 'unlimited');

function levelView(level: LevelLimits): LevelView {
  return {
    down: rateView(level.down),
    up: rateView(level.up),
    ...(level.burstDown !== undefined ? { burstDown: level.burstDown } : {}),
    ...(level.burstUp !== undefined ? { burstUp: level.burstUp } : {}),
  };
}

function dynamicView(c: CustomerState): CustomerView {
  return { id: c.id, tier: c.tier, match: { sources: [c.id] }, source: 'defaultTier', dynamic: true, connections: c.connections.size };
}

function connectionView(c: Connection, sampler: RateSampler): ConnectionView {
  const now = Date.now();
  const rate = sampler.rates(c, now);
  return {
    id: c.id,
    client: `${c.clientAddress}:${c.clientPort}`,
    app: c.appName,
    target: c.target?.address ?? null,
    customer: c.shaped?.customer.id ?? null,
    tier: c.shaped?.customer.tier ?? null,
    sni: c.serverName ?? null,
    clientCert: c.clientCert ?? null,
    started: new Date(c.startedAt).toISOString(),
    durationMs: now - c.startedAt,
    bytesUp: c.bytesUp,
    bytesDown: c.bytesDown,
    rateUp: Math.round(rate.up),
    rateDown: Math.round(rate.down),
  };
}

// ---- current rates ------------------------------------------------------------------------------

/** What the sampler needs of a connection. */
export interface Metered {
  readonly startedAt: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

interface Sample {
  at: number;
  up: number;
  down: number;
  rateUp: number;
  rateDown: number;
}

/**
 * Each connection's bytes per second each way, from the byte counters' change between two
 * samples. One timer for all connections; samples live in a WeakMap, so a closed connection's
 * go with it.
 */
export class RateSampler {
  readonly #samples = new WeakMap<Metered, Sample>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    /** forEach, not for-of: iterating a Set made an object per connection per sample. */
    private readonly items: () => { forEach(visit: (c: Metered) => void): void },
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Each connection's sample is one object, updated in place: with ten thousand connections a new
   * one per connection per second was most of the garbage an idle proxy made.
   */
  sample(now = Date.now()): void {
    this.items().forEach((c) => {
      let s = this.#samples.get(c);
      if (!s) {
        s = { at: c.startedAt, up: 0, down: 0, rateUp: 0, rateDown: 0 };
        this.#samples.set(c, s);
      }
      const ms = now - s.at;
      if (ms <= 0) return;
      const up = c.bytesUp;
      const down = c.bytesDown;
      s.rateUp = ((up - s.up) * 1000) / ms;
      s.rateDown = ((down - s.down) * 1000) / ms;
      s.at = now;
      s.up = up;
      s.down = down;
    });
  }

  /** The last sample's rates; before the first one, the average since the connection started. */
  rates(c: Metered, now = Date.now()): { up: number; down: number } {
    const s = this.#samples.get(c);
    // A sample made at the connection's start has no rate yet.
    if (s && s.at !== c.startedAt) return { up: s.rateUp, down: s.rateDown };
    const ms = now - c.startedAt;
    return ms > 0 ? { up: (c.bytesUp * 1000) / ms, down: (c.bytesDown * 1000) / ms } : { up: 0, down: 0 };
  }
}
