/**
 * Pure arithmetic on per-connection histories: [epoch ms, cumulative bytes] samples, sorted by time.
 */
export type History = [number, number][];

/** Cumulative bytes at time t, linearly interpolated between samples (0 before the first, the last after it). */
export function valueAt(h: History, t: number): number {
  if (!h.length || t < h[0]![0]) return 0;
  let lo = 0;
  let hi = h.length - 1;
  if (t >= h[hi]![0]) return h[hi]![1];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (h[mid]![0] <= t) lo = mid;
    else hi = mid;
  }
  const [t0, b0] = h[lo]!;
  const [t1, b1] = h[hi]!;
  return t1 === t0 ? b1 : b0 + ((b1 - b0) * (t - t0)) / (t1 - t0);
}

/** Bytes/s of each connection over [t0, t1]. */
export function windowRates(hs: History[], t0: number, t1: number): number[] {
  return hs.map((h) => (valueAt(h, t1) - valueAt(h, t0)) / ((t1 - t0) / 1000));
}

/** Cumulative bytes of the last sample at or before t: a lower bound, never counts a byte that came later. */
export function stepAt(h: History, t: number): number {
  let v = 0;
  for (const [ts, b] of h) {
    if (ts > t) break;
    v = b;
  }
  return v;
}

/**
 * All connections' bytes from `firstByteAt` (the first byte of any of them) to one second later,
 * from the samples at or before that moment (so a sampling gap never inflates it).
 */
export function firstSecondBytes(hs: History[], firstByteAt: number): number {
  let s = 0;
  for (const h of hs) s += stepAt(h, firstByteAt + 1000);
  return s;
}

/** Aggregate rate over time: every `stepMs`, the bytes/s of the trailing `windowMs`; x in seconds from `start`. */
export function rateSeries(hs: History[], start: number, end: number, windowMs = 500, stepMs = 100): [number, number][] {
  const out: [number, number][] = [];
  const total = (t: number) => hs.reduce((s, h) => s + valueAt(h, t), 0);
  for (let t = start + windowMs; t <= end + 1e-6; t += stepMs) out.push([(t - start) / 1000, (total(t) - total(t - windowMs)) / (windowMs / 1000)]);
  return out;
}
