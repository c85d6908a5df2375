import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { LATENCY_KINDS } from './stats.js';
import { openBytes, tierLoad, type FleetReadings, type ReadingSources } from './sources.js';

export interface Metrics {
  registry: Registry;
  /** The text exposition (starts the process metrics on the first scrape). */
  scrape(): Promise<string>;
}

const QUANTILES: [number, number][] = [
  [0.5, 50],
  [0.9, 90],
  [0.99, 99],
  [0.999, 99.9],
];

/**
 * Every metric the proxy exports, declared here and nowhere else. Values are
 * read from the proxy's own state when Prometheus scrapes (collect()), so the
 * data path pays nothing for them. Latencies are exported as Prometheus
 * summaries computed from the hdr histograms (quantiles in seconds).
 */
export function createMetrics(src: ReadingSources, fleet: FleetReadings | null): Metrics {
  const registry = new Registry();
  // Process metrics (CPU, memory, event loop lag, GC) start with the first
  // scrape: their GC observer runs on every collection, which a proxy that is
  // never scraped should not pay for.
  let processMetrics = false;
  const stats = () => src.stats;

  new Gauge({
    name: 'shaper_connections_active',
    help: 'Open proxied connections, by app',
    labelNames: ['app'],
    registers: [registry],
    collect() {
      this.reset();
      for (const a of src.config().apps) this.set({ app: a.name }, 0);
      src.connections.forEach((c) => this.inc({ app: c.appName }));
    },
  });

  mirroredCounter(registry, 'shaper_connections_total', 'Connections accepted', undefined, () => stats().connectionsTotal);

  mirroredCounter(
    registry,
    'shaper_connections_closed_total',
    'Connections closed, by reason (done, client_closed, backend_closed, client_error, backend_error, idle_timeout, no_target, rejected, proxy_protocol, tls_handshake, resource_exhausted, shutdown, ...)',
    'reason',
    () => stats().byReason,
  );

  mirroredCounter(
    registry,
    'shaper_tls_handshake_failures_total',
    'Failed TLS handshakes: side="client" on apps with tls (each closes its connection, reason tls_handshake), side="target" with targetTls (each a failed dial, failed over)',
    'side',
    () => [
      ['client', stats().byReason.get('tls_handshake') ?? 0],
      ['target', stats().targetTlsFailures],
    ],
  );

  mirroredCounter(registry, 'shaper_connections_rejected_total', 'Connections refused by customer limits (maxConnections, connectionRate)', undefined, () => stats().rejected);

  mirroredCounter(
    registry,
    'shaper_connections_refused_total',
    'Connections refused at accept by the abuse limits, by reason (source_connections, source_rate, global_connections, resource_exhausted)',
    'reason',
    () => stats().refused,
  );

  mirroredCounter(registry, 'shaper_bytes_total', 'Bytes proxied: up = client to backend, down = backend to client', 'direction', () => {
    const open = openBytes(src.connections);
    const s = stats();
    return [
      ['up', s.closedBytesUp + open.up],
      ['down', s.closedBytesDown + open.down],
    ];
  });

  new Gauge({
    name: 'shaper_tier_rate_bytes',
    help: 'Bytes per second through each tier over the last second',
    labelNames: ['tier', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [tier, r] of stats().tierRates) {
        this.set({ tier, direction: 'down' }, r.down);
        this.set({ tier, direction: 'up' }, r.up);
      }
    },
  });

  new Gauge({
    name: 'shaper_tier_cap_bytes',
    help: "Each tier's total cap in bytes per second (+Inf: unlimited)",
    labelNames: ['tier', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of Object.values(src.config().tiers)) {
        this.set({ tier: t.name, direction: 'down' }, t.total.down);
        this.set({ tier: t.name, direction: 'up' }, t.total.up);
      }
    },
  });

  new Gauge({
    name: 'shaper_tier_connections',
    help: 'Open connections in each tier',
    labelNames: ['tier'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of Object.keys(src.config().tiers)) this.set({ tier: t }, 0);
      for (const [tier, load] of tierLoad(src.customers())) this.set({ tier }, load.connections);
    },
  });

  new Gauge({
    name: 'shaper_target_up',
    help: 'Backend health: 1 healthy, 0 unhealthy',
    labelNames: ['app', 'target'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [app, targets] of src.apps()) for (const t of targets) this.set({ app, target: t.address }, t.healthy ? 1 : 0);
    },
  });

  new Gauge({
    name: 'shaper_target_active_connections',
    help: 'Connections open to each backend',
    labelNames: ['app', 'target'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [app, targets] of src.apps()) for (const t of targets) this.set({ app, target: t.address }, t.active);
    },
  });

  new Counter({
    name: 'shaper_foo_messages_total',
    help: 'Foo protocol messages seen, by type (req, ack, nak, invalid)',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      this.reset();
      const f = stats().foo.toJSON();
      this.inc({ type: 'req' }, f.msg_req);
      this.inc({ type: 'ack' }, f.msg_ack);
      this.inc({ type: 'nak' }, f.msg_nak);
      this.inc({ type: 'invalid' }, f.msg_invalid);
    },
  });

  new Gauge({
    name: 'shaper_foo_rate',
    help: 'Foo requests and responses per second over moving windows',
    labelNames: ['kind', 'window'],
    registers: [registry],
    collect() {
      const f = stats().foo.toJSON();
      this.set({ kind: 'request', window: '1s' }, f.request_rate_1s);
      this.set({ kind: 'request', window: '10s' }, f.request_rate_10s);
      this.set({ kind: 'response', window: '1s' }, f.response_rate_1s);
      this.set({ kind: 'response', window: '10s' }, f.response_rate_10s);
    },
  });

  if (fleet) clusterMetrics(fleet, registry);
  registry.registerMetric(latencySummary(src) as never);
  return {
    registry,
    async scrape() {
      if (!processMetrics) {
        processMetrics = true;
        collectDefaultMetrics({ register: registry, prefix: 'shaper_process_' });
      }
      return registry.metrics();
    },
  };
}

