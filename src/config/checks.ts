/**
 * The leaves of the config schema: each value check with the words a user sees when it fails
 * (what is wrong, and an example of what is right) and the JSON Schema fragment of what it takes.
 * The fragment may be looser than the check (a rate's pattern cannot say "more than 0"), never
 * stricter: test/config/json-schema.test.ts holds every config the loader takes against it.
 */
import { isIP } from 'node:net';
import { parseCidr } from '../net/cidr.js';
import { subjectPatternProblem } from '../net/subject.js';
import { sniPatternProblem } from '../net/server-name.js';
import { LOG_LEVEL_HELP, LOG_LEVELS, logLevel } from '../log.js';
import { isTimeZone } from './calendar.js';
import { type Check, either, leaf, list } from './kit.js';
import { CLOCK_PATTERN, parseClock, parseDays, parsePeriod } from './schedule.js';
import { show } from './problems.js';
import {
  COUNT_RATE_PATTERN,
  DURATION_PATTERN,
  HOST_PORT_PATTERN,
  parseCountRate,
  parseDuration,
  parseHostPort,
  parseRate,
  parseSize,
  RATE_PATTERN,
  SIZE_PATTERN,
} from './units.js';

function fail(message: string): never {
  throw new Error(message);
}

// ---- names ---------------------------------------------------------------------------------

const NAME = /^[A-Za-z0-9._-]+$/;
export const TIER_NAME = NAME;
export const CUSTOMER_ID = /^[A-Za-z0-9._:@-]+$/;
/** Names that would collide with Object.prototype when used as record keys. */
export const RESERVED_NAMES: readonly string[] = ['__proto__', 'constructor', 'prototype'];
const HOSTNAME = /^[A-Za-z0-9._-]+$/;
const INSTANCE_ID = /^[A-Za-z0-9._:@-]{1,64}$/;

export const appName = leaf<string>((v) => {
  if (v === null || v === undefined || v === '') fail('required, a non-empty name like "web"');
  if (typeof v !== 'string' || !NAME.test(v)) fail(`${show(v)} is not a valid name (use letters, digits, ".", "_" and "-", e.g. "web")`);
}, { type: 'string', pattern: NAME.source });

export function tierNameProblem(name: string): string | undefined {
  if (name === '' || !NAME.test(name)) return `${show(name)} is not a valid tier name (use letters, digits, ".", "_" and "-", e.g. "gold")`;
  if (RESERVED_NAMES.includes(name)) return `${show(name)} cannot be used as a tier name`;
  return undefined;
}

export const tierName = leaf<string>((v) => {
  const problem = tierNameProblem(String(v));
  if (problem !== undefined) fail(problem);
}, { type: 'string', pattern: NAME.source });

/** A reference to a tier; that it exists is checked by the loader once all tiers are read. */
export const tierRef = (isRequired: boolean) =>
  leaf<string>((v) => {
    if (v === null || v === undefined) return isRequired ? fail('required, the name of one of the tiers, e.g. "gold"') : undefined;
    if (typeof v !== 'string' || tierNameProblem(v) !== undefined) fail(`${show(v)} is not a tier name (use e.g. "gold")`);
  }, { type: 'string', pattern: NAME.source });

export const customerId = leaf<string>((v) => {
  if (v === null || v === undefined || v === '') fail('required, a non-empty id like "acme"');
  if (typeof v !== 'string' || !CUSTOMER_ID.test(v) || RESERVED_NAMES.includes(v)) {
    fail(`${show(v)} is not a valid customer id (use letters, digits, ".", "_", ":", "@" and "-", e.g. "acme")`);
  }
}, { type: 'string', pattern: CUSTOMER_ID.source });

export const instanceId = leaf<string>((v) => {
  if (typeof v !== 'string' || !INSTANCE_ID.test(v)) {
    fail(`${show(v)} is not an instance id (1 to 64 letters, digits, ".", "_", ":", "@" and "-"; leave it out for hostname-pid)`);
  }
}, { type: 'string', pattern: INSTANCE_ID.source });

// ---- plain values ------------------------------------------------------------------------------

export const oneOf = <T extends string>(allowed: readonly T[]) =>
  leaf<T>((v) => {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) fail(`${show(v)} is not one of ${allowed.join(', ')}`);
  }, { type: 'string', enum: allowed });

