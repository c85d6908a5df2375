/**
 * The shaping part of a config: tiers, customers, `global` and `defaultTier`. The references
 * between them are checked here, after the schema: a customer's tier and apps must exist (a tier
 * with problems of its own still counts, so one mistake is not reported again at every reference),
 * and a customer matching by SNI or client certificate must be able to see one. Also the admin
 * API's bodies: one tier, one customer, validated by the same code as the config.
 */
import { ConfigError } from '../errors.js';
import { isPlainObject } from './fly.js';
import { tierNameProblem } from './checks.js';
import { checkMinimums, peakAndMin } from './levels.js';
import { keyPath, Problems, show } from './problems.js';
import { CUSTOMER, TIER, type Customer, type Tier, type Top } from './schema.js';
import type { AccountingConfig, CustomerConfig, CustomerMatch, LevelLimits, LevelOverride, ScheduleWindow, ShapingConfig, TierConfig } from './types.js';
import { parseCountRate, parseDuration, parseRate, parseSize } from './units.js';
import { parseClock, parseDays, parsePeriod } from './schedule.js';
import { validate } from './validate.js';

type Raw = Record<string, unknown>;
type RefCheck = (path: string, name: string) => void;

/** How an app shows in the reference checks: its name, and what its connections can carry. */
export interface AppFacts {
  name: unknown;
  /** The app terminates TLS or prereads the ClientHello: its connections carry a server name. */
  sni: boolean;
  /** The app asks for client certificates. */
  clientCert: boolean;
}

/** The names of the tiers written with a good name (whatever else is wrong with them). */
export function tierNames(tiers: unknown): string[] {
  return isPlainObject(tiers) ? Object.keys(tiers).filter((name) => tierNameProblem(name) === undefined) : [];
}

/** "(tiers: free, gold)": what a reference to a missing tier could have named. */
function knownTiers(names: readonly string[]): string {
  return `(${names.length > 0 ? `tiers: ${names.join(', ')}` : 'no tiers are defined; add them under "tiers"'})`;
}

const tierCheck =
  (problems: Problems, names: readonly string[]): RefCheck =>
  (path, name) => {
    if (!problems.has(path) && !names.includes(name)) problems.add(path, `${show(name)} is not a tier ${knownTiers(names)}`);
  };

const appCheck =
  (problems: Problems, appNames: readonly string[]): RefCheck =>
  (path, name) => {
    if (!appNames.includes(name)) problems.add(path, `no app named ${show(name)} (apps: ${appNames.join(', ')})`);
  };

/** The references of the shaping part of `top` (validated, or as written over the defaults). */
export function checkShaping(top: Raw, apps: readonly AppFacts[], problems: Problems): void {
  const names = tierNames(top['tiers']);
  const checkTier = tierCheck(problems, names);
  const appNames = apps.map((a) => a.name).filter((n): n is string => typeof n === 'string' && n !== '');
  const checkApp = appCheck(problems, appNames);
  const byId = new Map<string, string[]>();
  const customers = Array.isArray(top['customers']) ? (top['customers'] as unknown[]) : [];
  customers.forEach((item, i) => {
    if (!isPlainObject(item)) return; // reported by the schema
    const at = keyPath(['customers', i]);
    const id = item['id'];
    if (typeof id === 'string' && !problems.has(`${at}.id`)) byId.set(id, [...(byId.get(id) ?? []), at]);
    checkCustomerRefs(item, at, problems, checkTier, checkApp);
    if (problems.under(at)) return;
    // A criterion no connection of its apps can meet.
    const match = isPlainObject(item['match']) ? item['match'] : {};
    const matchApps = Array.isArray(match['apps']) ? (match['apps'] as string[]) : undefined;
    for (const criterion of ['sni', 'clientCert'] as const) {
      if (match[criterion] === undefined || match[criterion] === null) continue;
      if ((matchApps ?? appNames).some((a) => apps.some((app) => app.name === a && app[criterion]))) continue;
      const which = matchApps ? `none of its apps (${matchApps.join(', ')})` : 'no app';
      const what = criterion === 'sni'
        ? '"tls" or "sniPreread", so no connection carries a server name'
        : '"tls.clientAuth" ("require" or "optional"), so no connection carries a client certificate';
      problems.add(`${at}.match.${criterion}`, `can never match: ${which} has ${what}`);
    }
  });
  for (const [id, where] of byId) {
    if (where.length < 2) continue;
    const listed = `${where.slice(0, -1).join(', ')} and ${where.at(-1)}`;
    problems.add(`${where[0]}.id`, `${show(id)} is used by ${listed} (customer ids must be unique)`);
  }
  const defaultTier = top['defaultTier'];
  if (typeof defaultTier === 'string') checkTier('defaultTier', defaultTier);
  checkQuotas(top, names, problems);
  checkMinimums(top, problems);
}

