/**
 * The checks across keys that the schema cannot make (a port listened on twice, app names, the
 * admin token off loopback, the fleet's timing, a target listed twice) and the building of the
 * typed ProxyConfig from a validated config. The checks read the config as validated or, when it
 * has problems, as written over the defaults, so that every problem is reported at once.
 */
import { hostname } from 'node:os';
import { isLoopbackHost } from '../net/loopback.js';
import { ADMIN_TOKEN_MIN, isAdminOff, isPort, unbracket } from './checks.js';
import { isPlainObject } from './fly.js';
import { keyPath, type Problems, show } from './problems.js';
import type { App, Top } from './schema.js';
import type { AppFacts } from './shaping.js';
import { toHook } from './schema-app.js';
import { readServerTls, readTargetTls } from './tls.js';
import type { AdminConfig, AppConfig, ClusterConfig, LimitsConfig, ServerTlsConfig, TargetConfig, TargetTlsConfig, TracingConfig } from './types.js';
import { parseCountRate, parseDuration, parseHostPort } from './units.js';

type Raw = Record<string, unknown>;

/** One app as the checks see it, and the TLS files read for it. */
export interface AppDraft {
  at: string;
  props: Raw;
  tls: ServerTlsConfig | undefined;
  targetTls: TargetTlsConfig | undefined;
}

/** Each app of `apps` (validated or as written): its TLS files read where their settings are good, and its own cross-key checks. */
export function readApps(apps: unknown, problems: Problems, baseDir: string): AppDraft[] {
  if (!Array.isArray(apps)) return [];
  return apps.flatMap((props: unknown, i): AppDraft[] => {
    if (!isPlainObject(props)) return []; // reported by the schema
    const at = keyPath(['apps', i]);
    // The files only when their settings are good: a problem is reported once.
    const tls = isPlainObject(props['tls']) && !problems.under(`${at}.tls`) ? readServerTls(props['tls'], `${at}.tls`, baseDir, problems) : undefined;
    const targetTls = !problems.under(`${at}.targetTls`) ? readTargetTls(props['targetTls'] ?? false, `${at}.targetTls`, baseDir, problems) : undefined;
    if (props['sniPreread'] === true && isPlainObject(props['tls'])) {
      problems.add(`${at}.sniPreread`, 'is for apps that pass TLS through; with "tls" the server name comes from the handshake (leave sniPreread out)');
    }
    if (props['sniPrereadTimeout'] != null && props['sniPreread'] !== true && !problems.has(`${at}.sniPrereadTimeout`)) {
      problems.add(`${at}.sniPrereadTimeout`, 'is only used with "sniPreread": true (set that too, or leave sniPrereadTimeout out)');
    }
    checkTargets(props['targets'], `${at}.targets`, problems);
    if (isPlainObject(props['preconnect']) && props['sendProxyProtocol'] != null && (isPlainObject(props['targetTls']) || props['targetTls'] === true)) {
      problems.add(
        `${at}.preconnect`,
        'cannot be used with both sendProxyProtocol and targetTls: the PROXY header names the client and must come before the TLS handshake, so that connection cannot be dialed ahead (leave one of them out)',
      );
    }
    return [{ at, props, tls, targetTls }];
  });
}

/** What the shaping checks need to know of each app. */
export function appFacts(apps: readonly AppDraft[]): AppFacts[] {
  return apps.map(({ props }) => {
    const tls = props['tls'];
    return {
      name: props['name'],
      sni: isPlainObject(tls) || props['sniPreread'] === true,
      clientCert: isPlainObject(tls) && (tls['clientAuth'] ?? 'none') !== 'none',
    };
  });
}

const targetAddress = (item: unknown): unknown => (isPlainObject(item) ? item['address'] : item);

/** The address is the target's identity across reloads, so it may appear once per app. */
function checkTargets(list: unknown, at: string, problems: Problems): void {
  if (!Array.isArray(list)) return;
  const seen = new Map<unknown, string>();
  list.forEach((item: unknown, i) => {
    const path = `${at}[${i}]`;
    const address = targetAddress(item);
    if (typeof address !== 'string' || problems.under(path)) return;
    const first = seen.get(address);
    if (first !== undefined) problems.add(path, `${show(address)} is listed twice (also ${first}); list each target once and use "weight"`);
    else seen.set(address, path);
  });
}

