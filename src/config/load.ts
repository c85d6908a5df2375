/**
 * Reading the config: file -> parsed object (JSON, YAML or TOML) -> validated, normalised
 * ProxyConfig. Every problem in a config is reported at once, one line each, starting with its
 * key path, in a single ConfigError.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { isLoopbackHost } from '../admin/auth.js';
import { ConfigError, ProxyError } from '../errors.js';
import { fromFlyFormat, isPlainObject } from './fly.js';
import {
  APP_SCHEMA,
  APPS_REQUIRED,
  CUSTOMER_SCHEMA,
  ADMIN_TOKEN_MIN,
  isAdminOff,
  isPort,
  Problems,
  RESERVED_KEYS,
  runSchema,
  show,
  TARGET_SCHEMA,
  TIER_SCHEMA,
  tierNameProblem,
  TOP_SCHEMA,
  unbracket,
} from './schema.js';
import type {
  AppConfig,
  BalanceKind,
  ClusterConfig,
  CustomerConfig,
  CustomerMatch,
  LevelLimits,
  LimitsConfig,
  ProxyConfig,
  ShapingConfig,
  TargetConfig,
  TierConfig,
} from './types.js';
import { UNLIMITED } from './types.js';
import type { ServerTlsConfig, TargetTlsConfig } from './types.js';
import { readServerTls, readTargetTls } from './tls.js';
import { parseCountRate, parseDuration, parseHostPort, parseRate, parseSize } from './units.js';
import { logLevel } from '../log.js';

export { ConfigError };

type Parse = (text: string) => unknown;
// The YAML and TOML parsers are loaded only for such files: together they add
// about 11 MB to the resident size of a proxy whose config is JSON.
const yamlParser = async (): Promise<Parse> => {
  const { parse } = await import('yaml');
  return (text) => parse(text, { logLevel: 'error' }) as unknown;
};
const PARSERS: Record<string, { kind: string; load: () => Promise<Parse> }> = {
  '.json': { kind: 'JSON', load: async () => (text) => JSON.parse(text) as unknown },
  '.yaml': { kind: 'YAML', load: yamlParser },
  '.yml': { kind: 'YAML', load: yamlParser },
  '.toml': { kind: 'TOML', load: async () => (await import('smol-toml')).parse },
};
export const CONFIG_EXTENSIONS = Object.keys(PARSERS);

/** Reads and validates a config file; the parser is picked by the extension. */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ProxyConfig> {
  const file = resolve(path);
  const parser = PARSERS[extname(file).toLowerCase()];
  if (!parser) {
    throw new ProxyError(
      'SHAPER_ERR_CONFIG_READ',
      `${file}: unknown config file extension "${extname(file)}" (use ${CONFIG_EXTENSIONS.join(', ')})`,
    );
  }
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  } catch (err) {
    throw new ProxyError('SHAPER_ERR_CONFIG_READ', `${file}: cannot read the config file (${errorText(err)})`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = (await parser.load())(text);
  } catch (err) {
    const { where, message } = describeParseError(err, text, parser.kind);
    throw new ProxyError('SHAPER_ERR_CONFIG_READ', `${file}${where}: not valid ${parser.kind}: ${message}`, { cause: err });
  }
  try {
    // Paths in the config (TLS files, stateFile) are relative to the config file.
    const config = parseConfig(raw, env, { baseDir: dirname(file) });
    // A relative stateFile is relative to the config file, not to wherever the proxy was started.
    if (config.stateFile !== null && !isAbsolute(config.stateFile)) config.stateFile = resolve(dirname(file), config.stateFile);
    return { ...config, source: file };
  } catch (err) {
    if (err instanceof ConfigError) err.source = file;
    throw err;
  }
}

export interface ParseOptions {
  /** What relative file paths (TLS certificates and keys) are relative to; default the working directory. */
  baseDir?: string;
}