/**
 * A schedule window sets some caps. A quota's `then` names another tier of the config, one with no quota of its own: a customer
 * over its quota sits in `then` until the period ends, so one step is all there is (no chains,
 * no loops). A quota needs `accounting` (its period).
 */
function checkQuotas(top: Raw, names: readonly string[], problems: Problems): void {
  const tiers = isPlainObject(top['tiers']) ? top['tiers'] : {};
  const checkTier = tierCheck(problems, names);
  for (const name of names) {
    const tier = tiers[name];
    const schedule = isPlainObject(tier) ? tier['schedule'] : undefined;
    if (Array.isArray(schedule)) {
      schedule.forEach((w: unknown, i) => {
        if (isPlainObject(w) && !problems.under(`tiers.${name}.schedule[${i}]`) && !['connection', 'customer', 'total'].some((k) => isPlainObject(w[k]))) {
          problems.add(`tiers.${name}.schedule[${i}]`, 'sets no caps: give "connection", "customer" or "total" (the caps inside the window)');
        }
      });
    }
    const quota = isPlainObject(tier) ? tier['quota'] : undefined;
    if (!isPlainObject(quota)) continue;
    const at = `tiers.${name}.quota`;
    if (!isPlainObject(top['accounting']) && !problems.has('accounting')) {
      problems.add(at, 'needs "accounting" (its period and time zone), e.g. "accounting": {"period": "month", "timezone": "UTC"}');
    }
    const then = quota['then'];
    if (typeof then !== 'string' || problems.has(`${at}.then`)) continue;
    if (then === name) {
      problems.add(`${at}.then`, `names its own tier; name a slower tier, or leave "then" out to refuse the customer's connections past the quota`);
      continue;
    }
    checkTier(`${at}.then`, then);
    const target = tiers[then];
    if (isPlainObject(target) && isPlainObject(target['quota'])) {
      problems.add(`${at}.then`, `tier ${show(then)} has a quota of its own; a customer over its quota stays in "then" until the period ends, so "then" must be a tier without a quota`);
    }
  }
}

/** A customer's tier and `match.apps` name a tier and apps of the config. */
function checkCustomerRefs(item: Raw, at: string, problems: Problems, checkTier: RefCheck, checkApp: RefCheck): void {
  if (typeof item['tier'] === 'string') checkTier(`${at}.tier`, item['tier']);
  const match = item['match'];
  if (!isPlainObject(match) || !Array.isArray(match['apps']) || problems.has(`${at}.match.apps`)) return;
  match['apps'].forEach((app: unknown, j) => {
    const path = `${at}.match.apps[${j}]`;
    if (typeof app === 'string' && !problems.has(path)) checkApp(path, app);
  });
}

/** The shaping part of a validated config. */
export function toShaping(top: Top): ShapingConfig {
  return {
    tiers: Object.fromEntries(Object.entries(top.tiers ?? {}).map(([name, tier]) => [name, toTier(name, tier)])),
    global: toLevel(top.global),
    customers: (top.customers ?? []).map(toCustomer),
    defaultTier: top.defaultTier,
    stateFile: top.stateFile,
    ...(top.accounting ? { accounting: toAccounting(top.accounting) } : {}),
  };
}

function toAccounting(a: NonNullable<Top['accounting']>): AccountingConfig {
  return { period: parsePeriod(a.period), timezone: a.timezone, log: a.log };
}

function toTier(name: string, tier: Tier): TierConfig {
  const config: TierConfig = {
    name,
    rtt: parseDuration(tier.rtt),
    weight: tier.weight,
    connection: toLevel(tier.connection),
    customer: toLevel(tier.customer),
    total: toLevel(tier.total),
  };
  if (tier.maxConnections !== null) config.maxConnections = tier.maxConnections;
  if (tier.connectionRate !== null) config.connectionRate = parseCountRate(tier.connectionRate);
  if (tier.quota !== null) config.quota = { bytes: parseSize(tier.quota.bytes), direction: tier.quota.direction, then: tier.quota.then };
  if (tier.schedule !== null) config.schedule = tier.schedule.map(toWindow);
  return config;
}

