/**
 * Each tier's down and up rates over the last five minutes, on this browser's clock: seeded once
 * from `/stats?history=1`, then one sample per poll.
 */
import type { StatsHistory } from '../../observe/stats-document.js';

export const WINDOW_S = 300;
const MAX_POINTS = 300;

/** [t (s, this browser's clock), down B/s, up B/s]; null where the server had no sample. */
export type Sample = [t: number, down: number | null, up: number | null];

const samples = new Map<string, Sample[]>();

export function push(tier: string, t: number, down: number | null, up: number | null): void {
  let h = samples.get(tier);
  if (!h) samples.set(tier, (h = []));
  h.push([t, down, up]);
  while (h.length > MAX_POINTS || (h.length > 0 && h[0]![0] < t - WINDOW_S - 5)) h.shift();
}

export function samplesOf(tier: string): readonly Sample[] {
  return samples.get(tier) ?? [];
}

/** The server's samples, moved onto this browser's clock (its last sample is "now"). */
export function seed(history: StatsHistory): void {
  const ts = history.t;
  const last = ts[ts.length - 1];
  if (last === undefined) return;
  const shift = Date.now() / 1000 - last;
  for (const [tier, series] of Object.entries(history.tiers)) {
    samples.set(tier, []);
    ts.forEach((t, i) => push(tier, t + shift, series.down[i] ?? null, series.up[i] ?? null));
  }
}
