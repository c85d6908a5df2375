/**
 * Parsers for the human units the config accepts. Each throws a SHAPER_ERR_UNIT error whose
 * message says what was expected; the loader prefixes the key path. Each grammar is written once,
 * as the regular expression the parser uses, and the JSON Schema takes the same expression as
 * the `pattern` an editor checks while you type (the *_PATTERN exports).
 */
import { ProxyError } from '../errors.js';

function unitError(message: string): ProxyError {
  return new ProxyError('SHAPER_ERR_UNIT', message);
}

const finitePositive = (v: number): boolean => Number.isFinite(v) && v > 0;

/** `text` matched in any case, as a pattern without flags: "ms" -> "[mM][sS]". */
function anyCase(text: string): string {
  return text.replace(/[a-z]/gi, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`);
}

const NUMBER = String.raw`(\d+(?:\.\d+)?)`;
const anchored = (source: string): RegExp => new RegExp(`^${source}$`);

// ---- durations -----------------------------------------------------------------------------

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_UNIT = `(${anyCase('ms')}|[sSmMhHdD])`;
const DURATION = anchored(String.raw`\s*${NUMBER}\s*${DURATION_UNIT}?\s*`);
export const DURATION_PATTERN = DURATION.source;

/** "250ms", "3s", "1.5m", "1h", "2d"; a number is milliseconds. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
    throw unitError(`${JSON.stringify(value)} is not a duration (use a number of milliseconds >= 0)`);
  }
  const m = typeof value === 'string' ? DURATION.exec(value) : null;
  if (m) {
    const ms = Number(m[1]) * (m[2] ? DURATION_UNITS[m[2].toLowerCase()]! : 1);
    if (Number.isFinite(ms)) return ms;
  }
  throw unitError(`${JSON.stringify(value)} is not a duration (use e.g. "250ms", "3s", "1h" or milliseconds)`);
}

// ---- rates ---------------------------------------------------------------------------------

/** Decimal multipliers by prefix letter; the case of the letter never changes the number. */
const DECIMAL: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
const BINARY: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * The rate units, each with what one of it is in bytes/s. The case of "b" is what tells bits from
 * bytes, so each unit is spelled where that case is unmistakable: "bit" in any case, the ISP's
 * "bps" (kbps, Mbps, ...), and bytes with a capital "B" and "/s" (KB/s, MiB/s).
 */
const RATE_UNITS: { source: string; bytes: (prefix: string) => number }[] = [
  { source: `([kKmMgGtT]?)${anyCase('bit')}(?:/[sS]|${anyCase('ps')})?`, bytes: (p) => DECIMAL[p]! / 8 },
  { source: '([kKMGT]?)bps', bytes: (p) => DECIMAL[p]! / 8 },
  { source: '([kKMGT]?)B/s', bytes: (p) => DECIMAL[p]! },
  { source: '([KMGT])iB/s', bytes: (p) => BINARY[p]! },
];
const RATE_UNIT_RES = RATE_UNITS.map((u) => ({ re: anchored(u.source), bytes: u.bytes }));
const RATE = anchored(String.raw`\s*${NUMBER}\s*(.*?)\s*`);
export const RATE_PATTERN = `^\\s*(?:${anyCase('unlimited')}|\\d+(?:\\.\\d+)?\\s*(?:${RATE_UNITS.map((u) => u.source).join('|')})?)\\s*$`;
/** A spelling of bits or bytes that the rules above refuse: "kb/s", "10mb", "MBps", "mib/s". */
const BITS_OR_BYTES = /^([kmgt]?)(i?)(b)(\/s|ps)?$/i;
const RATE_HELP = 'use bytes/s as a number, "512kbit", "100mbit", "1gbit", "64KB/s", "10MiB/s" or "unlimited"';

/**
 * A rate in bytes per second; Infinity means unlimited. A number is bytes/s; bits/s are "512kbit",
 * "100mbit", "1Gbit/s" and the ISP's "100Mbps", "1Gbps"; bytes/s are "64KB/s", "10MB/s" (decimal)
 * and "64KiB/s", "10MiB/s" (binary). A spelling whose case leaves bits or bytes open ("64kb/s",
 * "10mb", "100MBps") is refused with both readings.
 */
export function parseRate(value: unknown): number {
  if (typeof value === 'number') {
    if (finitePositive(value)) return value;
    throw unitError(`${JSON.stringify(value)} is not a rate (use a number of bytes/s > 0, "100Mbps", "10MiB/s" or "unlimited")`);
  }
  if (typeof value === 'string') {
    if (value.trim().toLowerCase() === 'unlimited') return Infinity;
    const m = RATE.exec(value);
    if (m) {
      const [, number, unit] = m as unknown as [string, string, string];
      if (unit === '' && finitePositive(Number(number))) return Number(number);
      for (const { re, bytes } of RATE_UNIT_RES) {
        const u = re.exec(unit);
        const rate = u ? Number(number) * bytes(u[1]!.toLowerCase()) : NaN;
        if (finitePositive(rate)) return rate;
      }
      const readings = unit === '' ? undefined : rateReadings(number, unit);
      if (readings) throw unitError(`${JSON.stringify(value)} ${readings}`);
    }
  }
  throw unitError(`${JSON.stringify(value)} is not a rate (${RATE_HELP})`);
}

/** What a refused spelling of bits or bytes could have meant: "is ambiguous ...: did you mean ...?" */
function rateReadings(number: string, unit: string): string | undefined {
  const m = BITS_OR_BYTES.exec(unit);
  if (!m) return undefined;
  const [, prefix, binary, b, perSecond] = m as unknown as [string, string, string, string, string | undefined];
  const p = prefix.toUpperCase();
  if (binary !== '') return p === '' ? undefined : `is not a rate: did you mean "${number}${p}iB/s" (${BINARY_NAMES[p]}bytes/s)?`;
  const bytes = `"${number}${p}B/s" (${DECIMAL_NAMES[p]}bytes/s)`;
  // A capital B says bytes, unless it is followed by "ps" ("10MBps" reads like the ISP's "10Mbps").
  if (b === 'B' && perSecond?.toLowerCase() !== 'ps') return `is not a rate: did you mean ${bytes}?`;
  const bits = `"${number}${p === 'K' ? 'k' : p}bps" (${DECIMAL_NAMES[p]}bits/s)`;
  return `is ambiguous, bits or bytes: did you mean ${bits} or ${bytes}?`;
}
const DECIMAL_NAMES: Record<string, string> = { '': '', K: 'kilo', M: 'mega', G: 'giga', T: 'tera' };
const BINARY_NAMES: Record<string, string> = { K: 'kibi', M: 'mebi', G: 'gibi', T: 'tebi' };

// ---- sizes and counts ------------------------------------------------------------------------

const BYTE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};
const SIZE = anchored(String.raw`\s*${NUMBER}\s*([kKmMgGtT]?[iI]?[bB])?\s*`);
export const SIZE_PATTERN = SIZE.source;

/** A byte size: a number of bytes, or "64KB", "1MiB", "512B" (any case: a size is always bytes). */
export function parseSize(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 1) return Math.round(value);
  const m = typeof value === 'string' ? SIZE.exec(value) : null;
  const bytes = m ? Math.round(Number(m[1]) * (m[2] ? BYTE_UNITS[m[2].toLowerCase()]! : 1)) : NaN;
  if (Number.isFinite(bytes) && bytes >= 1) return bytes;
  throw unitError(`${JSON.stringify(value)} is not a size (use bytes as a number or e.g. "64KiB", "1MB")`);
}

const COUNT_RATE = anchored(String.raw`\s*(\d+)\s*/\s*${NUMBER}?\s*(${anyCase('ms')}|[sSmMhH])\s*`);
export const COUNT_RATE_PATTERN = COUNT_RATE.source;

/** "10/s", "600/m", "5/1s": admissions per interval. */
export function parseCountRate(value: unknown): { count: number; per: number } {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return { count: value, per: 1000 };
  const m = typeof value === 'string' ? COUNT_RATE.exec(value) : null;
  if (m && finitePositive(Number(m[1]))) {
    const per = (m[2] ? Number(m[2]) : 1) * DURATION_UNITS[m[3]!.toLowerCase()]!;
    if (finitePositive(per)) return { count: Number(m[1]), per };
  }
  throw unitError(`${JSON.stringify(value)} is not a count rate (use e.g. "10/s", "600/m")`);
}

// ---- addresses -------------------------------------------------------------------------------

export interface HostPort {
  host: string;
  port: number;
}

const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/;
export const HOST_PORT_PATTERN = HOST_PORT.source;

/** "host:port", "1.2.3.4:80", "[::1]:80". Port 0 is allowed only where `allowZero`. */
export function parseHostPort(value: unknown, allowZero = false): HostPort {
  const m = typeof value === 'string' ? HOST_PORT.exec(value) : null;
  if (m) {
    const port = Number(m[3]);
    if (port <= 65535 && (port > 0 || allowZero)) return { host: (m[1] ?? m[2])!, port };
  }
  throw unitError(`${JSON.stringify(value)} is not host:port (use e.g. "127.0.0.1:9001" or "[::1]:9001")`);
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
