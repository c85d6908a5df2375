/** The validated, normalised configuration every other module consumes. */
import type { PeriodSpec } from './calendar.js';
import type { PemFile } from './pem.js';
import type { WindowTimes } from './schedule.js';

export type BalanceKind = 'round-robin' | 'least-conn' | 'weighted-least-conn' | 'ip-hash' | 'least-time';
export const BALANCE_KINDS: readonly BalanceKind[] = ['round-robin', 'least-conn', 'weighted-least-conn', 'ip-hash', 'least-time'];

export interface TargetConfig {
  /** As written, "host:port"; the identity of the target across reloads. */
  address: string;
  host: string;
  port: number;
  weight: number;
}

/** Which data plane moves the bytes of plain TCP connections: native where eligible and built (auto), always native (refused to start without it), or JavaScript. */
export const DATA_PLANES = ['auto', 'native', 'js'] as const;
export type DataPlane = (typeof DATA_PLANES)[number];

export interface AppConfig {
  name: string;
  ports: number[];
  /** Address the app's ports bind to. */
  bind: string;
  targets: TargetConfig[];
  balance: BalanceKind;
  /** ms */
  connectTimeout: number;
  /** ms; 0 disables */
  idleTimeout: number;
  protocol: 'tcp' | 'foo';
  /** This app's data plane, when it differs from the top-level `dataPlane`. */
  dataPlane?: DataPlane;
  /** Expect a PROXY protocol header (v1 or v2) from a trusted load balancer on every connection. */
  acceptProxyProtocol?: boolean;
  /** Send a PROXY protocol header to the target before any client byte. */
  sendProxyProtocol?: 'v1' | 'v2' | null;
  /** Terminate TLS on the app's ports (after any PROXY header, before customer matching). */
  tls?: ServerTlsConfig;
  /** Speak TLS to the targets. */
  targetTls?: TargetTlsConfig;
  /** Read the SNI of the client's ClientHello without terminating TLS (apps without `tls`). */
  sniPreread?: boolean;
  /** ms a client on an `sniPreread` app has to send its ClientHello; then it is dialed without a name (set with sniPreread) */
  sniPrereadTimeout?: number;
  /** CIDRs: only these sources may connect (absent: any) */
  allow?: string[];
  /** CIDRs: these sources may not connect (wins over allow) */
  deny?: string[];
  /** Keep connections to each target dialed ahead (src/upstream/preconnect.ts). */
  preconnect?: PreconnectConfig;
  /** When no target accepts: run a hook and hold the clients until one does (src/upstream/wake.ts). */
  wake?: WakeConfig;
  /** Run a hook once the app has had no connection for a while (src/upstream/wake.ts). */
  sleep?: SleepConfig;
}

/** What a wake or sleep hook does: run a command (argv, no shell), or POST to a URL. */
export type HookConfig = { command: string[] } | { url: string };

/** `apps[].wake`: the hook, and ms the held clients wait for a target before they are closed (`wake_timeout`). */
export interface WakeConfig {
  hook: HookConfig;
  timeout: number;
}

/** `apps[].sleep`: the hook, run once the app has had no open connection for `after` ms. */
export interface SleepConfig {
  hook: HookConfig;
  after: number;
}

/** `apps[].preconnect`: up to `count` idle connections per target, each replaced after `maxIdle` ms unused. */
export interface PreconnectConfig {
  count: number;
  maxIdle: number;
}

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

export const CLIENT_AUTH_MODES = ['none', 'optional', 'require'] as const;
/** Whether a client certificate is asked for (`optional`) and must be there (`require`); one that is sent must verify. */
export type ClientAuth = (typeof CLIENT_AUTH_MODES)[number];

/** One certificate an app serves, and the server names (SNI) it is chosen for. */
export interface ServedCertificate {
  cert: PemFile;
  key: PemFile;
  /**
   * Lower case, exact ("api.example.com") or a wildcard of one label ("*.example.com"): the given
   * `serverNames`, else the certificate's DNS subjectAltNames.
   */
  serverNames: string[];
}

