/**
 * The caps bench's pure part: which client addresses and ports put a connection into a tier,
 * which measurements each tier gets (level × direction, how many connections of how many
 * customers, the rate due and the first-second bound), and the PASS/FAIL decision.
 */
import type { LevelLimits, ProxyConfig, TierConfig } from '../../../src/config/types.js';
import { CustomerMatcher } from '../../../src/identify/matcher.js';
import { burstFor } from '../../../src/shaping/grants.js';
import { byteUnits, fmtIn, type CapUnits, type Dir, type Level } from './units.js';

export type { Dir, Level } from './units.js';
export const LEVELS: readonly Level[] = ['connection', 'customer', 'total'];
export const DIRS: readonly Dir[] = ['down', 'up'];

/** Caps up to this rate must be met within ±tolerance; above it loopback may not carry them, so only overshoot fails. */
export const EXACT_MAX = 200e6;
/** Most connections a measurement opens for one customer (maxConnections lowers it). */
export const MAX_CONNS_PER_CUSTOMER = 32;
/** Most customers a tier-total measurement uses. */
export const MAX_CUSTOMERS = 8;

/** A proxy port the bench can connect to, with the app it belongs to. */
export interface AppPort {
  app: string;
  port: number;
}

/** One client connection: bound to `address`, connecting to proxy port `port`. */
export interface ClientSpec {
  /** customer id, or "default:<address>" for a defaultTier customer (one per source address) */
  customer: string;
  address: string;
  port: number;
}

export interface Measurement {
  tier: string;
  level: Level;
  dir: Dir;
  /** the level's cap, bytes/s */
  cap: number;
  /** what the planned connections should get (the lowest level that binds), bytes/s */
  expected: number;
  boundBy: Level | 'global';
  /** bytes the first second may carry: min over levels of rate × 1 s + burst */
  firstSecondBound: number;
  clients: ClientSpec[];
  customers: number;
  /** ms between connects (connectionRate), 0: all at once */
  paceMs: number;
  /** ms to wait before connecting (a named customer's admission reservoir refilling), 0: none */
  settleMs: number;
  notes: string[];
}

export interface Skip {
  tier: string;
  level: Level;
  dir: Dir;
  cap: number;
  reason: string;
}

export interface TierPlan {
  tier: string;
  measurements: Measurement[];
  skips: Skip[];
  notes: string[];
}

// ---- IPv4 loopback addresses -------------------------------------------------------------------

export function ipv4ToInt(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const LOOP_LO = ipv4ToInt('127.0.0.0')!;
const LOOP_HI = ipv4ToInt('127.255.255.255')!;

/** Up to `max` bindable 127.x addresses inside an IPv4 CIDR ("127.0.0.2/32", "127.0.0.0/24"); none for IPv6 or non-loopback. */
export function loopbackIn(cidr: string, max = 4): string[] {
  const [addr, lenText] = cidr.split('/');
  const base = ipv4ToInt(addr ?? '');
  if (base === null) return [];
  const len = lenText === undefined ? 32 : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > 32) return [];
  const size = 2 ** (32 - len);
  const lo = Math.max(Math.floor(base / size) * size, LOOP_LO);
  const hi = Math.min(Math.floor(base / size) * size + size - 1, LOOP_HI);
  const out: string[] = [];
  for (let n = lo; n <= hi && out.length < max; n++) {
    const last = n & 255;
    if (size > 1 && (last === 0 || last === 255)) continue; // network / broadcast-looking addresses
    out.push(intToIpv4(n));
  }
  return out;
}

// ---- planning ------------------------------------------------------------------------------------

const limitOf = (l: LevelLimits, dir: Dir) => l[dir];
const explicitBurst = (l: LevelLimits, dir: Dir) => (dir === 'down' ? l.burstDown : l.burstUp);

/** Every customer of every tier that a loopback client can be, in config order. */
interface Pool {
  /** named customers with a usable address and port, per tier */
  named: Map<string, ClientSpec[]>;
  notes: Map<string, string[]>;
}

function namedPool(config: ProxyConfig, ports: AppPort[]): Pool {
  const matcher = new CustomerMatcher(config.customers);
  const named = new Map<string, ClientSpec[]>();
  const notes = new Map<string, string[]>();
  for (const c of config.customers) {
    const list = named.get(c.tier) ?? [];
    const tierNotes = notes.get(c.tier) ?? [];
    named.set(c.tier, list);
    notes.set(c.tier, tierNotes);
    const sources = c.match.sources?.length ? c.match.sources : ['127.0.0.0/8'];
    let found: ClientSpec | undefined;
    for (const address of sources.flatMap((s) => loopbackIn(s, 64))) {
      const p = ports.find((ap) => matcher.match({ clientAddress: address, app: ap.app, port: ap.port }) === c.id);
      if (p) {
        found = { customer: c.id, address, port: p.port };
        break;
      }
    }
    if (found) list.push(found);
    else tierNotes.push(`customer ${c.id}: no loopback address in its match.sources (${sources.join(', ')}) that reaches it first; skipped`);
  }
  return { named, notes };
}

