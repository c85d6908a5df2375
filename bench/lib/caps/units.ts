/**
 * Rates as the config spells them: a tier written `"connection": {"down": "1mbit"}` is reported in
 * Mbit/s, `"100Mbps"` in Mbps, `"10MiB/s"` in MiB/s, `"64KB/s"` in KB/s; a plain number of bytes/s
 * (or no spelling) in kB/s or MB/s. The number each unit stands for comes from the config's own
 * parser (parseRate), so the bench and the proxy read a spelling alike.
 */
import { parseRate } from '../../../src/config/units.js';
import { isPlainObject } from '../../../src/config/fly.js';

export type Level = 'connection' | 'customer' | 'total';
export type Dir = 'down' | 'up';

export interface RateUnit {
  /** as printed: "Mbit/s", "Mbps", "MiB/s", "KB/s" */
  name: string;
  /** bytes/s in one of it */
  bytes: number;
}

/** The unit the config spells `tier`'s `level` cap in `dir` in; undefined: bytes/s (fmtRate). */
export type CapUnits = (tier: string, level: Level, dir: Dir) => RateUnit | undefined;

/** Bytes/s in kB/s or MB/s (decimal), for caps given as numbers. */
export function fmtRate(bps: number): string {
  if (!Number.isFinite(bps)) return 'unlimited';
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} MB/s`;
  return `${(bps / 1e3).toFixed(1)} kB/s`;
}

/** The decimal byte unit fmtRate would pick for rates up to `bps` (chart axes). */
export function byteUnit(bps: number): RateUnit {
  return bps >= 1e6 ? { name: 'MB/s', bytes: 1e6 } : { name: 'kB/s', bytes: 1e3 };
}

/** `bps` in `unit`, four significant digits ("1 Mbit/s", "0.9873 Mbit/s", "503.2 kbit/s"). */
export function fmtIn(bps: number, unit: RateUnit | undefined): string {
  if (!unit || !Number.isFinite(bps)) return fmtRate(bps);
  return `${Number((bps / unit.bytes).toPrecision(4))} ${unit.name}`;
}

/**
 * The unit of a rate spelling ("512kbit" -> kbit/s), or undefined for a number of bytes/s, a
 * spelling without a unit, "unlimited", or one the config would refuse.
 */
export function unitOf(spelling: unknown): RateUnit | undefined {
  if (typeof spelling !== 'string') return undefined;
  const unit = /^\s*\d+(?:\.\d+)?\s*([^\d\s.].*?)\s*$/.exec(spelling)?.[1];
  if (!unit) return undefined;
  let bytes: number;
  try {
    bytes = parseRate(`1${unit}`);
  } catch {
    return undefined;
  }
  // "mbit", "Mbit/s", "mbitps" all print as Mbit/s (k stays lower case, as in kbit/s)
  const bits = /^([kmgt]?)bit/i.exec(unit);
  const name = bits ? `${bits[1] === 'k' || bits[1] === 'K' ? 'k' : bits[1]!.toUpperCase()}bit/s` : unit;
  return { name, bytes };
}

/** The units `raw` (the config as written, see readRawConfig) spells each cap in. */
export function configUnits(raw: Record<string, unknown>): CapUnits {
  const tiers = isPlainObject(raw['tiers']) ? raw['tiers'] : {};
  return (tier, level, dir) => {
    const t = tiers[tier];
    const caps = isPlainObject(t) ? t[level] : undefined;
    return isPlainObject(caps) ? unitOf(caps[dir]) : undefined;
  };
}

/** Bytes/s everywhere (a config not read as written). */
export const byteUnits: CapUnits = () => undefined;
