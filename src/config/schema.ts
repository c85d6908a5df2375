/**
 * The config schema, run through convict: one spec for the top level, one for each app, one
 * for each target written as an object, one for each tier and one for each customer (the tiers
 * map and the customers list have keys and lengths of the user's choosing, so the loader runs
 * their elements through TIER_SCHEMA / CUSTOMER_SCHEMA one by one, as it does apps). Convict supplies the defaults, the env overrides and the
 * unknown-key check (`allowed: 'strict'`). The checks here write every problem, with its exact
 * key path ("apps[0].balance"), into a Problems list, so the loader reports all of them at once
 * instead of convict's first-error text.
 */
import { isIP } from 'node:net';
import convict from 'convict';
import { parseCidr } from '../identify/cidr.js';
import { subjectPatternProblem } from '../identify/client-cert.js';
import { sniPatternProblem } from '../identify/sni.js';
import { isPlainObject } from './fly.js';
import { BALANCE_KINDS, CLIENT_AUTH_MODES, TLS_VERSIONS } from './types.js';
import { parseCountRate, parseDuration, parseHostPort, parseRate, parseSize } from './units.js';
import { LOG_LEVEL_HELP, logLevel } from '../log.js';

export const PROTOCOLS = ['tcp', 'foo'] as const;
export const PROXY_PROTOCOL_VERSIONS = ['v1', 'v2'] as const;

/**
 * Top-level keys reserved for features that are on their way. They are accepted and ignored
 * so configs written for the next version still load; when a feature lands, its key moves
 * into TOP_SCHEMA (as `cluster` did).
 */
export const RESERVED_KEYS: readonly string[] = [];

export const APPS_REQUIRED = 'required, a list of apps (each with name, ports, targets)';

/** Problem lines, each "<key path>: <what is wrong and how to fix it>". */
export class Problems {
  readonly lines: string[] = [];
  readonly #paths = new Set<string>();
  add(path: string, message: string): void {
    this.lines.push(`${path}: ${message}`);
    this.#paths.add(path);
  }
  has(path: string): boolean {
    return this.#paths.has(path);
  }
  get count(): number {
    return this.lines.length;
  }
}

/** Throws for a single problem, or calls `report` (any number of times) with a sub-path like "[2]". */
type Check = (value: unknown, report: (message: string, subPath?: string) => void) => void;

export interface LeafSpec {
  doc: string;
  /** null with no `nullable`: the key is required. */
  default: unknown;
  check: Check;
  nullable?: boolean;
  env?: string;
  /**
   * The value may be a plain object (a map of tiers, a `{down, up}` burst). Convict cannot take
   * objects at a leaf, so such a value is given to `check` directly and, when it passes, put into
   * the result whole, bypassing convict.
   */
  objects?: boolean;
}
export interface GroupSpec {
  [key: string]: LeafSpec | GroupSpec;
}

const isLeaf = (node: LeafSpec | GroupSpec): node is LeafSpec => typeof node['check'] === 'function';

// ---- checks --------------------------------------------------------------------------------

const MAX_TIMER_MS = 2 ** 31 - 1; // longer setTimeout delays fire at once
const NAME = /^[A-Za-z0-9._-]+$/;
export const TIER_NAME = NAME;
export const CUSTOMER_ID = /^[A-Za-z0-9._:@-]+$/;
/** Names that would collide with Object.prototype when used as record keys. */
export const RESERVED_NAMES: readonly string[] = ['__proto__', 'constructor', 'prototype'];
const HOSTNAME = /^[A-Za-z0-9._-]+$/;

export function show(value: unknown): string {
  if (typeof value === 'number' || value === undefined) return String(value);
  return JSON.stringify(value) ?? String(value);
}

export const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535;

const oneOf =
  (allowed: readonly string[]): Check =>
  (v) => {
    if (typeof v !== 'string' || !allowed.includes(v)) throw new Error(`${show(v)} is not one of ${allowed.join(', ')}`);
  };

const levelCheck: Check = (v) => {
  if (logLevel(v) === undefined) throw new Error(`${show(v)} is not a log level (use ${LOG_LEVEL_HELP})`);
};

const duration =
  (mustBePositive: boolean): Check =>
  (v) => {
    const ms = parseDuration(v);
    if (mustBePositive && ms <= 0) throw new Error(`must be more than 0 (got ${show(v)})`);
    if (ms > MAX_TIMER_MS) throw new Error(`${show(v)} is too long (at most "24d")`);
  };

const bool: Check = (v) => {
  if (typeof v !== 'boolean') throw new Error(`must be true or false (got ${show(v)})`);
};