/** Yields loopback addresses no customer matches on `port`, starting at 127.0.1.1. */
function* defaultAddresses(config: ProxyConfig, ports: AppPort[]): Generator<ClientSpec> {
  const matcher = new CustomerMatcher(config.customers);
  for (let n = ipv4ToInt('127.0.1.1')!; n < ipv4ToInt('127.255.255.0')!; n++) {
    if ((n & 255) === 0 || (n & 255) === 255) continue;
    const address = intToIpv4(n);
    const p = ports.find((ap) => matcher.match({ clientAddress: address, app: ap.app, port: ap.port }) === undefined);
    if (p) yield { customer: `default:${address}`, address, port: p.port };
  }
}

/** Connections per customer so that `conn`-capped connections saturate a `customer` cap twice over. */
export function connectionsFor(connCap: number, customerCap: number, maxConnections: number | undefined): number {
  const limit = Math.min(maxConnections ?? MAX_CONNS_PER_CUSTOMER, MAX_CONNS_PER_CUSTOMER);
  const want = Number.isFinite(customerCap) && Number.isFinite(connCap) ? Math.ceil((2 * customerCap) / connCap) : 4;
  return Math.max(1, Math.min(limit, Math.max(2, want)));
}

/**
 * What `clients` (grouped by customer) of `tier` can get in `dir`, and the level that binds; and
 * the most bytes they may get in their first second (each level: rate × 1 s + burst).
 */
export function due(
  tier: TierConfig,
  global: LevelLimits,
  globalRttMs: number,
  clients: ClientSpec[],
  dir: Dir,
): { expected: number; boundBy: Level | 'global'; firstSecondBound: number } {
  const perCustomer = new Map<string, number>();
  for (const c of clients) perCustomer.set(c.customer, (perCustomer.get(c.customer) ?? 0) + 1);
  const conn = limitOf(tier.connection, dir);
  const cust = limitOf(tier.customer, dir);
  const total = limitOf(tier.total, dir);
  const glob = limitOf(global, dir);
  const connBurst = burstFor(conn, tier.rtt, explicitBurst(tier.connection, dir));
  const custBurst = burstFor(cust, tier.rtt, explicitBurst(tier.customer, dir));
  let connSum = 0;
  let custSum = 0;
  let connBound = 0;
  let custBound = 0;
  for (const n of perCustomer.values()) {
    connSum += n * conn;
    custSum += Math.min(cust, n * conn);
    connBound += n * (conn + connBurst);
    custBound += Math.min(cust + custBurst, n * (conn + connBurst));
  }
  const candidates: [Level | 'global', number, number][] = [
    ['connection', connSum, connBound],
    ['customer', custSum, custBound],
    ['total', total, total + burstFor(total, tier.rtt, explicitBurst(tier.total, dir))],
    ['global', glob, glob + burstFor(glob, globalRttMs, explicitBurst(global, dir))],
  ];
  let best = candidates[0]!;
  for (const c of candidates) if (c[1] < best[1] - 1e-9) best = c;
  const firstSecondBound = Math.min(...candidates.map((c) => c[2]));
  return { expected: best[1], boundBy: best[0], firstSecondBound };
}

const pace = (tier: TierConfig, customers: number) => (tier.connectionRate ? ((tier.connectionRate.per / tier.connectionRate.count) * 1.2) / customers : 0);

/** Round-robin over customers so paced connects spread evenly over them. */
function interleave(groups: ClientSpec[][]): ClientSpec[] {
  const out: ClientSpec[] = [];
  for (let i = 0; groups.some((g) => i < g.length); i++) for (const g of groups) if (i < g.length) out.push(g[i]!);
  return out;
}

/**
 * The measurements for every tier of `config`, connecting to `ports` (the proxy's app ports,
 * in the order to prefer); rates in its notes in the config's `units`. Pure: the same config gives the same plan.
 */
