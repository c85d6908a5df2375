/**
 * The admin API for tiers, customers and connections, JSON in and out:
 *
 *   GET    /tiers              GET /tiers/:name       PUT /tiers/:name      (a tier object as in the config)
 *   DELETE /tiers/:name        (refused with 409 while a customer, defaultTier or a connection uses it)
 *   GET    /customers          GET /customers/:id     PUT /customers/:id    ({"tier": ..., "match": ...})
 *   DELETE /customers/:id
 *   GET    /connections
 *
 * A change is validated by the config's own code (400 with the key path, and nothing changes
 * when it fails), becomes part of the runtime state, is applied to the shaper at once — live
 * connections included — and is then saved to the state file.
 */
import { parseCustomerBody, parseTierBody } from '../config/load.js';
import { isPlainObject } from '../config/fly.js';
import { minimumsOfTiers } from '../config/levels.js';
import type { ConfigStore } from '../config/store.js';
import type { CustomerConfig, LevelLimits, TierConfig } from '../config/types.js';
import { ConfigError, ProxyError } from '../errors.js';
import type { Connection } from '../server/connection.js';
import type { CustomerState } from '../shaping/shaper.js';
import { tierLoad } from '../observe/sources.js';
import type { Router } from './router.js';
import { registerUsageApi, type UsageSource } from './usage.js';

/** A rate in bytes/s, or "unlimited" (JSON has no Infinity). */
export type RateView = number | 'unlimited';

export interface LevelView {
  down: RateView;
  up: RateView;
  burstDown?: number;
  burstUp?: number;
  peakDown?: number;
  peakUp?: number;
  minDown?: number;
  minUp?: number;
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
  /** which data plane moves its bytes: "native" (the splice relay) or "js" */
  dataPlane: 'native' | 'js';
}

/** What the admin API reads of the proxy, and the one change it may make (through the config store). */
export interface AdminApiParts {
  /** the config in force, its runtime changes, and applyRuntime() to change them */
  store: Pick<ConfigStore, 'config' | 'base' | 'runtime' | 'fromRuntime' | 'draft' | 'applyRuntime'>;
  /** the shaper's customers (configured and per-address) */
  customers: ReadonlyMap<string, CustomerState>;
  /** the open connections */
  connections: { forEach(visit: (c: Connection) => void): void };
  /** a connection's current rates (sampled once a second) */
  rates(c: Connection): { up: number; down: number };
  /** fleet mode: tell the other instances about a change */
  publish?: (hash: 'tiers' | 'customers', field: string, value: unknown) => Promise<unknown>;
  /** usage accounting (GET /usage, usage.ts) */
  usage: UsageSource;
}