const intBetween =
  (min: number, max = Infinity): Check =>
  (v) => {
    if (Number.isInteger(v) && (v as number) >= min && (v as number) <= max) return;
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    throw new Error(`must be an integer ${range} (got ${show(v)})`);
  };

const list =
  (what: string, example: string): Check =>
  (v) => {
    if (v === null || v === undefined) throw new Error(`required, a list of ${what} like ${example}`);
    if (!Array.isArray(v)) throw new Error(`must be a list of ${what} like ${example} (got ${show(v)})`);
    if (v.length === 0) throw new Error(`must list at least one of the ${what}, e.g. ${example}`);
  };

const appList: Check = (v) => {
  if (v === null || v === undefined) throw new Error(APPS_REQUIRED);
  if (!Array.isArray(v)) throw new Error(`must be a list of apps (each with name, ports, targets), got ${show(v)}`);
  if (v.length === 0) throw new Error('must list at least one app (each with name, ports, targets)');
};

const portList: Check = (v, report) => {
  list('ports', '[5001, 5002]')(v, report);
  (v as unknown[]).forEach((port, i) => {
    if (!isPort(port)) report(`${show(port)} is not a port (use an integer from 0 to 65535; 0 picks a free port)`, `[${i}]`);
  });
};

const appName: Check = (v) => {
  if (v === null || v === undefined || v === '') throw new Error('required, a non-empty name like "web"');
  if (typeof v !== 'string' || !NAME.test(v)) {
    throw new Error(`${show(v)} is not a valid name (use letters, digits, ".", "_" and "-", e.g. "web")`);
  }
};

/** Brackets are allowed around IPv6 ("[::]") and removed by `unbracket`. */
export const unbracket = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

const bindAddress: Check = (v) => {
  const host = typeof v === 'string' ? unbracket(v) : '';
  if (host === '' || !(isIP(host) !== 0 || HOSTNAME.test(host))) {
    throw new Error(`${show(v)} is not an address to bind (use e.g. "0.0.0.0", "127.0.0.1" or "::")`);
  }
};

/** admin.listen: "host:port" (port 0 allowed), or "off" / "" / null for no admin server. */
export const isAdminOff = (v: unknown): boolean => v === null || (typeof v === 'string' && (v === '' || v.toLowerCase() === 'off'));
const adminListen: Check = (v) => {
  if (!isAdminOff(v)) parseHostPort(v, true);
};
/** admin.token: the bearer token every admin request must carry; null or "" for none (loopback only). */
export const ADMIN_TOKEN_MIN = 16;
const adminToken: Check = (v) => {
  if (v === '') return;
  if (typeof v !== 'string' || v.length < ADMIN_TOKEN_MIN) {
    throw new Error(`must be a string of at least ${ADMIN_TOKEN_MIN} characters, or null for none (got ${typeof v === 'string' ? `${v.length} characters` : show(v)})`);
  }
};

const targetAddress: Check = (v) => {
  if (v === null || v === undefined) throw new Error('required, the "host:port" of the backend');
  parseHostPort(v);
};

// ---- shaping checks ------------------------------------------------------------------------

const rate: Check = (v) => {
  parseRate(v);
};

const positiveNumber: Check = (v) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`must be a number more than 0 (got ${show(v)})`);
};

const countRate: Check = (v) => {
  parseCountRate(v);
};

const BURST_KEYS = ['down', 'up'];
/** A size for both directions, or {"down": SIZE, "up": SIZE} (either may be left out). */
const burst: Check = (v, report) => {
  if (!isPlainObject(v)) {
    parseSize(v);
    return;
  }
  for (const [key, size] of Object.entries(v)) {
    if (!BURST_KEYS.includes(key)) {
      const hint = suggest(key, BURST_KEYS);
      report(hint ? `unknown key (did you mean "${hint}"?)` : `unknown key (known keys: ${BURST_KEYS.join(', ')})`, `.${key}`);
      continue;
    }
    try {
      parseSize(size);
    } catch (err) {
      report(err instanceof Error ? err.message : String(err), `.${key}`);
    }
  }
};

export function tierNameProblem(name: string): string | undefined {
  if (name === '' || !NAME.test(name)) return `${show(name)} is not a valid tier name (use letters, digits, ".", "_" and "-", e.g. "gold")`;
  if (RESERVED_NAMES.includes(name)) return `${show(name)} cannot be used as a tier name`;
  return undefined;
}