/**
 * Validates and normalises an already parsed config; throws ConfigError listing every problem.
 * The TLS files it names are read (synchronously: a few KB at start or reload) and checked.
 */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, { baseDir = process.cwd() }: ParseOptions = {}): ProxyConfig {
  const problems = new Problems();
  const input = fromFlyFormat(raw);
  if (!isPlainObject(input)) throw new ConfigError([`apps: ${APPS_REQUIRED}`]);

  const top = runSchema(TOP_SCHEMA, clusterOff(adminShorthand(input)), '', problems, { env, ignoredKeys: RESERVED_KEYS });
  const apps = Array.isArray(top['apps']) ? top['apps'].map((app: unknown, i) => readApp(app, i, problems, baseDir)) : [];
  const admin = top['admin'] as { listen: unknown; token: unknown };
  checkAppNames(apps, problems);
  checkPorts(apps, admin.listen, problems);
  checkAdminToken(admin, problems);
  checkCluster(input, top['cluster'] as Record<string, unknown>, problems);
  const shaping = readShaping(top, apps, problems);
  if (problems.count > 0) throw new ConfigError(problems.lines);

  const bind = unbracket(top['bind'] as string);
  const health = top['health'] as Record<string, unknown>;
  return {
    apps: apps.map((draft) => toAppConfig(draft!, bind)),
    health: {
      interval: parseDuration(health['interval']),
      timeout: parseDuration(health['timeout']),
      unhealthyAfter: health['unhealthyAfter'] as number,
      healthyAfter: health['healthyAfter'] as number,
    },
    admin: isAdminOff(admin.listen)
      ? null
      : { ...parseHostPort(admin.listen, true), ...(typeof admin.token === 'string' && admin.token !== '' ? { token: admin.token } : {}) },
    log: { level: logLevel((top['log'] as { level: unknown }).level) ?? 'info' },
    drainTimeout: parseDuration(top['drainTimeout']),
    observe: top['observe'] as { latency: boolean; foo: boolean },
    ...readLimits(top['limits'] as Record<string, unknown>),
    ...readCluster(top['cluster'] as Record<string, unknown>),
    ...shaping,
  };
}

/** A token is required unless the admin API listens on loopback only (see src/admin/auth.ts). */
function checkAdminToken(admin: { listen: unknown; token: unknown }, problems: Problems): void {
  if (isAdminOff(admin.listen) || problems.has('admin.listen') || problems.has('admin.token') || (typeof admin.token === 'string' && admin.token !== '')) return;
  let host: string;
  try {
    host = parseHostPort(admin.listen, true).host;
  } catch {
    return; // reported by the admin.listen check
  }
  if (isLoopbackHost(host)) return;
  problems.add(
    'admin.token',
    `required when admin.listen is not a loopback address (${show(admin.listen)}); set a token of at least ${ADMIN_TOKEN_MIN} characters or listen on 127.0.0.1`,
  );
}

/** `limits` after the schema checks: keys left null are dropped (no limit); no key set: no `limits` at all. */
function readLimits(raw: Record<string, unknown>): { limits?: LimitsConfig } {
  const per = raw['perSource'] as Record<string, unknown>;
  const limits: LimitsConfig = { perSource: {} };
  if (per['maxConnections'] !== null) limits.perSource.maxConnections = per['maxConnections'] as number;
  if (per['acceptRate'] !== null) limits.perSource.acceptRate = parseCountRate(per['acceptRate']);
  if (raw['maxConnections'] !== null) limits.maxConnections = raw['maxConnections'] as number;
  return Object.keys(limits.perSource).length > 0 || limits.maxConnections !== undefined ? { limits } : {};
}

/** `"cluster": null` or `false`: running alone, as with no `cluster` at all. */
function clusterOff(input: Record<string, unknown>): Record<string, unknown> {
  if (input['cluster'] !== null && input['cluster'] !== false) return input;
  const { cluster: _off, ...rest } = input;
  return rest;
}

