/**
 * Parsers for the human units the config accepts. Each throws a SHAPER_ERR_UNIT error whose
 * message says what was expected; the loader prefixes the key path.
 */
import { ProxyError } from '../errors.js';

function unitError(message: string): ProxyError {
  return new ProxyError('SHAPER_ERR_UNIT', message);
}

const finitePositive = (v: number): boolean => Number.isFinite(v) && v > 0;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "3s", "1.5m", "1h", "2d"; a number is milliseconds. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
    throw unitError(`${JSON.stringify(value)} is not a duration (use a number of milliseconds >= 0)`);
  }
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(value);
    if (m && Number.isFinite(Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!)) return Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!;
    if (/^\s*\d+(?:\.\d+)?\s*$/.test(value) && Number.isFinite(Number(value))) return Number(value);
  }
  throw unitError(`${JSON.stringify(value)} is not a duration (use e.g. "250ms", "3s", "1h" or milliseconds)`);
}

const BIT_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12 };
const BYTE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/**
 * A rate in bytes per second. Infinity means unlimited.
 * Numbers are bytes/s; "512kbit", "100mbit", "1gbit" are decimal bits/s;
 * "64KB/s", "10MB/s" decimal bytes/s; "64KiB/s", "10MiB/s" binary bytes/s.
 */
export function parseRate(value: unknown): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value > 0) return value;
    throw unitError(`${JSON.stringify(value)} is not a rate (use a number of bytes/s > 0, "100mbit", "10MiB/s" or "unlimited")`);
  }
  if (typeof value === 'string') {
    const s = value.trim().toLowerCase();
    if (s === 'unlimited') return Infinity;
    let m = /^(\d+(?:\.\d+)?)\s*([kmgt]?bit)(?:\/s|ps)?$/.exec(s);
    if (m && finitePositive((Number(m[1]) * BIT_UNITS[m[2]!]!) / 8)) return (Number(m[1]) * BIT_UNITS[m[2]!]!) / 8;
    m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b)\/s$/.exec(s);
    if (m && finitePositive(Number(m[1]) * BYTE_UNITS[m[2]!]!)) return Number(m[1]) * BYTE_UNITS[m[2]!]!;
    m = /^(\d+(?:\.\d+)?)$/.exec(s);
    if (m && finitePositive(Number(m[1]))) return Number(m[1]);
  }
  throw unitError(
    `${JSON.stringify(value)} is not a rate (use bytes/s as a number, "512kbit", "100mbit", "1gbit", "64KB/s", "10MiB/s" or "unlimited")`,
  );
}

/** A byte size: a number of bytes, or "64KB", "1MiB", "512B". */
export function parseSize(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 1) return Math.round(value);
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b)?\s*$/i.exec(value);
    const bytes = m ? Math.round(Number(m[1]) * (m[2] ? BYTE_UNITS[m[2].toLowerCase()]! : 1)) : NaN;
    if (Number.isFinite(bytes) && bytes >= 1) return bytes;
  }
  throw unitError(`${JSON.stringify(value)} is not a size (use bytes as a number or e.g. "64KiB", "1MB")`);
}

/** "10/s", "600/m", "5/1s": admissions per interval. */
export function parseCountRate(value: unknown): { count: number; per: number } {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return { count: value, per: 1000 };
  if (typeof value === 'string') {
    const m = /^\s*(\d+)\s*\/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h)\s*$/i.exec(value);
    if (m && finitePositive(Number(m[1]))) {
      const per = (m[2] ? Number(m[2]) : 1) * DURATION_UNITS[m[3]!.toLowerCase()]!;
      if (finitePositive(per)) return { count: Number(m[1]), per };
    }
  }
  throw unitError(`${JSON.stringify(value)} is not a count rate (use e.g. "10/s", "600/m")`);
}

export interface HostPort {
  host: string;
  port: number;
}

/** "host:port", "1.2.3.4:80", "[::1]:80". Port 0 is allowed only where `allowZero`. */
export function parseHostPort(value: unknown, allowZero = false): HostPort {
  if (typeof value === 'string') {
    const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(value) ?? /^([A-Za-z0-9._-]+):(\d{1,5})$/.exec(value);
    if (m) {
      const port = Number(m[2]);
      if (port <= 65535 && (port > 0 || allowZero)) return { host: m[1]!, port };
    }
  }
  throw unitError(`${JSON.stringify(value)} is not host:port (use e.g. "127.0.0.1:9001" or "[::1]:9001")`);
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
