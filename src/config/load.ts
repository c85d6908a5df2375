/**
 * Reading the config: file -> parsed object (formats.ts) -> checked against THE schema
 * (schema.ts, validate.ts) -> checks across keys (build.ts, shaping.ts) -> the typed ProxyConfig.
 * Every problem in a config is reported at once, one line each, starting with its key path, in a
 * single ConfigError.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { logLevel } from '../log.js';
import { appFacts, checkAdminToken, checkAdminTokens, checkAppNames, checkCluster, checkPorts, readApps, toAdmin, toAppConfig, toCluster, toLimits, toTracing } from './build.js';
import { readAdminTls } from './tls.js';
import { APPS_REQUIRED, tierNameProblem, unbracket } from './checks.js';
import { readConfigFile } from './formats.js';
import { fromFlyFormat, isPlainObject } from './fly.js';
import { Problems } from './problems.js';
import { RESERVED_KEYS, TOP } from './schema.js';
import { checkShaping, toShaping } from './shaping.js';
import { defaultStateDir, stateDirOf } from './state-dir.js';
import type { ProxyConfig, StateDir } from './types.js';
import { parseDuration } from './units.js';
import { validate, withEnv } from './validate.js';

export { ConfigError };
export { CONFIG_EXTENSIONS, jsonErrorOffset } from './formats.js';
export { parseCustomerBody, parseTierBody } from './shaping.js';

/** Reads and validates a config file; the parser is picked by the extension. */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ProxyConfig> {
  const file = resolve(path);
  const raw = await readConfigFile(file);
  try {
    // Paths in the config (TLS files, stateFile) are relative to the config file.
    const config = parseConfig(raw, env, { baseDir: dirname(file) });
    // A relative stateFile is relative to the config file, not to wherever the proxy was started.
    if (config.stateFile !== null && !isAbsolute(config.stateFile)) config.stateFile = resolve(dirname(file), config.stateFile);
    const usageLog = config.accounting?.log;
    if (usageLog && !isAbsolute(usageLog)) config.accounting!.log = resolve(dirname(file), usageLog);
    // A config file always has a state directory: the per-user default when nothing else names one.
    return { ...config, stateDir: config.stateDir ?? defaultStateDir(env), source: file };
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
  const written = fromFlyFormat(raw);
  if (!isPlainObject(written)) throw new ConfigError([`apps: ${APPS_REQUIRED}`]);
  const input = shorthands(written);
  const problems = new Problems();
  const top = validate(TOP, input, [], problems, { env, nameMaps: { tiers: tierNameProblem } });
  // The checks across keys read the validated config or, when it has problems, what was written
  // over the defaults (as a value that is wrong somewhere is still read elsewhere).
  const view = (top ?? overDefaults(withEnv(TOP, input, env).value)) as Record<string, unknown>;
  const apps = readApps(view['apps'], problems, baseDir);
  const admin = view['admin'];
  checkAppNames(apps, problems);
  checkPorts(apps, isPlainObject(admin) ? admin['listen'] : undefined, problems);
  checkAdminToken(admin, problems);
  checkAdminTokens(admin, problems);
  const adminTls = isPlainObject(admin) && !problems.under('admin.tls') ? readAdminTls(admin['tls'], baseDir, problems) : undefined;
  checkCluster(written['cluster'], view['cluster'], problems);
  checkShaping(view, appFacts(apps), problems);
  if (!top || problems.count > 0) throw new ConfigError(problems.lines);

  const bind = unbracket(top.bind);
  return {
    apps: top.apps.map((app, i) => toAppConfig(app, apps[i]!, bind)),
    health: {
      interval: parseDuration(top.health.interval),
      timeout: parseDuration(top.health.timeout),
      unhealthyAfter: top.health.unhealthyAfter,
      healthyAfter: top.health.healthyAfter,
    },
    admin: toAdmin(top.admin, adminTls),
    log: { level: logLevel(top.log.level) ?? 'info' },
    drainTimeout: parseDuration(top.drainTimeout),
    dataPlane: top.dataPlane,
    watch: top.watch,
    observe: { latency: top.observe.latency, foo: top.observe.foo },
    ...toLimits(top.limits),
    ...toCluster(top.cluster),
    ...toTracing(top.tracing),
    ...toShaping(top),
    ...stateDirEntry(stateDirOf(top.stateDir, env, baseDir)),
  };
}

const stateDirEntry = (stateDir: StateDir | undefined): { stateDir?: StateDir } => (stateDir ? { stateDir } : {});

/**
 * The short forms, as the long ones: `"admin": false` / `null` / `"off"` turn the admin server
 * off, `"admin": "host:port"` is short for {listen}, `"admin": true` is the default;
 * `"cluster": null` or `false` is running alone, as with no `cluster` at all. Reserved keys go.
 */
function shorthands(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...input };
  for (const key of RESERVED_KEYS) delete out[key];
  if (Object.hasOwn(out, 'admin')) {
    const admin = out['admin'];
    if (admin === false || admin === null || typeof admin === 'string') out['admin'] = { listen: admin === false ? null : admin };
    if (admin === true) delete out['admin'];
  }
  if (out['cluster'] === null || out['cluster'] === false) delete out['cluster'];
  return out;
}

/** Every top-level default, as a config with nothing but one app would have them. */
let defaults: Record<string, unknown> | undefined;

/** `input` written over the defaults, object by object (a value of the wrong type stays as written). */
function overDefaults(input: unknown): unknown {
  if (!defaults) {
    const { apps: _one, ...rest } = TOP.parse({ apps: [{ name: 'a', ports: [0], targets: ['h:1'] }] });
    defaults = rest;
  }
  return merge(defaults, input);
}

function merge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = merge(base[key], value);
  return out;
}
