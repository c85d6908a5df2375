/**
 * Every metric the proxy exports, declared here and nowhere else (Envoy's ALL_TCP_PROXY_STATS):
 * name, kind, help and label names. metrics.ts builds the prom-client objects from this list;
 * the rest of the code only feeds values. Names follow Prometheus conventions: base units
 * (seconds, bytes), `_total` on counters only, one label name per meaning (`direction` is always
 * "up" = client to backend or "down" = backend to client).
 */

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly name: string;
  readonly kind: MetricKind;
  readonly help: string;
  readonly labels: readonly string[];
  /** histograms: bucket bounds in seconds */
  readonly buckets?: readonly number[];
}

const spec = (name: string, kind: MetricKind, help: string, labels: readonly string[] = [], buckets?: readonly number[]): MetricSpec => ({
  name,
  kind,
  help,
  labels,
  ...(buckets ? { buckets } : {}),
});

/** Connects and first bytes on a LAN to a WAN: 0.25 ms to 10 s. */
const FAST_SECONDS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Whole connections and shaping delays: 1 ms to 4 h. */
const LONG_SECONDS = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400];

export const CATALOG = {
  // ---- connections ----
  accepted: spec('shaper_connections_accepted_total', 'counter', 'Connections accepted and handed to a connection (after the abuse limits; including those later refused by customer limits)'),
  closed: spec('shaper_connections_closed_total', 'counter', 'Connections closed, by close reason (README: Close reasons; wake_timeout: held for a wake that found no target in time)', ['reason']),
  refused: spec(
    'shaper_connections_refused_total',
    'counter',
    'Connections refused before any dial: at accept (source_connections, source_rate, global_connections, resource_exhausted, denied) or by customer limits (customer_limit) and quotas (quota_exceeded)',
    ['reason'],
  ),
  active: spec('shaper_connections_active', 'gauge', 'Open proxied connections, by app', ['app']),
  tlsFailures: spec(
    'shaper_tls_handshake_failures_total',
    'counter',
    'Failed TLS handshakes: side="client" on apps with tls (each closes its connection, reason tls_handshake), side="target" with targetTls (each a failed dial, failed over)',
    ['side'],
  ),
  // ---- bytes and caps ----
  bytes: spec('shaper_bytes_total', 'counter', 'Bytes proxied, all apps', ['direction']),
  tierBytes: spec('shaper_tier_bytes_total', 'counter', 'Bytes through each tier (shaped connections)', ['tier', 'direction']),
  tierConnections: spec('shaper_tier_connections', 'gauge', 'Open connections in each tier', ['tier']),
  cap: spec(
    'shaper_cap_bytes_per_second',
    'gauge',
    'Configured caps in bytes per second, per level (connection and customer: each one of the tier; tier: the tier total; global), finite ones only',
    ['level', 'tier', 'direction'],
  ),
  // ---- targets ----
  targetUp: spec('shaper_target_up', 'gauge', 'Target health: 1 healthy, 0 unhealthy', ['app', 'target']),
  targetActive: spec('shaper_target_active_connections', 'gauge', 'Connections open to each target', ['app', 'target']),
  targetLatency: spec(
    'shaper_target_latency_seconds',
    'gauge',
    'Peak-EWMA latency estimate of each target (what balance "least-time" weighs): phase="connect" (connect, and the TLS handshake with targetTls; a failed dial counts as connectTimeout), phase="first_byte" (to the answer, on least-time apps); decays toward 0 while a target gets no connection',
    ['app', 'target', 'phase'],
  ),
  targetFailures: spec('shaper_target_connect_failures_total', 'counter', 'Dials of a target that failed (refused, timed out, TLS), each failed over to the next target', ['app', 'target']),
  // ---- latencies ----
  connectSeconds: spec('shaper_connect_duration_seconds', 'histogram', 'Time to connect to a target, failovers included', ['app'], FAST_SECONDS),
  firstByteSeconds: spec('shaper_first_byte_duration_seconds', 'histogram', "Time from the target's accept to its first byte", ['app'], FAST_SECONDS),
  connectionSeconds: spec('shaper_connection_duration_seconds', 'histogram', 'Whole connections, accept to close', ['app'], LONG_SECONDS),
  shapingDelaySeconds: spec('shaper_shaping_delay_seconds', 'histogram', "Time a shaped connection's bytes waited in the shaper, both directions, per connection", ['tier'], LONG_SECONDS),
  fooResponseSeconds: spec('shaper_foo_response_duration_seconds', 'histogram', 'Foo protocol: a REQ to its ACK or NAK', ['app'], FAST_SECONDS),
  // ---- Foo ----
  fooMessages: spec('shaper_foo_messages_total', 'counter', 'Foo protocol messages seen, by type (req, ack, nak, invalid)', ['type']),
  fooRate: spec('shaper_foo_rate', 'gauge', 'Foo requests and responses per second over moving windows', ['kind', 'window']),
  // ---- the process and its config ----
  buildInfo: spec('shaper_build_info', 'gauge', 'Always 1; the labels say which build runs', ['version', 'node_version']),
  connectionBudget: spec('shaper_connection_budget', 'gauge', 'Connections the descriptor limit leaves room for (two descriptors each); beyond it new ones are refused as resource_exhausted'),
  reloads: spec('shaper_config_reloads_total', 'counter', 'Reloads of the config file (SIGHUP, file change, POST /reload), by result: success, or failure (the old config stayed in force)', ['result']),
  lastReloadSuccessful: spec('shaper_config_last_reload_successful', 'gauge', '1 if the last reload of the config file succeeded (or none was tried), 0 if it failed'),
  lastReloadSeconds: spec('shaper_config_last_reload_success_timestamp_seconds', 'gauge', 'When the config in force was loaded (Unix time): at start, or the last successful reload'),
  certificateExpiry: spec('shaper_tls_certificate_expiry_timestamp_seconds', 'gauge', 'When each certificate an app serves expires (Unix time)', ['app', 'cert', 'subject']),
  // ---- fleet mode ----
  redisUp: spec('shaper_cluster_redis_up', 'gauge', "1 while this instance reaches the fleet's Redis; 0 while it runs on its fallback share"),
  redisErrors: spec('shaper_cluster_redis_errors_total', 'counter', 'Redis commands of the fleet that failed or timed out'),
  members: spec('shaper_cluster_members', 'gauge', 'Instances of the fleet with a heartbeat within memberTimeout, this one included'),
  rebalances: spec('shaper_cluster_rebalances_total', 'counter', "Demand exchanges with the fleet that set this instance's shares"),
  share: spec('shaper_cluster_share', 'gauge', 'Fraction of a fleet-wide tier total or global cap this instance uses', ['level', 'tier', 'direction']),
} as const satisfies Record<string, MetricSpec>;

export type MetricKey = keyof typeof CATALOG;

/** The latency kinds the observer records, and the histogram each goes to (and its label). */
export const LATENCY_METRICS = {
  connect: { key: 'connectSeconds', by: 'app' },
  ttfb: { key: 'firstByteSeconds', by: 'app' },
  duration: { key: 'connectionSeconds', by: 'app' },
  shaperWait: { key: 'shapingDelaySeconds', by: 'tier' },
  foo: { key: 'fooResponseSeconds', by: 'app' },
} as const satisfies Record<string, { key: MetricKey; by: 'app' | 'tier' }>;