/** The tier names are checked where each tier is read; here only that it is a map. */
const tierMap: Check = (v) => {
  if (!isPlainObject(v)) {
    throw new Error(`must be an object of tiers by name, like {"gold": {"connection": {"down": "100mbit"}}} (got ${show(v)})`);
  }
};

/** A reference to a tier; that it exists is checked by the loader once all tiers are read. */
const tierRef =
  (required: boolean): Check =>
  (v) => {
    if (v === null || v === undefined) {
      if (required) throw new Error('required, the name of one of the tiers, e.g. "gold"');
      return;
    }
    if (typeof v !== 'string' || tierNameProblem(v) !== undefined) throw new Error(`${show(v)} is not a tier name (use e.g. "gold")`);
  };

const customerList: Check = (v) => {
  if (!Array.isArray(v)) {
    throw new Error(`must be a list of customers like [{"id": "acme", "tier": "gold", "match": {"sources": ["10.1.0.0/16"]}}] (got ${show(v)})`);
  }
};

const customerId: Check = (v) => {
  if (v === null || v === undefined || v === '') throw new Error('required, a non-empty id like "acme"');
  if (typeof v !== 'string' || !CUSTOMER_ID.test(v) || RESERVED_NAMES.includes(v)) {
    throw new Error(`${show(v)} is not a valid customer id (use letters, digits, ".", "_", ":", "@" and "-", e.g. "acme")`);
  }
};

/** A match list: absent or a non-empty array whose items `item` checks. */
const matchList =
  (what: string, example: string, key: string, item: (v: unknown) => void): Check =>
  (v, report) => {
    if (!Array.isArray(v)) throw new Error(`must be a list of ${what} like ${example} (got ${show(v)})`);
    if (v.length === 0) throw new Error(`must list at least one of the ${what}, e.g. ${example} (leave "${key}" out to match any)`);
    v.forEach((x: unknown, i) => {
      try {
        item(x);
      } catch (err) {
        report(err instanceof Error ? err.message : String(err), `[${i}]`);
      }
    });
  };

const cidrList = matchList('CIDRs', '["10.1.0.0/16", "2001:db8::/32"]', 'sources', (x) => {
  parseCidr(x as string);
});

/** App names; that each names an app is checked by the loader. */
const appNameList = matchList('app names', '["web"]', 'apps', (x) => {
  if (typeof x !== 'string' || x === '') throw new Error(`${show(x)} is not an app name (use e.g. "web")`);
});

const matchPortList = matchList('ports', '[5001]', 'ports', (x) => {
  if (!Number.isInteger(x) || (x as number) < 1 || (x as number) > 65535) {
    throw new Error(`${show(x)} is not a port (use an integer from 1 to 65535)`);
  }
});

/** cluster.redis: a redis:// or rediss:// URL (user, password and database number allowed). */
const redisUrl: Check = (v) => {
  let url: URL | undefined;
  try {
    url = typeof v === 'string' ? new URL(v) : undefined;
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw new Error(`${show(v)} is not a Redis URL (use e.g. "redis://127.0.0.1:6379", "rediss://:password@redis.internal:6380/2")`);
  }
};

/** cluster.instance: how this instance is named in Redis and on /status. */
const instanceId: Check = (v) => {
  if (typeof v !== 'string' || !/^[A-Za-z0-9._:@-]{1,64}$/.test(v)) {
    throw new Error(`${show(v)} is not an instance id (1 to 64 letters, digits, ".", "_", ":", "@" and "-"; leave it out for hostname-pid)`);
  }
};

const fraction: Check = (v) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1) throw new Error(`must be a number more than 0 and at most 1, a fraction of each cap (got ${show(v)})`);
};

const keyPrefix: Check = (v) => {
  if (typeof v !== 'string' || v.length > 64 || /\s/.test(v)) throw new Error(`${show(v)} is not a key prefix (up to 64 characters, no spaces, e.g. "shaper:")`);
};

const durationBetween =
  (minMs: number, maxMs: number): Check =>
  (v) => {
    const ms = parseDuration(v);
    if (ms < minMs || ms > maxMs) throw new Error(`must be from ${minMs}ms to ${maxMs}ms (got ${show(v)})`);
  };

const filePath: Check = (v) => {
  if (typeof v !== 'string' || v.trim() === '' || v.includes('\0')) {
    throw new Error(`${show(v)} is not a file path (use e.g. "/var/lib/shaper-proxy/state.json", or null)`);
  }
};