export function checkAppNames(apps: readonly AppDraft[], problems: Problems): void {
  const byName = new Map<string, string[]>();
  for (const app of apps) {
    const name = app.props['name'];
    if (typeof name === 'string' && name !== '') byName.set(name, [...(byName.get(name) ?? []), app.at]);
  }
  for (const [name, where] of byName) {
    if (where.length < 2) continue;
    const listed = `${where.slice(0, -1).join(', ')} and ${where.at(-1)}`;
    problems.add(`${where[0]}.name`, `${show(name)} is used by ${listed} (app names must be unique)`);
  }
}

/** A port may be listened on once: by one app, once. Port 0 ("any free port") is exempt. */
export function checkPorts(apps: readonly AppDraft[], adminListen: unknown, problems: Problems): void {
  const owners = new Map<number, string>(); // port -> 'app "web" (apps[0].ports[0])'
  for (const app of apps) {
    const ports = app.props['ports'];
    if (!Array.isArray(ports)) continue;
    const name = app.props['name'];
    ports.forEach((port: unknown, i) => {
      if (!isPort(port) || port === 0) return;
      const path = `${app.at}.ports[${i}]`;
      const owner = owners.get(port);
      if (owner) problems.add(path, `port ${port} is already used by ${owner}`);
      else owners.set(port, typeof name === 'string' && name !== '' ? `app ${show(name)} (${path})` : path);
    });
  }
  const port = listenPort(adminListen);
  const owner = port === undefined ? undefined : owners.get(port);
  if (owner) problems.add('admin.listen', `port ${port} is already used by ${owner}`);
}

const listenPort = (listen: unknown): number | undefined => {
  if (isAdminOff(listen)) return undefined;
  try {
    return parseHostPort(listen, true).port;
  } catch {
    return undefined; // reported by the admin.listen check
  }
};

/** A token is required unless the admin API listens on loopback only (see src/admin/auth.ts). */
export function checkAdminToken(admin: unknown, problems: Problems): void {
  if (!isPlainObject(admin) || isAdminOff(admin['listen']) || problems.has('admin.listen') || problems.has('admin.token')) return;
  if (typeof admin['token'] === 'string' && admin['token'] !== '') return;
  if (Array.isArray(admin['tokens']) && admin['tokens'].length > 0) return;
  let host: string;
  try {
    host = parseHostPort(admin['listen'], true).host;
  } catch {
    return; // reported by the admin.listen check
  }
  if (isLoopbackHost(host)) return;
  problems.add(
    'admin.token',
    `required when admin.listen is not a loopback address (${show(admin['listen'])}); set a token of at least ${ADMIN_TOKEN_MIN} characters or listen on 127.0.0.1`,
  );
}

/** A `cluster` block needs its Redis; heartbeats must come more often than members time out. */
export function checkCluster(written: unknown, cluster: unknown, problems: Problems): void {
  if (!isPlainObject(cluster)) return;
  if (cluster['redis'] === null || cluster['redis'] === undefined) {
    if (isPlainObject(written) && Object.keys(written).length > 0 && !problems.has('cluster.redis')) {
      problems.add('cluster.redis', 'required when "cluster" is set, the Redis URL of the fleet, e.g. "redis://127.0.0.1:6379" (leave "cluster" out to run alone)');
    }
    return;
  }
  if (problems.under('cluster.rebalanceInterval') || problems.under('cluster.memberTimeout')) return;
  const every = parseDuration(cluster['rebalanceInterval']);
  const timeout = parseDuration(cluster['memberTimeout']);
  if (timeout < 2 * every) {
    problems.add('cluster.memberTimeout', `must be at least twice cluster.rebalanceInterval (${every}ms), or one late heartbeat drops an instance from the fleet (got ${timeout}ms)`);
  }
}

// ---- the typed config of a validated one --------------------------------------------------------