/** `apps[].tls`: the files are read (and checked) by the loader, so a reload re-reads them. */
export interface ServerTlsConfig {
  /** At least one; the first (`tls.cert`, else `tls.certificates[0]`) is served when no other's names fit the SNI. */
  certificates: ServedCertificate[];
  minVersion: TlsVersion;
  /** ms a client has to finish its handshake */
  handshakeTimeout: number;
  clientAuth: ClientAuth;
  /** CA certificate(s) a client certificate must chain to (set when clientAuth is not "none") */
  clientCa?: PemFile;
}

/** `apps[].targetTls`: verify the targets' certificates against the system CAs plus `ca`. */
export interface TargetTlsConfig {
  ca?: PemFile;
  /** SNI and the name the certificate must carry; default the target's host (no SNI for an IP) */
  servername?: string;
  rejectUnauthorized: boolean;
}

export interface HealthConfig {
  interval: number;
  timeout: number;
  unhealthyAfter: number;
  healthyAfter: number;
}

export interface ProxyConfig extends ShapingConfig {
  apps: AppConfig[];
  health: HealthConfig;
  /** null: no admin server */
  admin: AdminConfig | null;
  log: { level: string };
  /** ms connections may drain on shutdown before they are closed */
  drainTimeout: number;
  /** Which data plane moves plain TCP bytes (apps may override). */
  dataPlane: DataPlane;
  /** Reload when the config file (or a TLS file it names) changes on disk; false: only on SIGHUP, `ctl reload` or POST /reload. */
  watch: boolean;
  /** what is measured per connection: latency histograms, Foo analysis */
  observe: { latency: boolean; foo: boolean };
  /** abuse limits checked at accept (src/server/limits.ts); absent: none */
  limits?: LimitsConfig;
  /** fleet mode (src/cluster/); absent: this instance runs alone */
  cluster?: ClusterConfig;
  /** OpenTelemetry tracing of connections (src/observe/tracing/); absent: off */
  tracing?: TracingConfig;
  /** Where the file came from, for reload. */
  source?: string;
}

/** `tracing`: where spans go and how many connections are traced. */
export interface TracingConfig {
  /** the OTLP/HTTP traces endpoint (a URL without a path gets /v1/traces) */
  otlp: string;
  /** fraction of connections traced, 0 to 1 */
  sample: number;
  /** ms a finished span may wait before its batch is sent */
  flush: number;
  /** service.name of the spans */
  service: string;
}