/**
 * A counter mirroring running totals the proxy keeps itself (one, or one per label value): each
 * scrape adds what every total gained since the last one. The data path only bumps its numbers.
 */
function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  labelName: string | undefined,
  read: () => number | Iterable<readonly [string, number]>,
): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: labelName ? [labelName] : [],
    registers: [registry],
    collect() {
      const now = read();
      for (const [label, n] of typeof now === 'number' ? [['', now] as const] : now) {
        const seen = last.has(label);
        const gained = n - (last.get(label) ?? 0);
        // A series appears at its first reading, at 0 if nothing happened yet (rate() works from the start).
        if (gained > 0 || !seen) {
          if (labelName) this.inc({ [labelName]: label }, Math.max(0, gained));
          else this.inc(Math.max(0, gained));
        }
        last.set(label, n);
      }
    },
  });
}

/** Fleet mode only (config `cluster`). */
function clusterMetrics(fleet: FleetReadings, registry: Registry): void {
  new Gauge({
    name: 'shaper_cluster_redis_up',
    help: '1 while this instance reaches the fleet\'s Redis; 0 while it runs on its fallback share',
    registers: [registry],
    collect() {
      this.set(fleet.up ? 1 : 0);
    },
  });
  mirroredCounter(registry, 'shaper_cluster_redis_errors_total', 'Redis commands of the fleet that failed or timed out', undefined, () => fleet.errors);
  new Gauge({
    name: 'shaper_cluster_members',
    help: 'Instances of the fleet with a heartbeat within memberTimeout, this one included',
    registers: [registry],
    collect() {
      this.set(fleet.liveMembers);
    },
  });
  mirroredCounter(registry, 'shaper_cluster_rebalances_total', 'Demand exchanges with the fleet that set this instance\'s shares', undefined, () => fleet.rebalances);
  new Gauge({
    name: 'shaper_cluster_share',
    help: 'Fraction of a fleet-wide tier total or global cap this instance uses, by level, tier and direction (customers\' shares are on /status)',
    labelNames: ['level', 'tier', 'dir'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of fleet.shares) {
        const [level, a, b] = s.scope.split(':');
        if (level === 'global') this.set({ level, tier: '', dir: a! }, s.share);
        else if (level === 'tier') this.set({ level, tier: a!, dir: b! }, s.share);
      }
    },
  });
}

/**
 * `shaper_latency_seconds`: a Prometheus summary per kind (connect, ttfb,
 * duration, shaperWait, foo) and app or tier, its quantiles read from the
 * hdr histograms at scrape time.
 */
function latencySummary(src: ReadingSources) {
  const name = 'shaper_latency_seconds';
  return {
    name,
    help: 'Latencies from hdr histograms: connect (backend connect), ttfb (first backend byte after connect), duration, shaperWait (time bytes waited in the shaper), foo (REQ to ACK/NAK)',
    type: 'summary',
    aggregator: 'sum',
    collectorType: 'summary',
    reset() {},
    async get() {
      const values: { labels: Record<string, string | number>; value: number; metricName?: string }[] = [];
      const s = src.stats;
      for (const [scope, map] of [['app', s.byApp], ['tier', s.byTier]] as const) {
        for (const [key, hs] of map) {
          for (const kind of LATENCY_KINDS) {
            const h = hs[kind];
            if (h.count === 0) continue;
            const labels = { kind, [scope]: key };
            for (const [q, p] of QUANTILES) values.push({ labels: { ...labels, quantile: q }, value: h.at(p) / 1000 });
            values.push({ metricName: `${name}_sum`, labels, value: h.sum / 1000 });
            values.push({ metricName: `${name}_count`, labels, value: h.count });
          }
        }
      }
      return { name, help: this.help, type: 'summary', values, aggregator: 'sum' };
    },
  };
}