/** A `cluster` block needs its Redis; heartbeats must come more often than members time out. */
function checkCluster(input: Record<string, unknown>, cluster: Record<string, unknown>, problems: Problems): void {
  const written = input['cluster'];
  if (cluster['redis'] === null) {
    if (isPlainObject(written) && Object.keys(written).length > 0 && !problems.has('cluster.redis')) {
      problems.add('cluster.redis', 'required when "cluster" is set, the Redis URL of the fleet, e.g. "redis://127.0.0.1:6379" (leave "cluster" out to run alone)');
    }
    return;
  }
  if (problems.has('cluster.rebalanceInterval') || problems.has('cluster.memberTimeout')) return;
  const every = parseDuration(cluster['rebalanceInterval']);
  const timeout = parseDuration(cluster['memberTimeout']);
  if (timeout < 2 * every) {
    problems.add('cluster.memberTimeout', `must be at least twice cluster.rebalanceInterval (${every}ms), or one late heartbeat drops an instance from the fleet (got ${timeout}ms)`);
  }
}

/** `cluster` after the schema checks; no `cluster.redis`: no cluster at all. */
function readCluster(raw: Record<string, unknown>): { cluster?: ClusterConfig } {
  if (raw['redis'] === null) return {};
  return {
    cluster: {
      redis: raw['redis'] as string,
      instance: (raw['instance'] as string | null) ?? `${hostname()}-${process.pid}`,
      fallbackShare: raw['fallbackShare'] as number | null,
      rebalanceInterval: parseDuration(raw['rebalanceInterval']),
      memberTimeout: parseDuration(raw['memberTimeout']),
      redisTimeout: parseDuration(raw['redisTimeout']),
      prefix: raw['prefix'] as string,
    },
  };
}

/** `"admin": false` / `null` / `"off"` turn the admin server off; `"admin": "host:port"` is short for {listen}. */
function adminShorthand(input: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(input, 'admin')) return input;
  const admin = input['admin'];
  if (admin === false || admin === null || typeof admin === 'string') {
    return { ...input, admin: { listen: admin === false ? null : admin } };
  }
  if (admin === true) {
    const { admin: _on, ...rest } = input;
    return rest;
  }
  return input;
}

/** The validated properties of one app; undefined when the element is not even an object. */
interface AppDraft {
  at: string;
  props: Record<string, unknown>;
  targets: TargetConfig[];
  tls: ServerTlsConfig | undefined;
  targetTls: TargetTlsConfig | undefined;
}

function readApp(app: unknown, index: number, problems: Problems, baseDir: string): AppDraft | undefined {
  const at = `apps[${index}]`;
  if (!isPlainObject(app)) {
    problems.add(at, `must be an object with name, ports and targets (got ${show(app)})`);
    return undefined;
  }
  const props = runSchema(APP_SCHEMA, app, `${at}.`, problems);
  // The files only when their settings are good: a problem is reported once.
  const good = (key: string): boolean => !problems.lines.some((l) => l.startsWith(`${at}.${key}`));
  const tls = isPlainObject(props['tls']) && good('tls') ? readServerTls(props['tls'], `${at}.tls`, baseDir, problems) : undefined;
  const targetTls = good('targetTls') ? readTargetTls(props['targetTls'], `${at}.targetTls`, baseDir, problems) : undefined;
  if (props['sniPreread'] === true && isPlainObject(props['tls'])) {
    problems.add(`${at}.sniPreread`, 'is for apps that pass TLS through; with "tls" the server name comes from the handshake (leave sniPreread out)');
  }
  if (props['sniPrereadTimeout'] !== null && props['sniPreread'] !== true && good('sniPrereadTimeout')) {
    problems.add(`${at}.sniPrereadTimeout`, 'is only used with "sniPreread": true (set that too, or leave sniPrereadTimeout out)');
  }
  return { at, props, targets: readTargets(props['targets'], `${at}.targets`, problems), tls, targetTls };
}

function readTargets(list: unknown, at: string, problems: Problems): TargetConfig[] {
  if (!Array.isArray(list)) return []; // the targets check reported it
  const targets: TargetConfig[] = [];
  const seen = new Map<string, string>();
  list.forEach((item: unknown, i) => {
    const path = `${at}[${i}]`;
    let address: string;
    let weight = 1;
    if (typeof item === 'string') {
      address = item;
      try {
        parseHostPort(item);
      } catch (err) {
        problems.add(path, errorText(err));
        return;
      }
    } else if (isPlainObject(item)) {
      const before = problems.count;
      const props = runSchema(TARGET_SCHEMA, item, `${path}.`, problems);
      if (problems.count > before) return;
      address = props['address'] as string;
      weight = props['weight'] as number;
    } else {
      problems.add(path, `must be "host:port" or {"address": "host:port", "weight": 2} (got ${show(item)})`);
      return;
    }
    // The address is the target's identity across reloads, so it may appear once per app.
    const first = seen.get(address);
    if (first !== undefined) {
      problems.add(path, `${show(address)} is listed twice (also ${first}); list each target once and use "weight"`);
      return;
    }
    seen.set(address, path);
    targets.push({ address, ...parseHostPort(address), weight });
  });
  return targets;
}

