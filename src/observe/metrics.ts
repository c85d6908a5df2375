/**
 * /metrics: the catalogue's metrics (catalog.ts) as prom-client objects. Counters and gauges are
 * read from the proxy's own state when Prometheus scrapes (collect()), so the data path pays
 * nothing for them; the latency histograms are fed as each value is recorded. The process metrics
 * (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, ...) are prom-client's standard ones,
 * collected from the start so their counters match /proc.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CATALOG, LATENCY_METRICS, type MetricKey, type MetricSpec } from './catalog.js';
import { openBytes, tierLoad, type FleetReadings, type ReadingSources } from './sources.js';

export interface Metrics {
  registry: Registry;
  /** The text exposition. */
  scrape(): Promise<string>;
}

/** What /metrics reads beyond /stats' sources. */
export interface MetricSources extends ReadingSources {
  readonly version: string;
  /** connections the descriptor limit leaves room for; undefined off Linux */
  budget(): number | undefined;
  /** the certificates each app with `tls` serves */
  certificates(): Iterable<{ app: string; cert: string; subject: string; validTo: string }>;
  /** reloads from the config file (null: the config did not come from a file) */
  reloads(): { reloads: { success: number; failure: number }; lastReload: { ok: boolean } | null; lastSuccessSeconds: number } | null;
}

type Labels = Record<string, string>;
/** What a mirrored counter reads: one total, or one per label set. */
type Reading = number | Iterable<readonly [Labels, number]>;

export function createMetrics(src: MetricSources, fleet: FleetReadings | null): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const stats = () => src.stats;
  const counter = (key: MetricKey, read: () => Reading): void => mirroredCounter(registry, CATALOG[key], read);
  const gauge = (key: MetricKey, collect: (g: Gauge) => void): void => {
    const s = CATALOG[key];
    new Gauge({ name: s.name, help: s.help, labelNames: [...s.labels], registers: [registry], collect() { this.reset(); collect(this); } });
  };

  // ---- connections ----
  counter('accepted', () => stats().connectionsTotal);
  counter('closed', () => labelled('reason', stats().byReason));
  counter('refused', () => [...labelled('reason', stats().refused), [{ reason: 'customer_limit' }, stats().rejected] as const]);
  gauge('active', (g) => {
    for (const a of src.config().apps) g.set({ app: a.name }, 0);
    src.connections.forEach((c) => g.inc({ app: c.appName }));
  });
  counter('tlsFailures', () => [
    [{ side: 'client' }, stats().byReason.get('tls_handshake') ?? 0],
    [{ side: 'target' }, stats().targetTlsFailures],
  ]);

  // ---- bytes and caps ----
  counter('bytes', () => {
    const open = openBytes(src.connections);
    return [
      [{ direction: 'up' }, stats().closedBytesUp + open.up],
      [{ direction: 'down' }, stats().closedBytesDown + open.down],
    ];
  });
  counter('tierBytes', () => {
    const out: [Labels, number][] = [];
    for (const [tier, b] of src.tierBytes()) out.push([{ tier, direction: 'up' }, b.up], [{ tier, direction: 'down' }, b.down]);
    return out;
  });
  gauge('tierConnections', (g) => {
    for (const t of Object.keys(src.config().tiers)) g.set({ tier: t }, 0);
    for (const [tier, load] of tierLoad(src.customers())) g.set({ tier }, load.connections);
  });
  gauge('cap', (g) => {
    const config = src.config();
    for (const t of Object.values(config.tiers)) {
      for (const [level, limits] of [['connection', t.connection], ['customer', t.customer], ['tier', t.total]] as const) {
        for (const direction of ['up', 'down'] as const) if (Number.isFinite(limits[direction])) g.set({ level, tier: t.name, direction }, limits[direction]);
      }
    }
    for (const direction of ['up', 'down'] as const) if (Number.isFinite(config.global[direction])) g.set({ level: 'global', tier: '', direction }, config.global[direction]);
  });

  // ---- targets ----
  gauge('targetUp', (g) => {
    for (const [app, targets] of src.apps()) for (const t of targets) g.set({ app, target: t.address }, t.healthy ? 1 : 0);
  });
  gauge('targetActive', (g) => {
    for (const [app, targets] of src.apps()) for (const t of targets) g.set({ app, target: t.address }, t.active);
  });
  gauge('targetLatency', (g) => {
    for (const [app, targets] of src.apps()) {
      for (const t of targets) {
        const { connectMs, firstByteMs } = t.latencyView();
        g.set({ app, target: t.address, phase: 'connect' }, connectMs / 1000);
        g.set({ app, target: t.address, phase: 'first_byte' }, firstByteMs / 1000);
      }
    }
  });
  counter('targetFailures', () => {
    const out: [Labels, number][] = [];
    for (const [app, targets] of src.apps()) for (const t of targets) out.push([{ app, target: t.address }, stats().targetFailures.get(`${app}|${t.address}`) ?? 0]);
    return out;
  });

  // ---- latencies: fed as recorded ----
  const histograms = new Map<string, Histogram>();
  for (const { key } of Object.values(LATENCY_METRICS)) {
    const s: MetricSpec = CATALOG[key];
    histograms.set(key, new Histogram({ name: s.name, help: s.help, labelNames: [...s.labels], buckets: [...s.buckets!], registers: [registry] }));
  }
  src.stats.onRecord = (kind, app, tier, ms) => {
    const m = LATENCY_METRICS[kind];
    const value = m.by === 'app' ? app : tier;
    if (value !== undefined) histograms.get(m.key)!.observe({ [m.by]: value }, ms / 1000);
  };

  // ---- Foo ----
  counter('fooMessages', () => {
    const f = stats().foo.toJSON();
    return [
      [{ type: 'req' }, f.msg_req],
      [{ type: 'ack' }, f.msg_ack],
      [{ type: 'nak' }, f.msg_nak],
      [{ type: 'invalid' }, f.msg_invalid],
    ];
  });
  gauge('fooRate', (g) => {
    const f = stats().foo.toJSON();
    g.set({ kind: 'request', window: '1s' }, f.request_rate_1s);
    g.set({ kind: 'request', window: '10s' }, f.request_rate_10s);
    g.set({ kind: 'response', window: '1s' }, f.response_rate_1s);
    g.set({ kind: 'response', window: '10s' }, f.response_rate_10s);
  });

  // ---- the process and its config ----
  gauge('buildInfo', (g) => g.set({ version: src.version, node_version: process.version }, 1));
  gauge('connectionBudget', (g) => {
    const budget = src.budget();
    if (budget !== undefined) g.set(budget);
  });
  gauge('certificateExpiry', (g) => {
    for (const c of src.certificates()) g.set({ app: c.app, cert: c.cert, subject: c.subject }, Date.parse(c.validTo) / 1000);
  });

  counter('reloads', () => {
    const r = src.reloads();
    return r ? [[{ result: 'success' }, r.reloads.success], [{ result: 'failure' }, r.reloads.failure]] : [];
  });
  gauge('lastReloadSuccessful', (g) => {
    const r = src.reloads();
    if (r) g.set(r.lastReload === null || r.lastReload.ok ? 1 : 0);
  });
  gauge('lastReloadSeconds', (g) => {
    const r = src.reloads();
    if (r) g.set(r.lastSuccessSeconds);
  });

  if (fleet) clusterMetrics(fleet, counter, gauge);
  return { registry, scrape: () => registry.metrics() };
}