export const bool = leaf<boolean>((v) => {
  if (typeof v !== 'boolean') fail(`must be true or false (got ${show(v)})`);
}, { type: 'boolean' });

export const intBetween = (min: number, max = Infinity) =>
  leaf<number>((v) => {
    if (Number.isInteger(v) && (v as number) >= min && (v as number) <= max) return;
    fail(`must be an integer ${max === Infinity ? `>= ${min}` : `from ${min} to ${max}`} (got ${show(v)})`);
  }, { type: 'integer', minimum: min, ...(max === Infinity ? {} : { maximum: max }) });

export const positiveNumber = leaf<number>((v) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`must be a number more than 0 (got ${show(v)})`);
}, { type: 'number', exclusiveMinimum: 0 });

export const fraction = leaf<number>((v) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1) fail(`must be a number more than 0 and at most 1, a fraction of each cap (got ${show(v)})`);
}, { type: 'number', exclusiveMinimum: 0, maximum: 1 });

export const logLevelValue = leaf<string | number>((v) => {
  if (logLevel(v) === undefined) fail(`${show(v)} is not a log level (use ${LOG_LEVEL_HELP})`);
}, { anyOf: [{ type: 'string', enum: LOG_LEVELS }, { type: 'integer', minimum: 0, maximum: 7 }, { type: 'string', pattern: '^[0-7]$' }] });

export const keyPrefix = leaf<string>((v) => {
  if (typeof v !== 'string' || v.length > 64 || /\s/.test(v)) fail(`${show(v)} is not a key prefix (up to 64 characters, no spaces, e.g. "shaper:")`);
}, { type: 'string', maxLength: 64, pattern: '^\\S*$' });

/** A value JSON Schema can only call a string (the check knows the rest). */
const text = { type: 'string', minLength: 1 };

export const filePath = leaf<string>((v) => {
  if (typeof v !== 'string' || v.trim() === '' || v.includes('\0')) fail(`${show(v)} is not a file path (use e.g. "/var/lib/shaper-proxy/state.json", or null)`);
}, text);

export const dirPath = leaf<string>((v) => {
  if (typeof v !== 'string' || v.trim() === '' || v.includes('\0')) fail(`${show(v)} is not a directory path (use e.g. "/var/lib/shaper-proxy", or null)`);
}, text);

/** A PEM file named in `tls` or `targetTls`; `ifMissing` words its absence where it is required. */
export const pemPath = (what: string, ifMissing?: string) =>
  leaf<string>((v) => {
    if ((v === undefined || v === null) && ifMissing !== undefined) fail(`required, ${ifMissing}`);
    if (typeof v !== 'string' || v.trim() === '' || v.includes('\0')) fail(`${show(v)} is not a file path (the ${what}, PEM; relative to the config file)`);
  }, text);

// ---- units ---------------------------------------------------------------------------------

const MAX_TIMER_MS = 2 ** 31 - 1; // longer setTimeout delays fire at once
const unit = (pattern: string, number: Record<string, unknown>) => ({ anyOf: [{ type: 'number', ...number }, { type: 'string', pattern }] });

export const duration = (mustBePositive: boolean) =>
  leaf<string | number>((v) => {
    const ms = parseDuration(v);
    if (mustBePositive && ms <= 0) fail(`must be more than 0 (got ${show(v)})`);
    if (ms > MAX_TIMER_MS) fail(`${show(v)} is too long (at most "24d")`);
  }, unit(DURATION_PATTERN, { minimum: 0 }));

export const durationBetween = (minMs: number, maxMs: number) =>
  leaf<string | number>((v) => {
    const ms = parseDuration(v);
    if (ms < minMs || ms > maxMs) fail(`must be from ${minMs}ms to ${maxMs}ms (got ${show(v)})`);
  }, unit(DURATION_PATTERN, { minimum: minMs, maximum: maxMs }));

export const rate = leaf<string | number>((v) => void parseRate(v), unit(RATE_PATTERN, { exclusiveMinimum: 0 }));
export const size = leaf<string | number>((v) => void parseSize(v), unit(SIZE_PATTERN, { minimum: 1 }));
export const countRate = leaf<string | number>((v) => void parseCountRate(v), unit(COUNT_RATE_PATTERN, { exclusiveMinimum: 0 }));