function checkAppNames(apps: (AppDraft | undefined)[], problems: Problems): void {
  const byName = new Map<string, string[]>();
  for (const app of apps) {
    const name = app?.props['name'];
    if (typeof name === 'string' && name !== '') byName.set(name, [...(byName.get(name) ?? []), app!.at]);
  }
  for (const [name, where] of byName) {
    if (where.length < 2) continue;
    const listed = `${where.slice(0, -1).join(', ')} and ${where.at(-1)}`;
    problems.add(`${where[0]}.name`, `${show(name)} is used by ${listed} (app names must be unique)`);
  }
}

/** A port may be listened on once: by one app, once. Port 0 ("any free port") is exempt. */
function checkPorts(apps: (AppDraft | undefined)[], adminListen: unknown, problems: Problems): void {
  const owners = new Map<number, string>(); // port -> 'app "web" (apps[0].ports[0])'
  for (const app of apps) {
    const ports = app?.props['ports'];
    if (!app || !Array.isArray(ports)) continue;
    const name = app.props['name'];
    ports.forEach((port: unknown, i) => {
      if (!isPort(port) || port === 0) return;
      const path = `${app.at}.ports[${i}]`;
      const owner = owners.get(port);
      if (owner) problems.add(path, `port ${port} is already used by ${owner}`);
      else owners.set(port, typeof name === 'string' && name !== '' ? `app ${show(name)} (${path})` : path);
    });
  }
  if (isAdminOff(adminListen)) return;
  try {
    const { port } = parseHostPort(adminListen, true);
    const owner = owners.get(port);
    if (owner) problems.add('admin.listen', `port ${port} is already used by ${owner}`);
  } catch {
    // reported by the admin.listen check
  }
}

function toAppConfig({ props, targets, tls, targetTls }: AppDraft, defaultBind: string): AppConfig {
  return {
    name: props['name'] as string,
    ports: props['ports'] as number[],
    bind: props['bind'] === null ? defaultBind : unbracket(props['bind'] as string),
    targets,
    balance: props['balance'] as BalanceKind,
    connectTimeout: parseDuration(props['connectTimeout']),
    idleTimeout: parseDuration(props['idleTimeout']),
    protocol: props['protocol'] as AppConfig['protocol'],
    // Only when on, so configs without them look as before.
    ...(props['acceptProxyProtocol'] === true ? { acceptProxyProtocol: true } : {}),
    ...(props['sendProxyProtocol'] ? { sendProxyProtocol: props['sendProxyProtocol'] as 'v1' | 'v2' } : {}),
    ...(tls ? { tls } : {}),
    ...(targetTls ? { targetTls } : {}),
    ...(props['sniPreread'] === true ? { sniPreread: true } : {}),
    ...(props['sniPreread'] === true && props['sniPrereadTimeout'] !== null ? { sniPrereadTimeout: parseDuration(props['sniPrereadTimeout']) } : {}),
  };
}

// ---- shaping: tiers, customers, global --------------------------------------------------------

/**
 * Reads the shaping part of the validated top level. Tier and customer references are checked
 * against the tier names written in the config (even where that tier has problems of its own, so
 * one mistake is not reported again at every reference) and against the app names.
 */