/** A match criterion of patterns (`match.sni`, `match.clientCert`): one pattern or a list of them. */
const patternList =
  (problemOf: (x: unknown) => string | undefined, what: string, example: string, key: string): Check =>
  (v, report) => {
    if (typeof v === 'string') {
      const problem = problemOf(v);
      if (problem !== undefined) report(problem);
      return;
    }
    matchList(what, example, key, (x) => {
      const problem = problemOf(x);
      if (problem !== undefined) throw new Error(problem);
    })(v, report);
  };

const sniList = patternList(sniPatternProblem, 'server names', '["api.example.com", "*.example.com"]', 'sni');
const subjectList = patternList(subjectPatternProblem, 'certificate subjects', '["CN=alice", "O=Acme"]', 'clientCert');

// ---- TLS checks (the files are read by the loader, src/config/tls.ts) ----------------------------

interface KeySpec {
  required?: string;
  check: Check;
}

/** A plain object with the given keys, each checked; unknown keys are reported with a "did you mean". */
const objectWith =
  (keys: Record<string, KeySpec>, example: string): Check =>
  (v, report) => {
    if (!isPlainObject(v)) throw new Error(`must be an object like ${example} (got ${show(v)})`);
    const names = Object.keys(keys);
    for (const [name, spec] of Object.entries(keys)) {
      if (spec.required !== undefined && (v[name] === undefined || v[name] === null)) report(`required, ${spec.required}`, `.${name}`);
    }
    for (const [key, value] of Object.entries(v)) {
      const spec = Object.hasOwn(keys, key) ? keys[key] : undefined;
      if (!spec) {
        const hint = suggest(key, names);
        report(hint ? `unknown key (did you mean "${hint}"?)` : `unknown key (known keys: ${names.join(', ')})`, PLAIN_KEY.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
        continue;
      }
      if (value === undefined || (value === null && spec.required === undefined)) continue;
      try {
        spec.check(value, (msg, sub = '') => report(msg, `.${key}${sub}`));
      } catch (err) {
        report(err instanceof Error ? err.message : String(err), `.${key}`);
      }
    }
  };

const pemPath = (what: string): Check => (v) => {
  if (typeof v !== 'string' || v.trim() === '' || v.includes('\0')) throw new Error(`${show(v)} is not a file path (the ${what}, PEM; relative to the config file)`);
};

const CERT_FILE = 'the certificate file (PEM, the chain after the leaf)';
const KEY_FILE = 'the private key file (PEM, unencrypted)';

/** `serverNames` of a certificate: what SNI chooses it for, instead of the names it carries. */
const serverNames: Check = (v, report) => {
  if (!Array.isArray(v) || v.length === 0) {
    throw new Error(`must be a non-empty list of server names like ["api.example.com", "*.example.com"]; leave it out to use the certificate's DNS names (got ${show(v)})`);
  }
  v.forEach((x: unknown, i) => {
    const problem = sniPatternProblem(x);
    if (problem !== undefined) report(problem, `[${i}]`);
  });
};

const servedCertificate = objectWith(
  {
    cert: { required: CERT_FILE, check: pemPath('certificate chain') },
    key: { required: KEY_FILE, check: pemPath('private key') },
    serverNames: { check: serverNames },
  },
  '{"cert": "certs/api.pem", "key": "certs/api-key.pem"}',
);

/** `tls.certificates`: more certificates, each chosen by the server names it carries (or `serverNames`). */
const certificateList: Check = (v, report) => {
  list('certificates', '[{"cert": "certs/api.pem", "key": "certs/api-key.pem"}]')(v, report);
  (v as unknown[]).forEach((c, i) => {
    try {
      servedCertificate(c, (msg, sub = '') => report(msg, `[${i}]${sub}`));
    } catch (err) {
      report(err instanceof Error ? err.message : String(err), `[${i}]`);
    }
  });
};

const given = (x: unknown): boolean => x !== undefined && x !== null;

const serverTls: Check = (v, report) => {
  if (v === null) return;
  objectWith(
    {
      cert: { check: pemPath('certificate chain') },
      key: { check: pemPath('private key') },
      certificates: { check: certificateList },
      minVersion: { check: oneOf(TLS_VERSIONS) },
      handshakeTimeout: { check: duration(true) },
      clientAuth: { check: oneOf(CLIENT_AUTH_MODES) },
      clientCa: { check: pemPath('CA certificate(s) client certificates must chain to') },
    },
    '{"cert": "certs/web.pem", "key": "certs/web-key.pem"}',
  )(v, report);
  const tls = v as Record<string, unknown>;
  // `cert` and `key` go together; without them, `certificates` must list at least one.
  if (given(tls['cert']) && !given(tls['key'])) report(`required, ${KEY_FILE}`, '.key');
  else if (given(tls['key']) && !given(tls['cert'])) report(`required, ${CERT_FILE}`, '.cert');
  else if (!given(tls['cert']) && !given(tls['certificates'])) report(`required, ${CERT_FILE} (or list "certificates")`, '.cert');
  const auth = tls['clientAuth'] ?? 'none';
  if (!CLIENT_AUTH_MODES.includes(auth as never)) return; // reported
  if (auth !== 'none' && !given(tls['clientCa'])) report(`required when clientAuth is "${String(auth)}", the CA certificate(s) client certificates must chain to (PEM)`, '.clientCa');
  if (auth === 'none' && given(tls['clientCa'])) {
    report('is set but clientAuth is "none" (the default), so no client certificate is asked for: set clientAuth to "require" or "optional"', '.clientCa');
  }
};

const SERVERNAME = /^[A-Za-z0-9._-]+$/;
const targetTls: Check = (v, report) => {
  if (v === null || typeof v === 'boolean') return;
  if (!isPlainObject(v)) throw new Error(`must be true, false or an object like {"ca": "certs/ca.pem", "servername": "backend.internal"} (got ${show(v)})`);
  objectWith(
    {
      ca: { check: pemPath('CA certificate(s) trusted besides the system CAs') },
      servername: {
        check: (x) => {
          if (typeof x !== 'string' || !SERVERNAME.test(x)) throw new Error(`${show(x)} is not a host name (e.g. "backend.internal")`);
        },
      },
      rejectUnauthorized: { check: bool },
    },
    '{"ca": "certs/ca.pem"}',
  )(v, report);
};

// ---- specs ---------------------------------------------------------------------------------

export const TOP_SCHEMA: GroupSpec = {
  apps: { doc: 'The apps: each listens on its ports and forwards to its targets.', default: null, check: appList },
  bind: { doc: 'Address app ports bind to unless an app sets its own.', default: '0.0.0.0', check: bindAddress, env: 'SHAPER_BIND' },
  health: {
    interval: { doc: 'Time between health checks of a target.', default: '2s', check: duration(true) },
    timeout: { doc: 'A health check connect slower than this fails.', default: '1s', check: duration(true) },
    unhealthyAfter: { doc: 'Failed checks in a row before a target is taken out.', default: 2, check: intBetween(1) },
    healthyAfter: { doc: 'Passed checks in a row before a target is put back.', default: 1, check: intBetween(1) },
  },
  admin: {
    listen: {
      doc: 'host:port of the admin API; null or "off" for none.',
      default: '127.0.0.1:9900',
      nullable: true,
      check: adminListen,
      env: 'SHAPER_ADMIN_LISTEN',
    },
    token: {
      doc: 'Bearer token the admin API requires on every request; required when admin.listen is not a loopback address.',
      default: null,
      nullable: true,
      check: adminToken,
      env: 'SHAPER_ADMIN_TOKEN',
    },
  },
  log: {
    level: { doc: 'Log level: a name, or 0-7 as in seed 000 (0 debug ... 7 silent).', default: 'info', check: levelCheck, env: 'SHAPER_LOG_LEVEL' },
  },
  observe: {
    latency: { doc: 'Record per-connection latency histograms (connect, ttfb, duration, shaper wait).', default: true, check: bool },
    foo: { doc: 'Analyse apps with protocol "foo" (counters, rates, request latency).', default: true, check: bool },
  },
  limits: {
    perSource: {
      maxConnections: { doc: 'Concurrent connections per source address; null: no limit.', default: null, nullable: true, check: intBetween(1) },
      acceptRate: { doc: 'New connections accepted per source address, e.g. "50/s"; null: no limit.', default: null, nullable: true, check: countRate },
    },
    maxConnections: { doc: 'Concurrent connections through the whole proxy; null: no limit.', default: null, nullable: true, check: intBetween(1) },
  },
  cluster: {
    redis: {
      doc: 'Redis URL of the fleet; null: this instance runs alone (no Redis at all).',
      default: null,
      nullable: true,
      check: redisUrl,
      env: 'SHAPER_CLUSTER_REDIS',
    },
    instance: { doc: 'This instance\'s id in the fleet; null: hostname-pid.', default: null, nullable: true, check: instanceId, env: 'SHAPER_CLUSTER_INSTANCE' },
    fallbackShare: {
      doc: 'While Redis is unreachable, the fraction of each fleet-wide cap this instance uses; null: its last known share.',
      default: null,
      nullable: true,
      check: fraction,
    },
    rebalanceInterval: { doc: 'How often demand is exchanged and shares recomputed.', default: '200ms', check: durationBetween(20, 5000) },
    memberTimeout: { doc: 'An instance with no heartbeat for this long is out of the fleet (its demand and connections no longer count).', default: '1s', check: durationBetween(100, 60000) },
    redisTimeout: { doc: 'A Redis command slower than this counts as Redis being unreachable.', default: '500ms', check: durationBetween(10, 10000) },
    prefix: { doc: 'Prefix of every Redis key and channel of the fleet (several fleets can share one Redis).', default: 'shaper:', check: keyPrefix },
  },
  drainTimeout: {
    doc: 'On shutdown, how long open connections may finish before they are closed.',
    default: '10s',
    check: duration(false),
    env: 'SHAPER_DRAIN_TIMEOUT',
  },
  tiers: {
    doc: 'Service tiers by name: their rates per connection, per customer and in total.',
    default: null,
    nullable: true,
    objects: true,
    check: tierMap,
  },
  global: levelSchema('all traffic through the proxy'),
  customers: {
    doc: 'Customers: who a connection belongs to (by source, app and port) and their tier.',
    default: null,
    nullable: true,
    check: customerList,
  },
  defaultTier: {
    doc: 'Tier of connections no customer matches (each source address its own customer); null: unshaped.',
    default: null,
    nullable: true,
    check: tierRef(false),
  },
  stateFile: {
    doc: 'Where runtime changes (admin API) are kept; relative to the config file.',
    default: null,
    nullable: true,
    check: filePath,
  },
};

/** A level's caps: `down`/`up` rates (default unlimited) and an optional `burst`. */
export function levelSchema(what: string): GroupSpec {
  return {
    down: { doc: `Rate to clients (download) of ${what}.`, default: 'unlimited', check: rate },
    up: { doc: `Rate from clients (upload) of ${what}.`, default: 'unlimited', check: rate },
    burst: {
      doc: 'Bucket size: a size for both directions or {"down": SIZE, "up": SIZE}; default rate x rtt.',
      default: null,
      nullable: true,
      objects: true,
      check: burst,
    },
  };
}

export const TIER_SCHEMA: GroupSpec = {
  rtt: { doc: 'Round-trip time the buckets are sized for (rate x rtt).', default: '50ms', check: duration(true) },
  weight: { doc: 'Share of the global rate relative to the other tiers.', default: 1, check: positiveNumber },
  connection: levelSchema('each connection'),
  customer: levelSchema('all connections of a customer'),
  total: levelSchema('all connections of the tier'),
  maxConnections: { doc: 'Concurrent connections per customer.', default: null, nullable: true, check: intBetween(1) },
  connectionRate: { doc: 'New connections per customer, e.g. "10/s".', default: null, nullable: true, check: countRate },
};

export const CUSTOMER_SCHEMA: GroupSpec = {
  id: { doc: 'Unique id of the customer.', default: null, check: customerId },
  tier: { doc: 'Name of the tier.', default: null, check: tierRef(true) },
  match: {
    sources: { doc: 'Source CIDRs.', default: null, nullable: true, check: cidrList },
    apps: { doc: 'Names of apps.', default: null, nullable: true, check: appNameList },
    ports: { doc: 'Listening ports.', default: null, nullable: true, check: matchPortList },
    sni: { doc: 'TLS server names ("api.example.com", "*.example.com"); known on apps with tls or sniPreread.', default: null, nullable: true, check: sniList },
    clientCert: {
      doc: 'Subjects of verified client certificates ("CN=alice", "O=Acme"); known on apps with tls.clientAuth.',
      default: null,
      nullable: true,
      check: subjectList,
    },
  },
};

export const APP_SCHEMA: GroupSpec = {
  name: { doc: 'Unique name of the app.', default: null, check: appName },
  ports: { doc: 'Ports to listen on; 0 picks a free port.', default: null, check: portList },
  bind: { doc: 'Address to bind; defaults to the top-level bind.', default: null, nullable: true, check: bindAddress },
  targets: {
    doc: 'Backends: "host:port" or {"address": "host:port", "weight": 2}.',
    default: null,
    check: list('targets', '["127.0.0.1:9001"]'),
  },
  balance: { doc: 'How a target is picked.', default: 'round-robin', check: oneOf(BALANCE_KINDS) },
  connectTimeout: { doc: 'Time a target has to accept a connection.', default: '3s', check: duration(true) },
  idleTimeout: { doc: 'Close a connection idle this long; 0 never.', default: '1h', check: duration(false) },
  protocol: { doc: 'What the connections carry.', default: 'tcp', check: oneOf(PROTOCOLS) },
  acceptProxyProtocol: {
    doc: 'Every connection starts with a PROXY protocol header (v1 or v2) from a trusted load balancer; its client address is used.',
    default: false,
    check: bool,
  },
  sendProxyProtocol: {
    doc: 'Send a PROXY protocol header ("v1" or "v2") with the client address to the target; null: none.',
    default: null,
    nullable: true,
    check: oneOf(PROXY_PROTOCOL_VERSIONS),
  },
  tls: {
    doc: 'Terminate TLS: {"cert": FILE, "key": FILE, "certificates": [{"cert", "key", "serverNames"}], "minVersion": "TLSv1.2", "handshakeTimeout": "10s", "clientAuth": "none", "clientCa": FILE}; null: plain TCP.',
    default: null,
    nullable: true,
    objects: true,
    check: serverTls,
  },
  sniPreread: {
    doc: "Read the TLS server name (SNI) from the client's ClientHello for customer matching, without terminating TLS (apps without tls).",
    default: false,
    check: bool,
  },
  sniPrereadTimeout: {
    doc: 'With sniPreread: how long a client has to send its ClientHello; then it is dialed without a server name. Default 5s.',
    default: null,
    nullable: true,
    check: duration(true),
  },
  targetTls: {
    doc: 'Speak TLS to the targets: true, or {"ca": FILE, "servername": NAME, "rejectUnauthorized": true}.',
    default: false,
    nullable: true,
    objects: true,
    check: targetTls,
  },
};

export const TARGET_SCHEMA: GroupSpec = {
  address: { doc: '"host:port" of the backend.', default: null, check: targetAddress },
  weight: { doc: 'Share of connections relative to the other targets.', default: 1, check: intBetween(1, 1000) },
};

// ---- running a spec through convict ----------------------------------------------------------

/** Thrown by a format after it has written its problems, so convict also sees the failure. */
const REPORTED = '(reported with its key path)';

/** Objects accepted at `objects` leaves, by key path, with the keys from the spec's root. */
type Wholes = Map<string, { keys: string[]; value: unknown }>;

function reportingFormat(spec: LeafSpec, path: string, problems: Problems, fromEnv?: string, wholes?: Wholes): (value: unknown) => void {
  const origin = fromEnv ? ` (set by env ${fromEnv})` : '';
  return (value) => {
    // An object taken whole replaces whatever convict has (the default).
    if (wholes?.has(path)) return;
    // A value convict could not take was reported and left out (fitToSpec); do not also
    // complain about the default that took its place.
    if (problems.has(path)) throw new Error(REPORTED);
    let failed = false;
    const report = (message: string, subPath = ''): void => {
      failed = true;
      problems.add(path + subPath, message + origin);
    };
    try {
      spec.check(value, report);
    } catch (err) {
      report(err instanceof Error ? err.message : String(err));
    }
    if (failed) throw new Error(REPORTED);
  };
}

function toConvict(spec: GroupSpec, at: string, problems: Problems, env: NodeJS.ProcessEnv, wholes: Wholes): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(spec)) {
    if (!isLeaf(node)) {
      out[key] = toConvict(node, `${at}${key}.`, problems, env, wholes);
      continue;
    }
    const { check: _check, objects: _objects, ...rest } = node;
    const fromEnv = node.env !== undefined && env[node.env] !== undefined ? node.env : undefined;
    out[key] = { ...rest, format: reportingFormat(node, at + key, problems, fromEnv, wholes) };
  }
  return out;
}

