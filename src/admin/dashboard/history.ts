/**
 * Each tier's down and up rates and the caps that bound them over the last five minutes, on this
 * browser's clock: seeded once from `/stats?history=1` (the server keeps rates only: those
 * samples get the caps of the page's first poll), then one sample per poll.
 */
import type { Cap, StatsHistory, TierStats } from '../../observe/stats-document.js';

export const WINDOW_S = 300;
const MAX_POINTS = 300;

/** [t (s, this browser's clock), down B/s, up B/s, the binding caps down and up]; null where there is no figure. */
export type Sample = [t: number, down: number | null, up: number | null, capDown: Cap, capUp: Cap];

const samples = new Map<string, Sample[]>();

export function push(tier: string, sample: Sample): void {
  let h = samples.get(tier);
  if (!h) samples.set(tier, (h = []));
  h.push(sample);
  const t = sample[0];
  while (h.length > MAX_POINTS || (h.length > 0 && h[0]![0] < t - WINDOW_S - 5)) h.shift();
}

/** A tier's sample of one poll. */
export function sampleOf(t: number, tier: TierStats): Sample {
  return [t, tier.rateDown, tier.rateUp, tier.bindingDown.cap, tier.bindingUp.cap];
}

export function samplesOf(tier: string): readonly Sample[] {
  return samples.get(tier) ?? [];
}

/** The server's samples, moved onto this browser's clock (its last sample is "now"), with `tiers`' caps. */
export function seed(history: StatsHistory, tiers: readonly TierStats[]): void {
  const ts = history.t;
  const last = ts[ts.length - 1];
  if (last === undefined) return;
  const shift = Date.now() / 1000 - last;
  for (const [name, series] of Object.entries(history.tiers)) {
    const tier = tiers.find((x) => x.name === name);
    samples.set(name, []);
    ts.forEach((t, i) => push(name, [t + shift, series.down[i] ?? null, series.up[i] ?? null, tier?.bindingDown.cap ?? null, tier?.bindingUp.cap ?? null]));
  }
}