function readShaping(top: Record<string, unknown>, apps: (AppDraft | undefined)[], problems: Problems): ShapingConfig {
  const { tiers, names: tierNames } = readTiers(top['tiers'], problems);
  const known = knownTiers(tierNames);
  const isTier = (name: unknown): boolean => typeof name === 'string' && tierNames.includes(name);

  const appNames = apps.map((a) => a?.props['name']).filter((n): n is string => typeof n === 'string' && n !== '');
  const appsWhere = (known: (props: Record<string, unknown>) => boolean) => apps.filter((a) => a && known(a.props)).map((a) => a!.props['name']);
  // Where a server name is known: apps that terminate TLS or preread the ClientHello; a client
  // certificate: apps that ask for one.
  const knownOn = {
    sni: { apps: appsWhere((p) => isPlainObject(p['tls']) || p['sniPreread'] === true), what: '"tls" or "sniPreread", so no connection carries a server name' },
    clientCert: {
      apps: appsWhere((p) => isPlainObject(p['tls']) && (p['tls']['clientAuth'] ?? 'none') !== 'none'),
      what: '"tls.clientAuth" ("require" or "optional"), so no connection carries a client certificate',
    },
  };
  const customers = readCustomers(top['customers'], problems, (path, name) => {
    if (!problems.has(path) && !isTier(name)) problems.add(path, `${show(name)} is not a tier ${known}`);
  }, (path, name) => {
    if (!appNames.includes(name)) problems.add(path, `no app named ${show(name)} (apps: ${appNames.join(', ')})`);
  }, (path, criterion, matchApps) => {
    if ((matchApps ?? appNames).some((a) => knownOn[criterion].apps.includes(a))) return;
    const which = matchApps ? `none of its apps (${matchApps.join(', ')})` : 'no app';
    problems.add(path, `can never match: ${which} has ${knownOn[criterion].what}`);
  });

  const defaultTier = top['defaultTier'];
  if (typeof defaultTier === 'string' && !problems.has('defaultTier') && !isTier(defaultTier)) {
    problems.add('defaultTier', `${show(defaultTier)} is not a tier ${known}`);
  }
  const stateFile = top['stateFile'];
  return {
    tiers,
    // Only a valid level can be converted; with problems, the config is rejected anyway.
    global: problems.count === 0 ? toLevel(top['global']) : { ...UNLIMITED },
    customers,
    defaultTier: typeof defaultTier === 'string' ? defaultTier : null,
    stateFile: typeof stateFile === 'string' ? stateFile : null,
  };
}

/** The tiers that are valid, and the names of all tiers written with a valid name. */
function readTiers(map: unknown, problems: Problems): { tiers: Record<string, TierConfig>; names: string[] } {
  const tiers: Record<string, TierConfig> = {};
  const names: string[] = [];
  if (!isPlainObject(map)) return { tiers, names }; // null, or reported by the tiers check
  for (const [name, tier] of Object.entries(map)) {
    const nameProblem = tierNameProblem(name);
    if (nameProblem !== undefined) {
      problems.add(`tiers[${show(name)}]`, nameProblem);
      continue;
    }
    names.push(name);
    const at = `tiers.${name}`;
    if (!isPlainObject(tier)) {
      problems.add(at, `must be an object (keys: ${Object.keys(TIER_SCHEMA).join(', ')}), got ${show(tier)}`);
      continue;
    }
    const before = problems.count;
    const props = runSchema(TIER_SCHEMA, tier, `${at}.`, problems);
    if (problems.count > before) continue;
    const config: TierConfig = {
      name,
      rtt: parseDuration(props['rtt']),
      weight: props['weight'] as number,
      connection: toLevel(props['connection']),
      customer: toLevel(props['customer']),
      total: toLevel(props['total']),
    };
    if (props['maxConnections'] !== null) config.maxConnections = props['maxConnections'] as number;
    if (props['connectionRate'] !== null) config.connectionRate = parseCountRate(props['connectionRate']);
    tiers[name] = config;
  }
  return { tiers, names };
}

/** Validated level properties -> LevelLimits; bursts only where given. */
function toLevel(value: unknown): LevelLimits {
  const props = value as { down: unknown; up: unknown; burst: unknown };
  const level: LevelLimits = { down: parseRate(props.down), up: parseRate(props.up) };
  const burst = props.burst;
  if (isPlainObject(burst)) {
    if (burst['down'] !== undefined) level.burstDown = parseSize(burst['down']);
    if (burst['up'] !== undefined) level.burstUp = parseSize(burst['up']);
  } else if (burst !== null && burst !== undefined) {
    level.burstDown = parseSize(burst);
    level.burstUp = level.burstDown;
  }
  return level;
}

