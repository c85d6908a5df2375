/**
 * The peak case of `bench plans`: one connection through the real proxy, its tier capped at
 * `rate` with a large `burst` and a `peak`. While the burst of credit lasts (burst / (peak - rate)
 * seconds) it must arrive at the peak rate, then at the base rate, each within 2 %.
 */
import { openDownloaders, sampleSeries } from './downloaders.js';
import { startShapedProxy, withSource } from './shaped-proxy.js';

const MiB = 1024 * 1024;

export interface PeakCaseOptions {
  /** bytes/s */
  rate: number;
  /** bytes */
  burst: number;
  /** bytes/s */
  peak: number;
  /** seconds measured at the base rate, after the burst */
  baseSeconds: number;
  tolerance: number;
}

export const PEAK_DEFAULTS: PeakCaseOptions = { rate: 1 * MiB, burst: 8 * MiB, peak: 4 * MiB, baseSeconds: 3, tolerance: 0.02 };

export interface PlansCaseResult {
  case: string;
  target: string;
  measured: string;
  pass: boolean;
  data: Record<string, unknown>;
}

const mibs = (x: number): string => `${(x / MiB).toFixed(3)} MiB/s`;
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`;

/** Bytes/s between `from` and `to` ms of a [t, bytes] series (the samples nearest inside the window). */
function rateBetween(series: [number, number][], from: number, to: number): number {
  const inside = series.filter(([t]) => t >= from && t <= to);
  const [t0, b0] = inside[0]!;
  const [t1, b1] = inside[inside.length - 1]!;
  return ((b1 - b0) * 1000) / (t1 - t0);
}

/**
 * The peak holds while the burst lasts, then the base rate. The windows leave out the first 200 ms
 * (connect, the small peak bucket's own burst) and 10 % of the burst's end, then half a second for
 * the base rate to settle.
 */
export async function peakCase(options: Partial<PeakCaseOptions> = {}): Promise<PlansCaseResult> {
  const o = { ...PEAK_DEFAULTS, ...options };
  const burstSeconds = o.burst / (o.peak - o.rate);
  return withSource(async (target) => {
    const proxy = await startShapedProxy(target, {
      tiers: { p: { rtt: '50ms', connection: { down: o.rate, burst: o.burst, peak: o.peak } } },
      defaultTier: 'p',
    });
    try {
      const conns = await openDownloaders(proxy.port, 1);
      try {
        const ms = (burstSeconds + 0.5 + o.baseSeconds) * 1000;
        const series = await sampleSeries(() => conns.bytes[0]!, ms + 100, 5);
        const peakWindow: [number, number] = [200, burstSeconds * 900];
        const baseWindow: [number, number] = [burstSeconds * 1000 + 500, ms];
        const atPeak = rateBetween(series, ...peakWindow);
        const atBase = rateBetween(series, ...baseWindow);
        // When the peak ended: the end of the last 100 ms that carried more than half-way between the two rates.
        const half = (o.peak + o.rate) / 2 / 10;
        const end: number = series.findLast(([t, b]) => (series.find(([u]) => u >= t + 100)?.[1] ?? -Infinity) - b > half)?.[0] ?? NaN;
        const peakError = atPeak / o.peak - 1;
        const baseError = atBase / o.rate - 1;
        const pass = Math.abs(peakError) <= o.tolerance && Math.abs(baseError) <= o.tolerance;
        return {
          case: `peak: ${mibs(o.rate)}, burst ${(o.burst / MiB).toFixed(0)} MiB, peak ${mibs(o.peak)}`,
          target: `peak ±${o.tolerance * 100}% for ${burstSeconds.toFixed(2)} s, then rate ±${o.tolerance * 100}%`,
          measured: `peak ${mibs(atPeak)} (${signed(peakError)}), ended at ${((end + 100) / 1000).toFixed(2)} s; base ${mibs(atBase)} (${signed(baseError)})`,
          pass,
          data: { ...o, burstSeconds, peakWindow, baseWindow, atPeak, atBase, peakError, baseError, peakEndedMs: end, series: series.filter((_, i) => i % 20 === 0) },
        };
      } finally {
        conns.close();
      }
    } finally {
      await proxy.stop();
    }
  });
}