export function planCaps(config: ProxyConfig, ports: AppPort[], only?: string[], units: CapUnits = byteUnits): TierPlan[] {
  const pool = namedPool(config, ports);
  const defaults = defaultAddresses(config, ports);
  const globalRtt = Math.max(0, ...Object.values(config.tiers).map((t) => t.rtt));
  const plans: TierPlan[] = [];
  for (const [name, tier] of Object.entries(config.tiers)) {
    if (only && !only.includes(name)) continue;
    const plan: TierPlan = { tier: name, measurements: [], skips: [], notes: [...(pool.notes.get(name) ?? [])] };
    plans.push(plan);
    const named = pool.named.get(name) ?? [];
    const isDefault = config.defaultTier === name;
    if (!named.length && !isDefault) {
      plan.notes.push(`tier ${name}: no customer of this tier can be reached from a loopback address and it is not the defaultTier; nothing measured`);
      continue;
    }
    /** `k` customers for one measurement: named ones first, then fresh default addresses (fresh buckets, fresh admission). */
    const customers = (k: number): ClientSpec[] => {
      const out = named.slice(0, k);
      while (out.length < k && isDefault) out.push(defaults.next().value as ClientSpec);
      return out;
    };
    const available = isDefault ? MAX_CUSTOMERS : Math.min(named.length, MAX_CUSTOMERS);
    for (const level of LEVELS) {
      for (const dir of DIRS) {
        const cap = limitOf(tier[level], dir);
        if (!Number.isFinite(cap)) {
          plan.skips.push({ tier: name, level, dir, cap, reason: `${level} ${dir} is unlimited` });
          continue;
        }
        const connCap = limitOf(tier.connection, dir);
        const custCap = limitOf(tier.customer, dir);
        const perCustomer = level === 'connection' ? 1 : connectionsFor(connCap, custCap, tier.maxConnections);
        let k = 1;
        if (level === 'total') {
          const each = Math.min(custCap, perCustomer * connCap);
          k = Math.min(available, Math.max(2, Math.ceil((1.5 * cap) / each)));
        }
        const who = customers(k);
        const groups = who.map((c) => Array.from({ length: perCustomer }, () => ({ ...c })));
        const clients = interleave(groups);
        const d = due(tier, config.global, globalRtt, clients, dir);
        if (d.boundBy !== level && d.boundBy !== 'global' && level !== 'connection') {
          const reason =
            level === 'total'
              ? `tier total not reachable: ${who.length} customer(s) × ${perCustomer} connection(s) carry at most ${fmtIn(d.expected, units(name, level, dir))} (${d.boundBy} caps bind)${who.length === 1 ? '; total == customer measurement with a single matching customer' : ''}`
              : `customer cap not reachable: ${perCustomer} connection(s) (maxConnections) carry at most ${fmtIn(d.expected, units(name, level, dir))}`;
          plan.skips.push({ tier: name, level, dir, cap, reason });
          continue;
        }
        const notes: string[] = [];
        if (d.boundBy !== level) notes.push(`${d.boundBy} cap binds first: expected ${fmtIn(d.expected, units(name, level, dir))}`);
        const namedUsed = who.some((c) => !c.customer.startsWith('default:'));
        plan.measurements.push({
          tier: name,
          level,
          dir,
          cap,
          expected: d.expected,
          boundBy: d.boundBy,
          firstSecondBound: d.firstSecondBound,
          clients,
          customers: who.length,
          paceMs: pace(tier, who.length),
          settleMs: namedUsed && tier.connectionRate ? tier.connectionRate.per + 100 : namedUsed ? 200 : 0,
          notes,
        });
      }
    }
  }
  return plans;
}

// ---- the decision ----------------------------------------------------------------------------------

export interface Verdict {
  pass: boolean;
  /** measured / expected - 1 */
  error: number;
  /** how the rate was judged: "±3%" or "≤ +3% (above 200 MB/s)" */
  tolerance: string;
  reasons: string[];
}

export interface Observed {
  expected: number;
  measured: number;
  /** null with one connection */
  jain: number | null;
  firstSecond: number;
  firstSecondBound: number;
}

/**
 * PASS when the rate is within ±tol of the expected rate (only "not above +tol" for rates over
 * EXACT_MAX, which loopback may not carry), Jain ≥ jainMin among connections sharing a bucket, and
 * the first second carried at most its bound plus tol of a second's rate (measurement slack).
 */
export function decide(o: Observed, tol: number, jainMin: number): Verdict {
  const error = o.measured / o.expected - 1;
  const reasons: string[] = [];
  const exact = o.expected <= EXACT_MAX;
  if (!Number.isFinite(error)) reasons.push('no rate measured');
  else if (exact && Math.abs(error) > tol) reasons.push(`rate ${fmtPct(error)} off the cap (±${fmtPct(tol, false)})`);
  else if (!exact && error > tol) reasons.push(`rate ${fmtPct(error)} above the cap`);
  if (o.jain !== null && !(o.jain >= jainMin)) reasons.push(`Jain ${o.jain.toFixed(3)} < ${jainMin}`);
  const excess = overshoot(o.firstSecond, o.firstSecondBound, o.expected, tol);
  if (excess > 0) reasons.push(`first second ${excess.toFixed(0)} B over cap × 1 s + burst`);
  return { pass: reasons.length === 0, error, tolerance: exact ? `±${fmtPct(tol, false)}` : `≤ +${fmtPct(tol, false)} (cap > ${EXACT_MAX / 1e6} MB/s)`, reasons };
}

/** Bytes of the first second above its bound (cap × 1 s + burst, plus tol × rate of slack); ≤ 0 is fine. */
export function overshoot(firstSecond: number, bound: number, rate: number, tol: number): number {
  return firstSecond - (bound + tol * rate);
}

export function fmtPct(x: number, sign = true): string {
  return `${sign && x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`;
}