/**
 * Convict's loader cannot take a plain object where the schema has a leaf (it recurses into it
 * and throws a TypeError), nor a scalar where it has a group (it then reports every child as
 * "missing"). Such values are reported here and left out; everything else passes unchanged.
 * An object at an `objects` leaf is checked here too and, when good, kept in `wholes` for
 * runSchema to put back into convict's result.
 */
/** Keys that read plainly in a key path (others are quoted). */
const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/;

function fitToSpec(
  value: Record<string, unknown>,
  spec: GroupSpec,
  at: string,
  problems: Problems,
  ignored: readonly string[],
  wholes: Wholes,
  keys: string[] = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (ignored.includes(key)) continue;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      problems.add(at + key, 'unknown key');
      continue;
    }
    const node = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (node === undefined && (!PLAIN_KEY.test(key) || key in Object.prototype)) {
      // convict would read such a key as a path (or an inherited member) and throw, and a key path
      // with it would be unreadable: report it here, quoted like tiers["gold plus"].
      problems.add(PLAIN_KEY.test(key) ? at + key : `${at.replace(/\.$/, '')}[${JSON.stringify(key)}]`, 'unknown key');
    } else if (node === undefined) {
      out[key] = v; // convict's strict validation reports it
    } else if (isLeaf(node)) {
      if (!isPlainObject(v)) out[key] = v;
      else {
        try {
          reportingFormat(node, at + key, problems)(v);
          if (node.objects) wholes.set(at + key, { keys: [...keys, key], value: v });
          else problems.add(at + key, `must not be an object (got ${show(v)})`); // a check that forgot to refuse it
        } catch {
          // reported
        }
      }
    } else if (isPlainObject(v)) {
      out[key] = fitToSpec(v, node, `${at}${key}.`, problems, [], wholes, [...keys, key]);
    } else {
      problems.add(at + key, `must be an object (keys: ${Object.keys(node).join(', ')}), got ${show(v)}`);
    }
  }
  return out;
}