function toWindow(w: NonNullable<Tier['schedule']>[number]): ScheduleWindow {
  const window: ScheduleWindow = { days: parseDays(w.days), from: parseClock(w.from), to: parseClock(w.to) };
  for (const key of ['connection', 'customer', 'total'] as const) {
    const level = w[key];
    if (level) window[key] = toOverride(level);
  }
  return window;
}

/** The keys a window gives, as LevelLimits keys. */
function toOverride(level: NonNullable<NonNullable<Tier['schedule']>[number]['connection']>): LevelOverride {
  const out: LevelOverride = {};
  if (level.down !== undefined) out.down = parseRate(level.down);
  if (level.up !== undefined) out.up = parseRate(level.up);
  putBursts(level.burst, out);
  return out;
}

/** A validated level -> LevelLimits; bursts, peaks and minimums only where given. */
function toLevel(level: Tier['connection'] | Tier['total']): LevelLimits {
  const limits: LevelLimits = { down: parseRate(level.down), up: parseRate(level.up) };
  putBursts(level.burst, limits);
  return peakAndMin(level, limits);
}

/** A level's `burst` (a size for both directions, or {down, up}) as burstDown / burstUp of `out`; none when absent. */
function putBursts(burst: unknown, out: { burstDown?: number; burstUp?: number }): void {
  if (isPlainObject(burst)) {
    if (burst['down'] !== undefined) out.burstDown = parseSize(burst['down']);
    if (burst['up'] !== undefined) out.burstUp = parseSize(burst['up']);
  } else if (burst !== null && burst !== undefined) {
    out.burstDown = parseSize(burst);
    out.burstUp = out.burstDown;
  }
}

function toCustomer(customer: Customer): CustomerConfig {
  const m = customer.match;
  const match: CustomerMatch = {};
  if (m?.sources != null) match.sources = m.sources;
  if (m?.apps != null) match.apps = m.apps;
  if (m?.ports != null) match.ports = m.ports;
  if (m?.sni != null) match.sni = typeof m.sni === 'string' ? [m.sni] : m.sni;
  if (m?.clientCert != null) match.clientCert = typeof m.clientCert === 'string' ? [m.clientCert] : m.clientCert;
  return { id: customer.id, tier: customer.tier, match };
}

// ---- one tier or customer at a time (admin API, runtime state) ----------------------------------

/**
 * One tier object, exactly as it is written under "tiers" in a config, validated by the same
 * code as the config; problems carry paths like `tiers.gold.connection.down`.
 */
export function parseTierBody(name: string, raw: unknown): TierConfig {
  const problems = new Problems();
  const nameProblem = tierNameProblem(name);
  if (nameProblem !== undefined) throw new ConfigError([`tiers[${show(name)}]: ${nameProblem}`]);
  const tier = validate(TIER, raw, ['tiers', name], problems);
  if (!tier) throw new ConfigError(problems.lines.length > 0 ? problems.lines : [`tiers.${name}: invalid`]);
  return toTier(name, tier);
}

/**
 * One customer's `{"tier": ..., "match": ...}` (its id comes from elsewhere, e.g. the URL),
 * validated like a customer in a config against the given tier and app names; problems carry
 * paths like `customers.acme.tier`.
 */
export function parseCustomerBody(id: string, raw: unknown, names: readonly string[], appNames: readonly string[]): CustomerConfig {
  const at = keyPath(['customers', id]);
  if (!isPlainObject(raw)) {
    throw new ConfigError([`${at}: must be an object with tier and match, like {"tier": "gold", "match": {"sources": ["10.1.0.0/16"]}} (got ${show(raw)})`]);
  }
  const problems = new Problems();
  if (Object.hasOwn(raw, 'id') && raw['id'] !== id) {
    problems.add(`${at}.id`, `${show(raw['id'])} differs from the customer id ${show(id)} it is given for (leave "id" out)`);
  }
  const item = { ...raw, id };
  const customer = validate(CUSTOMER, item, ['customers', id], problems);
  checkCustomerRefs(item, at, problems, tierCheck(problems, names), appCheck(problems, appNames));
  if (problems.count > 0 || !customer) throw new ConfigError(problems.lines.length > 0 ? problems.lines : [`${at}: invalid`]);
  return toCustomer(customer);
}