// ---- plans: accounting periods, time zones, schedule windows --------------------------------

export const timeZone = leaf<string>((v) => {
  if (typeof v !== 'string' || v === '' || !isTimeZone(v)) fail(`${show(v)} is not a time zone (use an IANA name, e.g. "UTC", "Europe/Berlin", "America/New_York")`);
}, text);

export const period = leaf<string | number>((v) => void parsePeriod(v), { anyOf: [{ type: 'string', enum: ['month', 'day', 'hour'] }, unit(DURATION_PATTERN, { minimum: 1000 })] });

export const days = leaf<string>((v) => void parseDays(v), text);

/** A time of day; `to` may be "24:00", `from` may not. */
export const clock = (isEnd: boolean) =>
  leaf<string>((v) => {
    if (parseClock(v) === 24 * 60 && !isEnd) fail(`${show(v)} is the end of the day; a window starts at "00:00" to "23:59"`);
  }, { type: 'string', pattern: CLOCK_PATTERN });

export const scheduleList: Check = (v) =>
  fail(`must be a list of windows like [{"days": "mon-fri", "from": "18:00", "to": "23:00", "customer": {"down": "50mbit"}}] (got ${show(v)})`);

// ---- addresses -----------------------------------------------------------------------------

export const port = leaf<number>((v) => {
  if (!isPort(v)) fail(`${show(v)} is not a port (use an integer from 0 to 65535; 0 picks a free port)`);
}, { type: 'integer', minimum: 0, maximum: 65535 });

export const matchPort = leaf<number>((v) => {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) fail(`${show(v)} is not a port (use an integer from 1 to 65535)`);
}, { type: 'integer', minimum: 1, maximum: 65535 });

export const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535;

/** Brackets are allowed around IPv6 ("[::]") and removed by `unbracket`. */
export const unbracket = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

export const bindAddress = leaf<string>((v) => {
  const host = typeof v === 'string' ? unbracket(v) : '';
  if (host === '' || !(isIP(host) !== 0 || HOSTNAME.test(host))) fail(`${show(v)} is not an address to bind (use e.g. "0.0.0.0", "127.0.0.1" or "::")`);
}, text);

/** A target as "host:port" (the object form is TARGET in schema-app.ts). */
export const targetString = leaf<string>((v) => {
  if (typeof v !== 'string') fail(`must be "host:port" or {"address": "host:port", "weight": 2} (got ${show(v)})`);
  parseHostPort(v);
}, { type: 'string', pattern: HOST_PORT_PATTERN });

export const targetAddress = leaf<string>((v) => {
  if (v === null || v === undefined) fail('required, the "host:port" of the backend');
  parseHostPort(v);
}, { type: 'string', pattern: HOST_PORT_PATTERN });

/** admin.listen: "host:port" (port 0 allowed), or "off" / "" / null for no admin server. */
export const isAdminOff = (v: unknown): boolean => v === null || (typeof v === 'string' && (v === '' || v.toLowerCase() === 'off'));
export const adminListen = leaf<string>((v) => {
  if (!isAdminOff(v)) parseHostPort(v, true);
}, { type: 'string' });

/** admin.token: the bearer token every admin request must carry; null or "" for none (loopback only). */
export const ADMIN_TOKEN_MIN = 16;
export const adminToken = leaf<string>((v) => {
  if (v === '') return;
  if (typeof v !== 'string' || v.length < ADMIN_TOKEN_MIN) {
    fail(`must be a string of at least ${ADMIN_TOKEN_MIN} characters, or null for none (got ${typeof v === 'string' ? `${v.length} characters` : show(v)})`);
  }
}, { type: 'string', anyOf: [{ maxLength: 0 }, { minLength: ADMIN_TOKEN_MIN }] });

export const cidr = leaf<string>((v) => void parseCidr(v as string), text);

/** An app name in a match; that it names an app is checked by the loader. */
export const appRef = leaf<string>((v) => {
  if (typeof v !== 'string' || v === '') fail(`${show(v)} is not an app name (use e.g. "web")`);
}, text);