type RefCheck = (path: string, name: string) => void;

function readCustomers(
  list: unknown,
  problems: Problems,
  checkTier: RefCheck,
  checkApp: RefCheck,
  checkKnown: (path: string, criterion: 'sni' | 'clientCert', apps: string[] | undefined) => void,
): CustomerConfig[] {
  if (!Array.isArray(list)) return []; // null, or reported by the customers check
  const customers: CustomerConfig[] = [];
  const byId = new Map<string, string[]>();
  list.forEach((item: unknown, i) => {
    const at = `customers[${i}]`;
    if (!isPlainObject(item)) {
      problems.add(at, `must be an object with id, tier and match (got ${show(item)})`);
      return;
    }
    const { id, customer } = readCustomer(item, at, problems, checkTier, checkApp);
    if (typeof id === 'string' && !problems.has(`${at}.id`)) byId.set(id, [...(byId.get(id) ?? []), at]);
    if (customer?.match.sni) checkKnown(`${at}.match.sni`, 'sni', customer.match.apps);
    if (customer?.match.clientCert) checkKnown(`${at}.match.clientCert`, 'clientCert', customer.match.apps);
    if (customer) customers.push(customer);
  });
  for (const [id, where] of byId) {
    if (where.length < 2) continue;
    const listed = `${where.slice(0, -1).join(', ')} and ${where.at(-1)}`;
    problems.add(`${where[0]}.id`, `${show(id)} is used by ${listed} (customer ids must be unique)`);
  }
  return customers;
}

/** One customer object at `at`; `customer` is set only when it has no problems. */
function readCustomer(
  item: Record<string, unknown>,
  at: string,
  problems: Problems,
  checkTier: RefCheck,
  checkApp: RefCheck,
): { id: unknown; customer: CustomerConfig | undefined } {
  // "match": null is the same as leaving it out: match everything.
  const input = item['match'] === null ? { ...item, match: {} } : item;
  const before = problems.count;
  const props = runSchema(CUSTOMER_SCHEMA, input, `${at}.`, problems);
  const id = props['id'];
  if (typeof props['tier'] === 'string') checkTier(`${at}.tier`, props['tier']);
  const m = props['match'] as { sources: unknown; apps: unknown; ports: unknown; sni: unknown; clientCert: unknown };
  if (Array.isArray(m.apps) && !problems.has(`${at}.match.apps`)) {
    m.apps.forEach((app: unknown, j) => {
      const path = `${at}.match.apps[${j}]`;
      if (typeof app === 'string' && !problems.has(path)) checkApp(path, app);
    });
  }
  if (problems.count > before) return { id, customer: undefined };
  const match: CustomerMatch = {};
  if (m.sources !== null) match.sources = m.sources as string[];
  if (m.apps !== null) match.apps = m.apps as string[];
  if (m.ports !== null) match.ports = m.ports as number[];
  if (m.sni !== null) match.sni = typeof m.sni === 'string' ? [m.sni] : (m.sni as string[]);
  if (m.clientCert !== null) match.clientCert = typeof m.clientCert === 'string' ? [m.clientCert] : (m.clientCert as string[]);
  return { id, customer: { id: id as string, tier: props['tier'] as string, match } };
}

/** "(tiers: free, gold)": what a reference to a missing tier could have named. */
function knownTiers(tierNames: readonly string[]): string {
  return `(${tierNames.length > 0 ? `tiers: ${tierNames.join(', ')}` : 'no tiers are defined; add them under "tiers"'})`;
}

// ---- one tier or customer at a time (admin API, runtime state) ----------------------------------

/**
 * One tier object, exactly as it is written under "tiers" in a config, validated by the same
 * code as the config; problems carry paths like `tiers.gold.connection.down`.
 */