export function toAppConfig(app: App, { tls, targetTls }: AppDraft, defaultBind: string): AppConfig {
  return {
    name: app.name,
    ports: app.ports,
    bind: app.bind === null ? defaultBind : unbracket(app.bind),
    targets: app.targets.map(toTarget),
    balance: app.balance,
    connectTimeout: parseDuration(app.connectTimeout),
    idleTimeout: parseDuration(app.idleTimeout),
    protocol: app.protocol,
    ...(app.dataPlane !== null ? { dataPlane: app.dataPlane } : {}),
    // Only when on, so configs without them look as before.
    ...(app.acceptProxyProtocol ? { acceptProxyProtocol: true } : {}),
    ...(app.sendProxyProtocol ? { sendProxyProtocol: app.sendProxyProtocol } : {}),
    ...(tls ? { tls } : {}),
    ...(targetTls ? { targetTls } : {}),
    ...(app.sniPreread ? { sniPreread: true } : {}),
    ...(app.sniPreread && app.sniPrereadTimeout !== null ? { sniPrereadTimeout: parseDuration(app.sniPrereadTimeout) } : {}),
    ...(app.preconnect !== null ? { preconnect: { count: app.preconnect.count, maxIdle: parseDuration(app.preconnect.maxIdle) } } : {}),
    ...(app.wake !== null ? { wake: { hook: toHook(app.wake), timeout: parseDuration(app.wake.timeout) } } : {}),
    ...(app.sleep !== null ? { sleep: { hook: toHook(app.sleep), after: parseDuration(app.sleep.after) } } : {}),
    ...(app.allow !== null ? { allow: app.allow } : {}),
    ...(app.deny !== null ? { deny: app.deny } : {}),
  };
}

function toTarget(target: App['targets'][number]): TargetConfig {
  const address = typeof target === 'string' ? target : target.address;
  return { address, ...parseHostPort(address), weight: typeof target === 'string' ? 1 : target.weight };
}

export function toAdmin(admin: Top['admin'], tls: AdminConfig['tls']): AdminConfig | null {
  if (!isPlainObject(admin) || isAdminOff(admin.listen)) return null;
  const { token, tokens } = admin;
  return {
    ...parseHostPort(admin.listen, true),
    ...(typeof token === 'string' && token !== '' ? { token } : {}),
    ...(tokens ? { tokens } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** Each token is one role: the same token twice (or admin.token again in admin.tokens) is a mistake. */
export function checkAdminTokens(admin: unknown, problems: Problems): void {
  if (!isPlainObject(admin) || !Array.isArray(admin['tokens'])) return;
  const seen = new Map<string, string>();
  if (typeof admin['token'] === 'string' && admin['token'] !== '') seen.set(admin['token'], 'admin.token');
  admin['tokens'].forEach((entry: unknown, i) => {
    const token = isPlainObject(entry) ? entry['token'] : undefined;
    const at = `admin.tokens[${i}].token`;
    if (typeof token !== 'string' || problems.has(at)) return;
    const first = seen.get(token);
    if (first) problems.add(at, `is the same token as ${first} (give each role its own token)`);
    else seen.set(token, at);
  });
}

/** `limits`: keys left null are dropped (no limit); no key set: no `limits` at all. */
export function toLimits(raw: Top['limits']): { limits?: LimitsConfig } {
  const per = raw.perSource;
  const limits: LimitsConfig = { perSource: {} };
  if (per.maxConnections !== null) limits.perSource.maxConnections = per.maxConnections;
  if (per.acceptRate !== null) limits.perSource.acceptRate = parseCountRate(per.acceptRate);
  if (raw.maxConnections !== null) limits.maxConnections = raw.maxConnections;
  return Object.keys(limits.perSource).length > 0 || limits.maxConnections !== undefined ? { limits } : {};
}

/** `cluster`; no `cluster.redis`: no cluster at all. */
export function toCluster(raw: Top['cluster']): { cluster?: ClusterConfig } {
  if (!isPlainObject(raw) || raw.redis === null) return {};
  return {
    cluster: {
      redis: raw.redis,
      instance: raw.instance ?? `${hostname()}-${process.pid}`,
      fallbackShare: raw.fallbackShare,
      rebalanceInterval: parseDuration(raw.rebalanceInterval),
      memberTimeout: parseDuration(raw.memberTimeout),
      redisTimeout: parseDuration(raw.redisTimeout),
      prefix: raw.prefix,
    },
  };
}

/** `tracing`; null or left out: off. A bare origin gets the OTLP traces path. */
export function toTracing(raw: Top['tracing']): { tracing?: TracingConfig } {
  if (!raw) return {};
  const url = new URL(raw.otlp);
  if (url.pathname === '/') url.pathname = '/v1/traces';
  return { tracing: { otlp: url.toString(), sample: raw.sample, flush: parseDuration(raw.flush), service: raw.service } };
}
