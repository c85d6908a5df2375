/** How the page writes figures: rates in bits/s (and bytes/s), sizes, latencies with their units, durations. */

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

/** A time given in milliseconds, with its unit: `0.42 ms`, `12.3 ms`, `250 ms`, `1.25 s`, `42.0 s`, `3m 05s`. */
export function latency(x: number | null | undefined): string {
  if (!finite(x)) return NONE;
  if (x > 0 && x < 0.01) return '<0.01 ms';
  if (x < 999.5) return `${sig(x)} ms`;
  if (x < 59_950) return `${sig(x / 1000)} s`;
  return duration(Math.round(x / 1000));
}

/** A fraction as a percentage: `37.5 %`. */
export function percent(x: number | null | undefined): string {
  return finite(x) ? `${sig(x * 100)} %` : NONE;
}

/** How long ago an ISO time was, from this browser's clock: `12s ago`. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  const t = iso ? Date.parse(iso) : NaN;
  return finite(t) ? `${duration(Math.max(0, (now - t) / 1000))} ago` : NONE;
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