export function parseTierBody(name: string, raw: unknown): TierConfig {
  const problems = new Problems();
  const { tiers } = readTiers({ [name]: raw }, problems);
  const tier = Object.hasOwn(tiers, name) ? tiers[name] : undefined;
  if (problems.count > 0 || !tier) throw new ConfigError(problems.lines.length > 0 ? problems.lines : [`tiers.${name}: invalid`]);
  return tier;
}

/**
 * One customer's `{"tier": ..., "match": ...}` (its id comes from elsewhere, e.g. the URL),
 * validated like a customer in a config against the given tier and app names; problems carry
 * paths like `customers.acme.tier`.
 */
export function parseCustomerBody(
  id: string,
  raw: unknown,
  tierNames: readonly string[],
  appNames: readonly string[],
): CustomerConfig {
  const at = /^[A-Za-z0-9_-]+$/.test(id) ? `customers.${id}` : `customers[${show(id)}]`;
  if (!isPlainObject(raw)) {
    throw new ConfigError([
      `${at}: must be an object with tier and match, like {"tier": "gold", "match": {"sources": ["10.1.0.0/16"]}} (got ${show(raw)})`,
    ]);
  }
  const problems = new Problems();
  if (Object.hasOwn(raw, 'id') && raw['id'] !== id) {
    problems.add(`${at}.id`, `${show(raw['id'])} differs from the customer id ${show(id)} it is given for (leave "id" out)`);
  }
  const checkTier: RefCheck = (path, name) => {
    if (!problems.has(path) && !tierNames.includes(name)) problems.add(path, `${show(name)} is not a tier ${knownTiers(tierNames)}`);
  };
  const checkApp: RefCheck = (path, name) => {
    if (!appNames.includes(name)) problems.add(path, `no app named ${show(name)} (apps: ${appNames.join(', ')})`);
  };
  const { customer } = readCustomer({ ...raw, id }, at, problems, checkTier, checkApp);
  if (problems.count > 0 || !customer) throw new ConfigError(problems.lines.length > 0 ? problems.lines : [`${at}: invalid`]);
  return customer;
}

// ---- parse errors --------------------------------------------------------------------------------

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** ":line:col" (when known) and a one-line message. */
function describeParseError(err: unknown, text: string, kind: string): { where: string; message: string } {
  const firstLine = errorText(err).split('\n')[0]!;
  const e = err as { name?: string; linePos?: { line: number; col: number }[]; line?: number; column?: number };
  if (e.name?.startsWith('YAML') && e.linePos) {
    const { line, col } = e.linePos[0]!;
    return { where: `:${line}:${col}`, message: firstLine.replace(/ at line \d+, column \d+:?$/, '') };
  }
  if (err instanceof Error && err.constructor.name === 'TomlError') {
    return { where: `:${e.line}:${e.column}`, message: firstLine.replace(/^Invalid TOML document: /, '') };
  }
  if (kind === 'JSON') {
    // V8's JSON.parse messages carry a position only sometimes, and may quote the source over
    // several lines; find the offending character ourselves instead.
    const offset = jsonErrorOffset(text);
    if (offset >= 0) {
      const before = text.slice(0, offset).split('\n');
      const found = offset >= text.length ? 'end of file' : show(text[offset]);
      return { where: `:${before.length}:${before.at(-1)!.length + 1}`, message: `unexpected ${found}` };
    }
  }
  return { where: '', message: firstLine };
}

/** Offset of the first character that makes `text` invalid JSON, or -1 if it is valid. */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const space = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const expect = (ch: string): void => {
    if (text[i] !== ch) fail();
    i++;
  };
  const string = (): void => {
    expect('"');
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      } else if (text.charCodeAt(i) < 0x20) fail();
      i++;
    }
    expect('"');
  };
  const value = (): void => {
    space();
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      const close = ch === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (close === '}') {
          space();
          string();
          space();
          expect(':');
        }
        value();
        space();
        if (text[i] === ',') i++;
        else return expect(close);
      }
    }
    if (ch === '"') return string();
    const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
    literal.lastIndex = i;
    if (!literal.test(text)) fail();
    i = literal.lastIndex;
  };
  try {
    value();
    space();
    if (i < text.length) fail();
    return -1;
  } catch (offset) {
    if (typeof offset === 'number') return offset;
    throw offset;
  }
}