/** A pattern `problem` checks: a server name of `match.sni` or `serverNames`, a subject of `match.clientCert`. */
export const pattern = (problem: (value: unknown) => string | undefined) =>
  leaf<string>((v) => {
    const p = problem(v);
    if (p !== undefined) fail(p);
  }, text);
export const sniPattern = pattern(sniPatternProblem);

/** A criterion of patterns (`match.sni`, `match.clientCert`): one pattern, or a list of them. */
export function patterns(criterion: 'sni' | 'clientCert', what: string, example: string) {
  const problem = criterion === 'sni' ? sniPatternProblem : subjectPatternProblem;
  const listCheck = matchListOf(what, example, criterion);
  const one = leaf<string>((v) => {
    if (typeof v !== 'string') listCheck(v);
    const p = problem(v);
    if (p !== undefined) fail(p);
  }, { type: 'string' });
  return either(list(pattern(problem), listCheck), one);
}

/** cluster.redis: a redis:// or rediss:// URL (user, password and database number allowed). */
export const redisUrl = leaf<string>((v) => {
  let url: URL | undefined;
  try {
    url = typeof v === 'string' ? new URL(v) : undefined;
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    fail(`${show(v)} is not a Redis URL (use e.g. "redis://127.0.0.1:6379", "rediss://:password@redis.internal:6380/2")`);
  }
}, { type: 'string', pattern: '^rediss?://' });

/** An http:// or https:// URL. */
export const httpUrl = (what: string, example: string) =>
  leaf<string>((v) => {
    let url: URL | undefined;
    try {
      url = typeof v === 'string' ? new URL(v) : undefined;
    } catch {
      // reported below
    }
    if (v === undefined) fail(`required, an http(s) URL (${what}, e.g. "${example}")`);
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') fail(`${show(v)} is not an http(s) URL (${what}, e.g. "${example}")`);
  }, { type: 'string', pattern: '^https?://' });

/** A name other systems show (a trace's service.name). */
export const serviceName = leaf<string>((v) => {
  if (typeof v !== 'string' || v.trim() === '' || v.length > 255) fail(`must be a name of 1 to 255 characters, e.g. "shaper-proxy" (got ${show(v)})`);
}, { type: 'string', minLength: 1, maxLength: 255 });

/** A fraction from 0 (none) to 1 (all). */
export const ratio = leaf<number>((v) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) fail(`must be a number from 0 to 1, e.g. 0.1 for one in ten (got ${show(v)})`);
}, { type: 'number', minimum: 0, maximum: 1 });

// ---- lists and maps (how kit.list / kit.nameMap word a value of the wrong shape) ------------------

/** A required list: absent, not a list or empty. */
export const listOf =
  (what: string, example: string): Check =>
  (v) => {
    if (v === null || v === undefined) fail(`required, a list of ${what} like ${example}`);
    if (!Array.isArray(v)) fail(`must be a list of ${what} like ${example} (got ${show(v)})`);
    if (v.length === 0) fail(`must list at least one of the ${what}, e.g. ${example}`);
  };

/** A match criterion: a non-empty list, or left out (which matches any). */
export const matchListOf =
  (what: string, example: string, key: string): Check =>
  (v) => {
    if (!Array.isArray(v)) fail(`must be a list of ${what} like ${example} (got ${show(v)})`);
    if (v.length === 0) fail(`must list at least one of the ${what}, e.g. ${example} (leave "${key}" out to match any)`);
  };

export const APPS_REQUIRED = 'required, a list of apps (each with name, ports, targets)';
export const appList: Check = (v) => {
  if (v === null || v === undefined) fail(APPS_REQUIRED);
  if (!Array.isArray(v)) fail(`must be a list of apps (each with name, ports, targets), got ${show(v)}`);
  if (v.length === 0) fail('must list at least one app (each with name, ports, targets)');
};

export const tierMap: Check = (v) =>
  fail(`must be an object of tiers by name, like {"gold": {"connection": {"down": "100mbit"}}} (got ${show(v)})`);

export const customerList: Check = (v) =>
  fail(`must be a list of customers like [{"id": "acme", "tier": "gold", "match": {"sources": ["10.1.0.0/16"]}}] (got ${show(v)})`);
