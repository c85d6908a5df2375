/**
 * THE config schema: the top level here, one app in schema-app.ts, tiers and customers in
 * schema-shaping.ts, built from kit.ts on zod with the checks of checks.ts. Everything else is
 * derived from it: the validation with every problem at its key path (validate.ts), the defaults,
 * the env overrides, and the JSON Schema of `shaper-proxy schema` (json-schema.ts).
 */
import type * as Zod from 'zod';
import {
  adminListen,
  adminToken,
  appList,
  isAdminOff,
  bindAddress,
  bool,
  countRate,
  customerList,
  duration,
  durationBetween,
  dirPath,
  filePath,
  fraction,
  httpUrl,
  instanceId,
  intBetween,
  keyPrefix,
  logLevelValue,
  oneOf,
  period,
  ratio,
  redisUrl,
  serviceName,
  tierMap,
  tierName,
  tierRef,
  timeZone,
} from './checks.js';
import { either, group, leaf, list, nameMap, nullable, optional, problemOf, required, section, withDefault } from './kit.js';
import { ADMIN_TLS, ADMIN_TOKENS } from './schema-admin.js';
import { APP } from './schema-app.js';
import { CUSTOMER, level, TIER } from './schema-shaping.js';
import { show } from './problems.js';
import { parseHostPort } from './units.js';
import { DATA_PLANES } from './types.js';
import { z } from './zod.js';

export { APP, TARGET } from './schema-app.js';
export { CUSTOMER, TIER } from './schema-shaping.js';
// Where the rest of the code has always found it.
export { RESERVED_NAMES } from './checks.js';

/**
 * Top-level keys reserved for features that are on their way. They are accepted and ignored
 * so configs written for the next version still load; when a feature lands, its key moves
 * into TOP (as `cluster` did).
 */
export const RESERVED_KEYS: readonly string[] = [];

/** `"admin": false`, `null` or `"off"` (no admin API), `"host:port"` (short for {"listen": ...}), `true` (the default). */
const adminShorthand = leaf<string | boolean | null>((v) => {
  if (typeof v === 'string') {
    if (!isAdminOff(v)) parseHostPort(v, true);
  }  else if (typeof v !== 'boolean' && v !== null) {
    throw new Error(`must be an object like {"listen": "127.0.0.1:9900", "token": null}, a "host:port", or false for no admin API (got ${show(v)})`);
  }
}, { anyOf: [{ type: 'boolean' }, { type: 'null' }, { type: 'string' }] });

/** `"cluster": null` or `false`: running alone, as with no `cluster` at all. */
const clusterOff = leaf<false | null>((v) => {
  if (v !== false && v !== null) throw new Error(`must be an object like {"redis": "redis://127.0.0.1:6379"}, or null to run alone (got ${show(v)})`);
}, { enum: [false, null] });