/** Adds the tier, customer, connection and usage routes to `router`. */
export function registerAdminApi(router: Router, parts: AdminApiParts): void {
  const { store, customers } = parts;
  registerUsageApi(router, parts.usage);

  const tierView = (tier: TierConfig, load = tierLoad(customers.values()).get(tier.name)): TierView => ({
    name: tier.name,
    source: store.fromRuntime('tier', tier.name) ? 'runtime' : 'config',
    rtt: tier.rtt,
    weight: tier.weight,
    connection: levelView(tier.connection),
    customer: levelView(tier.customer),
    total: levelView(tier.total),
    maxConnections: tier.maxConnections ?? null,
    connectionRate: tier.connectionRate ?? null,
    customers: load?.customers ?? 0,
    connections: load?.connections ?? 0,
  });

  const customerView = (c: CustomerConfig): CustomerView => ({
    id: c.id,
    tier: c.tier,
    match: c.match,
    source: store.fromRuntime('customer', c.id) ? 'runtime' : 'config',
    dynamic: false,
    connections: customers.get(c.id)?.connections.size ?? 0,
  });

  /** What uses a tier: customers (configured or runtime), defaultTier, live per-address customers. */
  const tierUsers = (name: string): string[] => {
    const users: string[] = [];
    const configured = store.config.customers.filter((c) => c.tier === name).map((c) => c.id);
    if (configured.length > 0) users.push(`customers ${configured.join(', ')}`);
    if (store.config.defaultTier === name) users.push('it is defaultTier');
    let live = 0;
    for (const c of customers.values()) if (c.tier === name) live += c.connections.size;
    if (live > 0) users.push(`${live} open connection${live === 1 ? '' : 's'}`);
    return users;
  };

  const tierNamed = (name: string): TierConfig => {
    const tiers = store.config.tiers;
    const tier = Object.hasOwn(tiers, name) ? tiers[name] : undefined;
    if (!tier) throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no tier ${JSON.stringify(name)} (tiers: ${Object.keys(tiers).join(', ') || 'none'})`);
    return tier;
  };

  router
    .on('GET', '/tiers', () => {
      const load = tierLoad(customers.values());
      return Object.values(store.config.tiers).map((t) => tierView(t, load.get(t.name)));
    })
    .on('GET', '/tiers/:name', (req) => tierView(tierNamed(req.params['name']!)))
    .on('PUT', '/tiers/:name', async (req) => {
      const name = req.params['name']!;
      const tier = parseTierBody(name, req.body); // 400 with the key path; nothing has changed yet
      const mins = minimumsOfTiers({ ...store.config.tiers, [name]: tier }, store.config.global);
      if (mins.length > 0) throw new ConfigError(mins);
      const next = store.draft();
      next.tiers[name] = req.body;
      await store.applyRuntime(next);
      await parts.publish?.('tiers', name, req.body);
      return tierView(tierNamed(name));
    })
    .on('DELETE', '/tiers/:name', async (req) => {
      const name = req.params['name']!;
      const stale = Object.hasOwn(store.runtime.tiers, name) && store.runtime.tiers[name] !== null;
      if (!stale) tierNamed(name); // 404 for a tier that does not exist
      const users = tierUsers(name);
      if (users.length > 0) throw new ProxyError('SHAPER_ERR_ADMIN_CONFLICT', `tier ${JSON.stringify(name)} is in use (${users.join('; ')}): move them to another tier first`);
      const next = store.draft();
      // A tier of the config is deleted with a marker; one made at runtime is simply forgotten.
      if (Object.hasOwn(store.base.tiers, name)) next.tiers[name] = null;
      else delete next.tiers[name];
      await store.applyRuntime(next);
      await parts.publish?.('tiers', name, next.tiers[name]);
      return { deleted: name };
    })
    .on('GET', '/customers', () => [
      ...store.config.customers.map(customerView),
      ...[...customers.values()].filter((c) => !c.configured).map(dynamicView),
    ])
    .on('GET', '/customers/:id', (req) => {
      const id = req.params['id']!;
      const configured = store.config.customers.find((c) => c.id === id);
      if (configured) return customerView(configured);
      const dynamic = customers.get(id);
      if (dynamic && !dynamic.configured) return dynamicView(dynamic);
      throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no customer ${JSON.stringify(id)}`);
    })
    .on('PUT', '/customers/:id', async (req) => {
      const id = req.params['id']!;
      const body = req.body;
      parseCustomerBody(id, body, Object.keys(store.config.tiers), store.config.apps.map((a) => a.name));
      // In a config a missing match means "every connection"; over the API that is too easy to
      // do by accident, so the match must be written out ({} for every connection).
      if (!isPlainObject(body) || !Object.hasOwn(body, 'match')) {
        throw new ConfigError([`${customerPath(id)}.match: required (e.g. {"sources": ["10.1.0.0/16"]}; {} matches every connection)`]);
      }
      const { id: _id, ...stored } = body;
      const next = store.draft();
      next.customers[id] = stored;
      await store.applyRuntime(next);
      await parts.publish?.('customers', id, stored);
      return customerView(store.config.customers.find((c) => c.id === id)!);
    })
    .on('DELETE', '/customers/:id', async (req) => {
      const id = req.params['id']!;
      // A runtime entry that is not in force (its tier or app is gone) can be deleted too.
      const stale = Object.hasOwn(store.runtime.customers, id) && store.runtime.customers[id] !== null;
      if (!stale && !store.config.customers.some((c) => c.id === id)) {
        const dynamic = customers.get(id);
        const why = dynamic ? ` (${JSON.stringify(id)} is a source address under defaultTier, not a configured customer)` : '';
        throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no customer ${JSON.stringify(id)}${why}`);
      }
      const next = store.draft();
      // A customer of the config is deleted with a marker; one made at runtime is simply forgotten.
      if (store.base.customers.some((c) => c.id === id)) next.customers[id] = null;
      else delete next.customers[id];
      await store.applyRuntime(next);
      await parts.publish?.('customers', id, next.customers[id]);
      return { deleted: id };
    })
    .on('GET', '/connections', () => {
      const now = Date.now();
      const list: ConnectionView[] = [];
      parts.connections.forEach((c) => list.push(connectionView(c, parts.rates(c), now)));
      return list;
    });
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
    ...(level.peakDown !== undefined ? { peakDown: level.peakDown } : {}),
    ...(level.peakUp !== undefined ? { peakUp: level.peakUp } : {}),
    ...(level.minDown !== undefined ? { minDown: level.minDown } : {}),
    ...(level.minUp !== undefined ? { minUp: level.minUp } : {}),
  };
}

function dynamicView(c: CustomerState): CustomerView {
  return { id: c.id, tier: c.tier, match: { sources: [c.id] }, source: 'defaultTier', dynamic: true, connections: c.connections.size };
}

function connectionView(c: Connection, rate: { up: number; down: number }, now: number): ConnectionView {
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
    dataPlane: c.dataPlane,
  };
}
