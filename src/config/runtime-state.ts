/**
 * Runtime changes made through the admin API (or another instance of the fleet): tiers created or
 * replaced, customers created, replaced or deleted. They are kept as the raw JSON the API
 * received, overlaid on the config (so a config reload keeps them), re-validated every time they
 * are overlaid, and written to a state file (temp file + fsync + rename) so a restart re-applies
 * them. The ConfigStore (store.ts) holds them for the running proxy.
 */
import { readFile, rename } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { ConfigError, ProxyError } from '../errors.js';
import { parseCustomerBody, parseTierBody } from './load.js';
import { isPlainObject } from './fly.js';
import { RESERVED_NAMES } from './schema.js';
import type { CustomerConfig, ProxyConfig } from './types.js';

export interface RuntimeState {
  version: 1;
  /** Tier objects exactly as written under "tiers" in a config; null: a tier of the config that was deleted. */
  tiers: Record<string, unknown>;
  /** `{"tier": ..., "match": ...}` bodies; null: a customer of the config that was deleted. */
  customers: Record<string, Record<string, unknown> | null>;
  /**
   * The tier names of the config the state was last saved with: a restart with a config that
   * no longer has one of them prunes the state the way a reload would.
   */
  configTiers?: string[];
}

export function emptyRuntime(): RuntimeState {
  return { version: 1, tiers: {}, customers: {} };
}

export { legacyStateFileFor, stateFileFor } from './state-dir.js';

// ---- the overlay ---------------------------------------------------------------------------------

export interface Effective {
  /** The base config with the runtime tiers and customers applied. */
  config: ProxyConfig;
  /** Problem lines of runtime entries that could not be applied (and were left out). */
  dropped: string[];
  /** Tier names and customer ids whose runtime entry is in force. */
  runtimeTiers: Set<string>;
  runtimeCustomers: Set<string>;
}

/**
 * `base` with the runtime tiers added or replacing the config's, then the runtime customers
 * added, replacing or deleting the config's. Every runtime entry is validated again here (against
 * the effective tiers and the config's apps); one that no longer fits is left out and reported
 * in `dropped`.
 */
export function effectiveShaping(base: ProxyConfig, runtime: RuntimeState): Effective {
  const dropped: string[] = [];
  const runtimeTiers = new Set<string>();
  const runtimeCustomers = new Set<string>();
  const tiers = { ...base.tiers };
  const deleted: string[] = [];
  for (const [name, raw] of Object.entries(runtime.tiers)) {
    if (raw === null) {
      if (Object.hasOwn(tiers, name)) deleted.push(name);
      delete tiers[name];
      continue;
    }
    try {
      tiers[name] = parseTierBody(name, raw);
      runtimeTiers.add(name);
    } catch (err) {
      dropped.push(...problemLines(err));
    }
  }
  const tierNames = Object.keys(tiers);
  const appNames = base.apps.map((a) => a.name);
  const customers: CustomerConfig[] = [...base.customers];
  for (const [id, raw] of Object.entries(runtime.customers)) {
    const at = customers.findIndex((c) => c.id === id);
    if (raw === null) {
      if (at >= 0) customers.splice(at, 1);
      continue;
    }
    try {
      const customer = parseCustomerBody(id, raw, tierNames, appNames);
      if (at >= 0) customers[at] = customer;
      else customers.push(customer);
      runtimeCustomers.add(id);
    } catch (err) {
      dropped.push(...problemLines(err));
    }
  }
  // A deleted tier that the config uses again (a reload gave a customer or defaultTier to it) comes back.
  for (const name of deleted) {
    const users = customers.filter((c) => c.tier === name).map((c) => c.id);
    if (users.length === 0 && base.defaultTier !== name) continue;
    tiers[name] = base.tiers[name]!;
    dropped.push(`tiers.${name}: the deletion is not applied: ${users.length > 0 ? `customers ${users.join(', ')} use it` : 'it is defaultTier'}`);
  }
  return { config: { ...base, tiers, customers }, dropped, runtimeTiers, runtimeCustomers };
}

function problemLines(err: unknown): string[] {
  if (err instanceof ConfigError) return [...err.problems];
  return [err instanceof Error ? err.message : String(err)];
}

