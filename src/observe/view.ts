import type { LevelLimits, ProxyConfig } from '../config/types.js';
import type { CustomerState } from '../shaping/shaper.js';
import { VERSION } from '../version.js';
import { LATENCY_KINDS } from './stats.js';
import { openBytes, tierLoad, type ReadingSources } from './sources.js';
import type { Binding, LatencyKind as DocumentLatencyKind, StatsDocument } from './stats-document.js';

// The page shows latencies by kind: every kind the server measures must be one the document declares.
LATENCY_KINDS satisfies readonly DocumentLatencyKind[];

const capOf = (rate: number): number | null => (Number.isFinite(rate) ? rate : null);
const round = (x: number) => Math.round(x * 10) / 10;

/** The `GET /stats` document (also printed on SIGUSR1 / SIGUSR2); its shape is declared in stats-document.ts. */
export function statsView(src: ReadingSources, withHistory = false): StatsDocument {
  const stats = src.stats;
  const config = src.config();
  const open = openBytes(src.connections);
  const load = tierLoad(src.customers());
  const reach = customerReach(src.customers(), config);
  const tiers = Object.values(config.tiers).map((t) => {
    const { customers, connections } = load.get(t.name) ?? { customers: 0, connections: 0 };
    const active = reach.get(t.name);
    const r = stats.tierRates.get(t.name);
    return {
      name: t.name,
      connections,
      customers,
      rateDown: round(r?.down ?? 0),
      rateUp: round(r?.up ?? 0),
      capDown: capOf(t.total.down),
      capUp: capOf(t.total.up),
      customerCapDown: capOf(t.customer.down),
      customerCapUp: capOf(t.customer.up),
      connectionCapDown: capOf(t.connection.down),
      connectionCapUp: capOf(t.connection.up),
      activeCustomers: active?.customers ?? 0,
      // No connection open: what the first one could move.
      bindingDown: binding(t.total.down, config.global.down, active?.down ?? Math.min(t.customer.down, t.connection.down)),
      bindingUp: binding(t.total.up, config.global.up, active?.up ?? Math.min(t.customer.up, t.connection.up)),
      latency: stats.latency(stats.byTier, t.name),
    };
  });
  // One pass over the connections: per app counts, per customer bytes and rates.
  const byApp = new Map<string, number>();
  const byCustomer = new Map<unknown, { rateUp: number; rateDown: number; bytesUp: number; bytesDown: number }>();
  src.connections.forEach((conn) => {
    byApp.set(conn.appName, (byApp.get(conn.appName) ?? 0) + 1);
    const cust = conn.shaped?.customer;
    if (!cust) return;
    let sum = byCustomer.get(cust);
    if (!sum) byCustomer.set(cust, (sum = { rateUp: 0, rateDown: 0, bytesUp: 0, bytesDown: 0 }));
    const r = src.rates(conn);
    sum.rateUp += r.up;
    sum.rateDown += r.down;
    sum.bytesUp += conn.bytesUp;
    sum.bytesDown += conn.bytesDown;
  });
  const apps = config.apps.map((a) => ({
    name: a.name,
    protocol: a.protocol,
    connections: byApp.get(a.name) ?? 0,
    targets: src.targets(a.name).map((t) => ({ address: t.address, health: t.health, active: t.active })),
    latency: stats.latency(stats.byApp, a.name),
  }));
  const customers = [...src.customers()].map((c) => {
    const sum = byCustomer.get(c) ?? { rateUp: 0, rateDown: 0, bytesUp: 0, bytesDown: 0 };
    return { id: c.id, tier: c.tier, dynamic: !c.configured, connections: c.connections.size, rateDown: round(sum.rateDown), rateUp: round(sum.rateUp), bytesDown: sum.bytesDown, bytesUp: sum.bytesUp };
  });
  const file = src.configFile();
  const fleet = src.fleet();
  const doc: StatsDocument = {
    version: VERSION,
    uptimeSeconds: Math.round((Date.now() - src.startedAt) / 1000),
    config: file && { file: file.file, hash: file.hash, loadedAt: file.loadedAt, lastReload: file.lastReload, reloads: { ...file.reloads } },
    fleet: fleet && {
      instance: fleet.instance,
      redis: fleet.redis,
      fallback: fleet.fallback,
      rebalances: fleet.rebalances,
      lastRebalance: fleet.lastRebalance,
      members: fleet.members,
      shares: fleet.shares,
    },
    connections: {
      active: src.connections.size,
      total: stats.connectionsTotal,
      rejected: stats.rejected,
      byReason: Object.fromEntries(stats.byReason),
      refused: Object.fromEntries(stats.refused),
      tlsHandshakeFailures: { client: stats.byReason.get('tls_handshake') ?? 0, target: stats.targetTlsFailures },
    },
    bytes: { up: stats.closedBytesUp + open.up, down: stats.closedBytesDown + open.down },
    latency: stats.totalLatency(),
    tiers,
    apps,
    customers,
    foo: stats.foo.toJSON(),
    plans: src.plans(),
  };
  if (withHistory) {
    doc.history = {
      t: stats.historyTimes,
      tiers: Object.fromEntries([...stats.tierRates].map(([name, r]) => [name, r.history])),
    };
  }
  return doc;
}

/**
 * Per tier, its customers with open connections and what they may move each way: each the lesser
 * of its customer cap and the connection cap × its connections, summed.
 */
function customerReach(customers: Iterable<CustomerState>, config: ProxyConfig): Map<string, { customers: number; down: number; up: number }> {
  const reach = new Map<string, { customers: number; down: number; up: number }>();
  for (const c of customers) {
    const n = c.connections.size;
    const tier = config.tiers[c.tier];
    if (n === 0 || !tier) continue;
    let r = reach.get(c.tier);
    if (!r) reach.set(c.tier, (r = { customers: 0, down: 0, up: 0 }));
    r.customers++;
    r.down += Math.min(tier.customer.down, tier.connection.down * n);
    r.up += Math.min(tier.customer.up, tier.connection.up * n);
  }
  return reach;
}

/** The least of the tier's total, the global cap and its customers' reach. */
function binding(total: number, global: number, customers: number): Binding {
  let cap = total;
  let by: Binding['by'] = 'total';
  if (global < cap) [cap, by] = [global, 'global'];
  if (customers < cap) [cap, by] = [customers, 'customers'];
  return Number.isFinite(cap) ? { cap, by } : { cap: null, by: 'none' };
}

export function levelCaps(l: LevelLimits): { down: number | null; up: number | null } {
  return { down: capOf(l.down), up: capOf(l.up) };
}