const UNDECLARED = /^configuration param '(.+)' not declared in the schema$/;
const MISSING = /^configuration param '(.+)' missing from config/;

/** Turns convict's error text into problem lines; lines our formats already reported are skipped. */
function reportConvictErrors(text: string, spec: GroupSpec, at: string, problems: Problems, alsoKnown: readonly string[]): void {
  const unknown = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.includes(REPORTED) || line.trim() === '') continue;
    const undeclared = UNDECLARED.exec(line);
    const missing = MISSING.exec(line);
    if (undeclared) {
      const { path, candidates } = firstUnknownKey(spec, undeclared[1]!.split('.'));
      if (unknown.has(path)) continue;
      unknown.add(path);
      const key = path.slice(path.lastIndexOf('.') + 1);
      const hint = suggest(key, at === '' && !path.includes('.') ? [...candidates, ...alsoKnown] : candidates);
      problems.add(at + path, hint ? `unknown key (did you mean "${hint}"?)` : `unknown key (known keys: ${candidates.join(', ')})`);
    } else if (missing) {
      problems.add(at + missing[1]!, 'missing');
    } else {
      problems.add(at === '' ? '(config)' : at.slice(0, -1), line);
    }
  }
}

function firstUnknownKey(spec: GroupSpec, segments: string[]): { path: string; candidates: string[] } {
  let node: GroupSpec = spec;
  for (let i = 0; i < segments.length; i++) {
    const next = Object.hasOwn(node, segments[i]!) ? node[segments[i]!] : undefined;
    if (next === undefined || isLeaf(next)) {
      return { path: segments.slice(0, i + 1).join('.'), candidates: Object.keys(node) };
    }
    node = next;
  }
  return { path: segments.join('.'), candidates: Object.keys(node) };
}