/** What a role of the admin API may do, lowest first: read GETs; operate also kills, reloads and drains; admin everything. */
export const ADMIN_ROLES = ['read', 'operate', 'admin'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

export interface AdminConfig {
  host: string;
  port: number;
  /** a bearer token of the role "admin" (admin.token, SHAPER_ADMIN_TOKEN) */
  token?: string;
  /** bearer tokens with their roles (admin.tokens) */
  tokens?: { token: string; role: AdminRole }[];
  /** HTTPS instead of HTTP (admin.tls) */
  tls?: { cert: PemFile; key: PemFile };
}

/** `cluster`: several instances sharing customer, tier and global caps through Redis. */
export interface ClusterConfig {
  redis: string;
  instance: string;
  /** fraction of each fleet-wide cap used while Redis is unreachable; null: the last known share */
  fallbackShare: number | null;
  /** ms between demand exchanges */
  rebalanceInterval: number;
  /** ms without a heartbeat after which an instance is out of the fleet */
  memberTimeout: number;
  /** ms a Redis command may take before Redis counts as unreachable */
  redisTimeout: number;
  prefix: string;
}

/** `limits`: every key optional, absent = no limit. */
export interface LimitsConfig {
  perSource: {
    /** concurrent connections per source address */
    maxConnections?: number;
    /** accepted connections per source address: `count` per `per` ms */
    acceptRate?: { count: number; per: number };
  };
  /** concurrent connections through the whole proxy */
  maxConnections?: number;
}

/** One level's caps, bytes per second (Infinity = unlimited), and optional explicit bursts (bytes). */
export interface LevelLimits {
  down: number;
  up: number;
  burstDown?: number;
  burstUp?: number;
  /** bytes/s a full bucket drains at most (tc tbf peakrate); only with a finite rate */
  peakDown?: number;
  peakUp?: number;
  /** bytes/s guaranteed under the global cap while busy (a tier's `total`: HTB rate) */
  minDown?: number;
  minUp?: number;
}

export const UNLIMITED: LevelLimits = { down: Infinity, up: Infinity };

export interface TierConfig {
  name: string;
  /** ms: bucket size = rate × rtt (the bandwidth-delay product) unless a burst is given */
  rtt: number;
  /** share of `global` relative to other tiers when it is the bottleneck */
  weight: number;
  connection: LevelLimits;
  customer: LevelLimits;
  total: LevelLimits;
  /** per customer, concurrent connections */
  maxConnections?: number;
  /** per customer, new connections per interval */
  connectionRate?: { count: number; per: number };
  /** bytes a customer may move in an accounting period before it moves to `then` (or is refused) */
  quota?: QuotaConfig;
  /** caps that differ at times of the week, in the accounting time zone; the first window that holds wins */
  schedule?: ScheduleWindow[];
}

export const QUOTA_DIRECTIONS = ['down', 'up', 'both'] as const;
export type QuotaDirection = (typeof QUOTA_DIRECTIONS)[number];

/** `tiers.X.quota` */
export interface QuotaConfig {
  bytes: number;
  /** which bytes count: to the client, from it, or both added up */
  direction: QuotaDirection;
  /** the tier a customer over its quota is in until the period ends; null: its connections are refused and closed */
  then: string | null;
}

/** A level's caps as a schedule window overrides them: only the keys given replace the tier's. */
export type LevelOverride = Partial<LevelLimits>;

/** `tiers.X.schedule[i]`: inside the window, these caps replace the tier's own. */
export interface ScheduleWindow extends WindowTimes {
  connection?: LevelOverride;
  customer?: LevelOverride;
  total?: LevelOverride;
}

/** `accounting`: the period usage is counted in, its time zone, and the usage log. */
export interface AccountingConfig {
  period: PeriodSpec;
  /** IANA time zone calendar periods and schedule windows align in */
  timezone: string;
  /** where closed periods are appended (JSON lines); null: beside the state file */
  log: string | null;
}

export interface CustomerMatch {
  /** CIDRs ("10.1.0.0/16", "::1/128"); a bare address means /32 or /128 */
  sources?: string[];
  apps?: string[];
  ports?: number[];
  /** TLS server names (SNI), known on apps with `tls` or `sniPreread`: exact or "*.example.com", any case */
  sni?: string[];
  /** subjects of verified client certificates (apps with `tls.clientAuth`): "CN=alice", "O=Acme", "CN=alice, O=Acme" */
  clientCert?: string[];
}

export interface CustomerConfig {
  id: string;
  tier: string;
  match: CustomerMatch;
}

export interface ShapingConfig {
  tiers: Record<string, TierConfig>;
  global: LevelLimits;
  customers: CustomerConfig[];
  /** tier for connections no customer matches (each source address its own customer); null: unshaped */
  defaultTier: string | null;
  /** where runtime changes (admin API) are kept; null: in the state directory, or nowhere without one */
  stateFile: string | null;
  /** usage accounting per customer (quotas need it); absent: none */
  accounting?: AccountingConfig;
  /** the directory of the state and counters files; absent: none (an in-process config without `stateDir`) */
  stateDir?: StateDir;
}

/** Who chose the state directory, highest precedence first (src/config/state-dir.ts). */
export const STATE_DIR_SOURCES = ['SHAPER_STATE_DIR', 'stateDir', 'STATE_DIRECTORY', 'default'] as const;

export interface StateDir {
  /** absolute */
  path: string;
  from: (typeof STATE_DIR_SOURCES)[number];
}