export const TOP = group({
  $schema: optional(z.string(), 'The JSON Schema of this file, for editors (`shaper-proxy schema` prints it); ignored by the proxy.'),
  apps: required(list(APP, appList), 'The apps: each listens on its ports and forwards to its targets.'),
  bind: withDefault(bindAddress, '0.0.0.0', { doc: 'Address app ports bind to unless an app sets its own.', env: 'SHAPER_BIND' }),
  health: section(
    group({
      interval: withDefault(duration(true), '2s', { doc: 'Time between health checks of a target.' }),
      timeout: withDefault(duration(true), '1s', { doc: 'A health check connect slower than this fails.' }),
      unhealthyAfter: withDefault(intBetween(1), 2, { doc: 'Failed checks in a row before a target is taken out.' }),
      healthyAfter: withDefault(intBetween(1), 1, { doc: 'Passed checks in a row before a target is put back.' }),
    }),
    'Health checks of the targets (a TCP connect).',
  ),
  admin: section(
    either(
      group({
        listen: nullable(adminListen, {
          doc: 'host:port of the admin API; null or "off" for none.',
          value: '127.0.0.1:9900',
          env: 'SHAPER_ADMIN_LISTEN',
        }),
        token: nullable(adminToken, {
          doc: 'Bearer token the admin API requires on every request (role "admin"); a token (or tokens) is required when admin.listen is not a loopback address.',
          env: 'SHAPER_ADMIN_TOKEN',
        }),
        tokens: nullable(ADMIN_TOKENS, { doc: 'More bearer tokens, each with a role: [{"token": "...", "role": "read" | "operate" | "admin"}].' }),
        tls: nullable(ADMIN_TLS, { doc: 'Serve the admin API over HTTPS: {"cert": FILE, "key": FILE}; null: plain HTTP.' }),
      }),
      adminShorthand,
    ),
    'The admin API (HTTP): false or "off" for none, "host:port" for {"listen": "host:port"}.',
  ),
  log: section(
    group({
      level: withDefault(logLevelValue, 'info', { doc: 'Log level: a name, or 0-7 as in seed 000 (0 debug ... 7 silent).', env: 'SHAPER_LOG_LEVEL' }),
    }),
    'Logging.',
  ),
  observe: section(
    group({
      latency: withDefault(bool, true, { doc: 'Record per-connection latency histograms (connect, ttfb, duration, shaper wait).' }),
      foo: withDefault(bool, true, { doc: 'Analyse apps with protocol "foo" (counters, rates, request latency).' }),
    }),
    'What is measured per connection.',
  ),
  limits: section(
    group({
      perSource: section(
        group({
          maxConnections: nullable(intBetween(1), { doc: 'Concurrent connections per source address; null: no limit.' }),
          acceptRate: nullable(countRate, { doc: 'New connections accepted per source address, e.g. "50/s"; null: no limit.' }),
        }),
        'Limits per source address.',
      ),
      maxConnections: nullable(intBetween(1), { doc: 'Concurrent connections through the whole proxy; null: no limit.' }),
    }),
    'Abuse limits, checked when a connection is accepted.',
  ),
  cluster: section(
    either(
      group({
        redis: nullable(redisUrl, { doc: 'Redis URL of the fleet; null: this instance runs alone (no Redis at all).', env: 'SHAPER_CLUSTER_REDIS' }),
        instance: nullable(instanceId, { doc: "This instance's id in the fleet; null: hostname-pid.", env: 'SHAPER_CLUSTER_INSTANCE' }),
        fallbackShare: nullable(fraction, {
          doc: 'While Redis is unreachable, the fraction of each fleet-wide cap this instance uses; null: its last known share.',
        }),
        rebalanceInterval: withDefault(durationBetween(20, 5000), '200ms', { doc: 'How often demand is exchanged and shares recomputed.' }),
        memberTimeout: withDefault(durationBetween(100, 60000), '1s', {
          doc: 'An instance with no heartbeat for this long is out of the fleet (its demand and connections no longer count).',
        }),
        redisTimeout: withDefault(durationBetween(10, 10000), '500ms', { doc: 'A Redis command slower than this counts as Redis being unreachable.' }),
        prefix: withDefault(keyPrefix, 'shaper:', { doc: 'Prefix of every Redis key and channel of the fleet (several fleets can share one Redis).' }),
      }),
      clusterOff,
    ),
    'Fleet mode: several instances share customer, tier and global caps through Redis; null or left out: this instance runs alone.',
  ),
  drainTimeout: withDefault(duration(false), '10s', { doc: 'On shutdown, how long open connections may finish before they are closed.', env: 'SHAPER_DRAIN_TIMEOUT' }),
  dataPlane: withDefault(oneOf(DATA_PLANES), 'auto', {
    doc: 'What moves the bytes of plain TCP connections: "auto" (the native splice relay where a connection is eligible and the addon is built, else JavaScript), "native" (the same, but the proxy refuses to start without the addon), "js" (always JavaScript).',
    env: 'SHAPER_DATA_PLANE',
  }),
  watch: withDefault(bool, true, { doc: 'Reload when the config file or a TLS file it names changes on disk; false: only on SIGHUP, `shaper-proxy ctl reload` or POST /reload.' }),
  tiers: nullable(nameMap(tierName, TIER, tierMap), { doc: 'Service tiers by name: their rates per connection, per customer and in total.' }),
  global: section(level('all traffic through the proxy'), 'Caps of all traffic through the proxy.'),
  customers: nullable(z.array(CUSTOMER, { error: (issue) => (issue.code === 'invalid_type' ? problemOf(customerList, issue.input) : undefined) }), {
    doc: 'Customers: who a connection belongs to (by source, app and port) and their tier.',
  }),
  defaultTier: nullable(tierRef(false), { doc: 'Tier of connections no customer matches (each source address its own customer); null: unshaped.' }),
  stateDir: nullable(dirPath, {
    doc: "Directory of the state and counters files; relative to the config file. null: systemd's $STATE_DIRECTORY, else $XDG_STATE_HOME/shaper-proxy (~/.local/state/shaper-proxy).",
    env: 'SHAPER_STATE_DIR',
  }),
  stateFile: nullable(filePath, { doc: 'Where runtime changes (admin API) are kept, in place of the state directory; relative to the config file.' }),
  accounting: nullable(
    group({
      period: withDefault(period, 'month', { doc: 'The accounting period: "month", "day", "hour" (calendar, in the time zone) or a duration counted from the Unix epoch.' }),
      timezone: withDefault(timeZone, 'UTC', { doc: 'IANA time zone calendar periods and schedule windows align in.' }),
      log: nullable(filePath, { doc: 'Usage log: one JSON line per customer and closed period; default beside the state file (x.state.json -> x.usage.log).' }),
    }),
    { doc: 'Usage accounting per customer (bytes each way per period), which quotas need; null: none.' },
  ),
  tracing: nullable(
    group({
      otlp: required(httpUrl('where spans are POSTed as OTLP/HTTP JSON', 'http://127.0.0.1:4318/v1/traces'), 'OTLP/HTTP endpoint of the trace collector; a URL without a path gets /v1/traces.'),
      sample: withDefault(ratio, 0.1, { doc: 'Fraction of connections traced, decided once per connection when it is accepted (0.1: one in ten).' }),
      flush: withDefault(durationBetween(1, 60000), '5s', { doc: 'Longest time a finished span waits before it is sent (spans go in batches).' }),
      service: withDefault(serviceName, 'shaper-proxy', { doc: 'service.name of the spans.' }),
    }),
    { doc: 'OpenTelemetry tracing of connections (OTLP over HTTP): one span per traced connection with its identify, dial attempts and shaping wait; null: off (nothing loaded).' },
  ),
});

export type Top = Zod.output<typeof TOP>;
export type App = Zod.output<typeof APP>;
export type Tier = Zod.output<typeof TIER>;
export type Customer = Zod.output<typeof CUSTOMER>;
