/** How the page writes figures: rates in bits/s (and bytes/s), sizes, milliseconds, durations. */

const NONE = '\u2014';

function finite(x: number | null | undefined): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** Three significant figures at most, two decimals below 10. */
export function sig(x: number): string {
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function scaled(x: number, units: readonly string[], base: number): string {
  let i = 0;
  while (Math.abs(x) >= base && i < units.length - 1) {
    x /= base;
    i++;
  }
  return `${i === 0 ? String(Math.round(x)) : sig(x)} ${units[i]}`;
}

const BIT_RATES = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
const BYTE_RATES = ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s'];
const SIZES = ['B', 'kB', 'MB', 'GB', 'TB'];

/** A rate given in bytes/s, written in bits/s: `16.0 Mbit/s`. */
export function bits(bytesPerS: number | null | undefined): string {
  return finite(bytesPerS) ? scaled(bytesPerS * 8, BIT_RATES, 1000) : NONE;
}

export function byteRate(bytesPerS: number | null | undefined): string {
  return finite(bytesPerS) ? scaled(bytesPerS, BYTE_RATES, 1000) : NONE;
}

export function bytes(n: number | null | undefined): string {
  return finite(n) ? scaled(n, SIZES, 1000) : NONE;
}

/** A cap: both units, or `unlimited` for null. */
export function cap(bytesPerS: number | null | undefined): string {
  if (finite(bytesPerS)) return `${bits(bytesPerS)} (${byteRate(bytesPerS)})`;
  return bytesPerS === null ? 'unlimited' : NONE;
}

export function ms(x: number | null | undefined): string {
  if (!finite(x)) return NONE;
  return x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0);
}

export function count(x: number | null | undefined): string {
  return finite(x) ? String(Math.round(x)) : NONE;
}

const two = (n: number) => (n < 10 ? '0' : '') + n;

/** Seconds as `42s`, `3m 05s`, `2h 03m 05s`, `4d 2h 03m`. */
export function duration(s: number | null | undefined): string {
  if (!finite(s)) return NONE;
  const v = Math.floor(s);
  const d = Math.floor(v / 86400);
  const h = Math.floor((v % 86400) / 3600);
  const m = Math.floor((v % 3600) / 60);
  const sec = v % 60;
  if (d > 0) return `${d}d ${h}h ${two(m)}m`;
  if (h > 0) return `${h}h ${two(m)}m ${two(sec)}s`;
  return m > 0 ? `${m}m ${two(sec)}s` : `${sec}s`;
}

/** A chart axis tick: at most three significant digits, no trailing zeros. */
export function tick(v: number): string {
  return String(parseFloat(v.toPrecision(3)));
}