export interface RunOptions {
  /** Env for the `env` overrides of the spec; default none. */
  env?: NodeJS.ProcessEnv;
  /** Keys accepted and dropped without a problem (see RESERVED_KEYS). */
  ignoredKeys?: readonly string[];
}

/**
 * Validates `value` against `spec` with convict and returns the properties with defaults and env
 * overrides applied. Problems go to `problems` with `at` ("apps[0].") in front of their key paths;
 * where a value is bad, the returned property is whatever was given.
 */
export function runSchema(
  spec: GroupSpec,
  value: Record<string, unknown>,
  at: string,
  problems: Problems,
  { env = {}, ignoredKeys = [] }: RunOptions = {},
): Record<string, unknown> {
  const wholes: Wholes = new Map();
  // `args: []` so convict never looks at process.argv.
  const config = convict(toConvict(spec, at, problems, env, wholes) as convict.Schema<Record<string, unknown>>, { env, args: [] });
  const input = fitToSpec(value, spec, at, problems, ignoredKeys, wholes);
  try {
    config.load(input);
    config.validate({ allowed: 'strict' });
  } catch (err) {
    reportConvictErrors(err instanceof Error ? err.message : String(err), spec, at, problems, ignoredKeys);
  }
  const props = config.getProperties();
  for (const { keys, value: whole } of wholes.values()) {
    let parent = props;
    for (const key of keys.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
    parent[keys.at(-1)!] = whole;
  }
  return props;
}

// ---- "did you mean" ----------------------------------------------------------------------------

export function suggest(key: string, candidates: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  for (const candidate of candidates) {
    const d = editDistance(k, candidate.toLowerCase());
    if (d <= bestDistance) {
      best = candidate;
      bestDistance = d - 1;
      if (d === 0) break;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
