import type { LevelLimits } from '../config/types.js';
import type { Proxy } from '../index.js';
import { LATENCY_KINDS } from './stats.js';
import type { LatencyKind as DocumentLatencyKind, StatsDocument } from './stats-document.js';

// The page shows latencies by kind: every kind the server measures must be one the document declares.
LATENCY_KINDS satisfies readonly DocumentLatencyKind[];

const capOf = (rate: number): number | null => (Number.isFinite(rate) ? rate : null);
const round = (x: number) => Math.round(x * 10) / 10;

/** Sum of the bytes the open connections have moved so far. */
export function openBytes(proxy: Proxy): { up: number; down: number } {
  let up = 0;
  let down = 0;
  for (const c of proxy.connections) {
    up += c.bytesUp;
    down += c.bytesDown;
  }
  return { up, down };
}

/** The `GET /stats` document (also printed on SIGUSR1 / SIGUSR2); its shape is declared in stats-document.ts. */
export function statsView(proxy: Proxy, withHistory = false): StatsDocument {
  const stats = proxy.stats;
  const open = openBytes(proxy);
  const tiers = Object.values(proxy.config.tiers).map((t) => {
    let customers = 0;
    let connections = 0;
    for (const c of proxy.shaper.customers.values()) {
      if (c.tier !== t.name) continue;
      customers++;
      connections += c.connections.size;
    }
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
  const byApp = new Map<string, number>();
  for (const c of proxy.connections) byApp.set(c.appName, (byApp.get(c.appName) ?? 0) + 1);
  const apps = proxy.config.apps.map((a) => ({
    name: a.name,
    protocol: a.protocol,
    connections: byApp.get(a.name) ?? 0,
    targets: (proxy.upstreams.apps.get(a.name)?.targets ?? []).map((t) => ({ address: t.address, health: t.health, active: t.active })),
    latency: stats.latency(stats.byApp, a.name),
  }));
  const customers = [...proxy.shaper.customers.values()].map((c) => {
    let rateUp = 0;
    let rateDown = 0;
    let bytesUp = 0;
    let bytesDown = 0;
    for (const conn of proxy.connections) {
      if (conn.shaped?.customer !== c) continue;
      const r = proxy.sampler.rates(conn);
      rateUp += r.up;
      rateDown += r.down;
      bytesUp += conn.bytesUp;
      bytesDown += conn.bytesDown;
    }
    return { id: c.id, tier: c.tier, dynamic: !c.configured, connections: c.connections.size, rateDown: round(rateDown), rateUp: round(rateUp), bytesDown, bytesUp };
  });
  const doc: StatsDocument = {
    uptimeSeconds: Math.round((Date.now() - proxy.startedAt) / 1000),
    connections: {
      active: proxy.connections.size,
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
