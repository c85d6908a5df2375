/**
 * The `GET /stats` document: what view.ts builds and what the dashboard page reads. The page's
 * browser code imports this file (type-only) into a program of its own with the DOM library and
 * no Node types, so it holds types only and imports nothing: a field renamed here breaks the
 * page's build, and one renamed in view.ts breaks the server's.
 */

/** The latency measurements, in the order the dashboard lists them. */
export type LatencyKind = 'connect' | 'ttfb' | 'duration' | 'shaperWait' | 'foo';

/** One latency histogram's summary, in milliseconds. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** The kinds that have samples; a kind with none is absent. */
export type Latencies = Partial<Record<LatencyKind, LatencySummary>>;

/** A rate cap in bytes/s; null means unlimited (JSON has no Infinity). */
export type Cap = number | null;

export interface TierStats {
  name: string;
  connections: number;
  customers: number;
  /** bytes/s over the last sampling second */
  rateDown: number;
  rateUp: number;
  capDown: Cap;
  capUp: Cap;
  customerCapDown: Cap;
  customerCapUp: Cap;
  connectionCapDown: Cap;
  connectionCapUp: Cap;
  /** customers of the tier with at least one open connection */
  activeCustomers: number;
  /** the cap that binds each way now (what the dashboard scales the tier's chart to) */
  bindingDown: Binding;
  bindingUp: Binding;
  latency: Latencies;
}

/**
 * The most the tier can move one way now: the least of its `total`, the global cap, and what its
 * customers with connections may move (each the lesser of its customer cap and the connection
 * cap × its connections, summed). With no connection open, what the first one could move.
 */
export interface Binding {
  /** bytes/s; null: nothing caps the tier */
  cap: Cap;
  by: 'total' | 'global' | 'customers' | 'none';
}

export interface TargetStats {
  address: string;
  health: 'healthy' | 'unhealthy';
  active: number;
}

export interface AppStats {
  name: string;
  protocol: 'tcp' | 'foo';
  connections: number;
  targets: TargetStats[];
  latency: Latencies;
}

export interface CustomerStats {
  id: string;
  tier: string;
  /** made at connect time by a match, not listed in the config */
  dynamic: boolean;
  connections: number;
  rateDown: number;
  rateUp: number;
  bytesDown: number;
  bytesUp: number;
}

/** The Foo protocol's counters and request/response rates (per second). */
export interface FooStatsDocument {
  msg_total: number;
  msg_req: number;
  msg_ack: number;
  msg_nak: number;
  msg_invalid: number;
  request_rate_1s: number;
  request_rate_10s: number;
  response_rate_1s: number;
  response_rate_10s: number;
}

/** A customer's usage in the accounting period (one of the top ones in memory). */
export interface UsageStats {
  customer: string;
  /** its own tier, and the one it is in now (a quota's `then` while over it) */
  tier: string;
  inTier: string;
  down: number;
  up: number;
  /** null: its tier has no quota */
  quotaBytes: number | null;
  remaining: number | null;
  exceeded: boolean;
}

/** A tier's schedule: the window in force, if any. */
export interface WindowStats {
  tier: string;
  /** index in the tier's schedule; -1: none, the tier's own caps */
  active: number;
  /** of the window in force: "mon-fri"-like days, "HH:MM" */
  days: string | null;
  from: string | null;
  to: string | null;
}

/** Plans (issue 15): the accounting period, the customers with the most bytes in it, the schedule windows. */
export interface PlansStats {
  /** null: accounting is off */
  period: { start: string; end: string; timezone: string } | null;
  /** customers in memory (open connections, or one within the last minute) by bytes this period, most first */
  top: UsageStats[];
  windows: WindowStats[];
}

/** `?history=1`: one sample a second, each tier's series aligned with `t` (seconds since the epoch). */
export interface StatsHistory {
  t: number[];
  tiers: Record<string, { down: number[]; up: number[] }>;
}

/** The last reload from the config file (SIGHUP, a saved file, POST /reload, `ctl reload`). */
export interface ReloadStats {
  ok: boolean;
  /** ISO time */
  at: string;
  why: string;
  /** sha256 of the file it read */
  hash: string | null;
  /** each "key.path: what is wrong", when it failed */
  errors?: string[];
}

/** The config file in force. */
export interface ConfigFileStats {
  file: string;
  /** sha256 of the file in force */
  hash: string | null;
  /** ISO time it was loaded */
  loadedAt: string;
  lastReload: ReloadStats | null;
  reloads: { success: number; failure: number };
}

/** Fleet mode (config `cluster`): this instance, its Redis, the members, and its shares of the fleet-wide caps. */
export interface FleetStats {
  instance: string;
  redis: { url: string; state: 'up' | 'down'; since: string; errors: number; lastError?: string };
  /** Redis is away: the shares are the last known ones (or fallbackShare) */
  fallback: boolean;
  rebalances: number;
  lastRebalance: string | null;
  members: { instance: string; self: boolean; heartbeatAgeMs: number; live: boolean; host?: string; connections?: number }[];
  /** per scope ("tier:gold:down", "customer:acme:up", "global:down"): this instance's fraction of the cap and the demand behind it */
  shares: { scope: string; share: number; demand: number; fleetDemand: number }[];
}

export interface StatsDocument {
  /** this proxy's version (package.json) */
  version: string;
  uptimeSeconds: number;
  /** null: the proxy was not started from a config file */
  config: ConfigFileStats | null;
  /** null: this instance runs alone */
  fleet: FleetStats | null;
  connections: {
    active: number;
    total: number;
    rejected: number;
    byReason: Record<string, number>;
    refused: Record<string, number>;
    tlsHandshakeFailures: { client: number; target: number };
  };
  bytes: { up: number; down: number };
  latency: Latencies;
  tiers: TierStats[];
  apps: AppStats[];
  customers: CustomerStats[];
  foo: FooStatsDocument;
  plans: PlansStats;
  history?: StatsHistory;
}