function labelled(name: string, counts: ReadonlyMap<string, number>): [Labels, number][] {
  return [...counts].map(([value, n]) => [{ [name]: value }, n]);
}

/**
 * A counter mirroring running totals the proxy keeps itself: each scrape adds what every total
 * gained since the last one. A series appears at its first reading, at 0 if nothing happened yet
 * (rate() works from the start).
 */
function mirroredCounter(registry: Registry, s: MetricSpec, read: () => Reading): void {
  const last = new Map<string, number>();
  new Counter({
    name: s.name,
    help: s.help,
    labelNames: [...s.labels],
    registers: [registry],
    collect() {
      const now = read();
      for (const [labels, n] of typeof now === 'number' ? [[{}, now] as const] : now) {
        const key = JSON.stringify(labels);
        const seen = last.has(key);
        const gained = n - (last.get(key) ?? 0);
        if (gained > 0 || !seen) this.inc(labels, Math.max(0, gained));
        last.set(key, n);
      }
    },
  });
}

/** Fleet mode only (config `cluster`). */
function clusterMetrics(fleet: FleetReadings, counter: (key: MetricKey, read: () => Reading) => void, gauge: (key: MetricKey, collect: (g: Gauge) => void) => void): void {
  gauge('redisUp', (g) => g.set(fleet.up ? 1 : 0));
  counter('redisErrors', () => fleet.errors);
  gauge('members', (g) => g.set(fleet.liveMembers));
  counter('rebalances', () => fleet.rebalances);
  gauge('share', (g) => {
    for (const s of fleet.shares) {
      const [level, a, b] = s.scope.split(':');
      if (level === 'global') g.set({ level, tier: '', direction: a! }, s.share);
      else if (level === 'tier') g.set({ level, tier: a!, direction: b! }, s.share);
    }
  });
}
