import type { LevelLimits } from '../config/types.js';
import { LATENCY_KINDS } from './stats.js';
import { openBytes, tierLoad, type ReadingSources } from './sources.js';
import type { LatencyKind as DocumentLatencyKind, StatsDocument } from './stats-document.js';

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
  const tiers = Object.values(config.tiers).map((t) => {
    const { customers, connections } = load.get(t.name) ?? { customers: 0, connections: 0 };
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
  const doc: StatsDocument = {
    uptimeSeconds: Math.round((Date.now() - src.startedAt) / 1000),
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

export function levelCaps(l: LevelLimits): { down: number | null; up: number | null } {
  return { down: capOf(l.down), up: capOf(l.up) };
}