/**
 * The state after the config went from `oldTierNames` to `base`: tiers the config removed lose
 * their runtime override and the runtime customers in them; deletions of customers the config no
 * longer has are forgotten. Runtime-only tiers (never in the config) stay. Returns what went.
 */
export function pruneRuntime(state: RuntimeState, oldTierNames: readonly string[], base: ProxyConfig): { state: RuntimeState; pruned: string[] } {
  const removed = new Set(oldTierNames.filter((name) => !Object.hasOwn(base.tiers, name)));
  const pruned: string[] = [];
  const next = cloneRuntime(state);
  for (const name of removed) {
    if (Object.hasOwn(next.tiers, name)) {
      delete next.tiers[name];
      pruned.push(`tiers.${name}`);
    }
  }
  for (const [id, raw] of Object.entries(next.customers)) {
    if (raw === null) {
      if (!base.customers.some((c) => c.id === id)) {
        delete next.customers[id];
        pruned.push(`customers.${id} (deletion)`);
      }
    } else if (typeof raw['tier'] === 'string' && removed.has(raw['tier'])) {
      delete next.customers[id];
      pruned.push(`customers.${id}`);
    }
  }
  next.configTiers = Object.keys(base.tiers);
  return { state: next, pruned };
}

export function cloneRuntime(state: RuntimeState): RuntimeState {
  return structuredClone(state);
}

// ---- the state file ------------------------------------------------------------------------------

/** Writes `state` to `file` atomically (see writeFileAtomic). */
export async function saveRuntime(file: string, state: RuntimeState): Promise<void> {
  try {
    await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
  } catch (err) {
    throw new ProxyError('SHAPER_ERR_STATE', `cannot write the state file ${file}: ${errorText(err)}`, { cause: err });
  }
}

/**
 * Reads the state file. A missing file is an empty state; an unreadable or corrupt one is an
 * empty state plus warnings for the caller to log (a corrupt file is moved aside to
 * `<file>.corrupt` so the next save does not destroy it). Never throws.
 */
export async function loadRuntime(file: string): Promise<{ state: RuntimeState; warnings: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: emptyRuntime(), warnings: [] };
    return { state: emptyRuntime(), warnings: [`cannot read the state file ${file} (${errorText(err)}); starting without runtime changes`] };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { state: emptyRuntime(), warnings: [`state file ${file} is not valid JSON (${errorText(err)}); starting without runtime changes${await setAside(file)}`] };
  }
  if (!isPlainObject(raw) || raw['version'] !== 1) {
    const why = isPlainObject(raw) ? `version ${JSON.stringify(raw['version'])} is not 1` : 'not a JSON object';
    return { state: emptyRuntime(), warnings: [`state file ${file}: ${why}; starting without runtime changes${await setAside(file)}`] };
  }
  const warnings: string[] = [];
  const state = emptyRuntime();
  for (const [name, tier] of entries(raw['tiers'], `${file}: tiers`, warnings)) state.tiers[name] = tier;
  for (const [id, body] of entries(raw['customers'], `${file}: customers`, warnings)) {
    if (body === null || isPlainObject(body)) state.customers[id] = body;
    else warnings.push(`${file}: customers.${id} is neither an object nor null; left out`);
  }
  const configTiers = raw['configTiers'];
  if (Array.isArray(configTiers) && configTiers.every((n) => typeof n === 'string')) state.configTiers = configTiers;
  return { state, warnings };
}

/** The entries of a map in the state file, leaving out names that would touch a prototype. */
function entries(map: unknown, what: string, warnings: string[]): [string, unknown][] {
  if (map === undefined) return [];
  if (!isPlainObject(map)) {
    warnings.push(`${what} is not an object; left out`);
    return [];
  }
  return Object.entries(map).filter(([key]) => {
    if (!RESERVED_NAMES.includes(key)) return true;
    warnings.push(`${what}: "${key}" cannot be a name; left out`);
    return false;
  });
}

async function setAside(file: string): Promise<string> {
  try {
    await rename(file, `${file}.corrupt`);
    return ` (the file was moved to ${file}.corrupt)`;
  } catch {
    return '';
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
