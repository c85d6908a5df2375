import * as hdr from 'hdr-histogram-js';

/** What a latency histogram reports, in milliseconds. */
export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * Microseconds from 1 µs to one hour, 2 significant digits (1 % resolution):
 * about 13 KB of counts per histogram instead of ~94 KB with 3 digits.
 */
const SETTINGS = { lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 } as const;
const HIGHEST = SETTINGS.highestTrackableValue;

let wasm = false;

/**
 * Switch to the WebAssembly build (call once at start). Measured on this
 * machine, per record / per percentile query: WebAssembly 32-bit buckets
 * 49 ns / 15 µs; JS 32-bit 154 ns / 52 µs; JS packed 649 ns / 13 ms.
 */
export async function useWebAssemblyHistograms(): Promise<void> {
  if (wasm) return;
  await hdr.initWebAssembly();
  wasm = true;
}

/**
 * A latency histogram (hdr-histogram-js), recorded in microseconds and
 * reported in milliseconds. Recording is one array increment: no allocation.
 * destroy() frees it (WebAssembly memory is not garbage collected).
 */
export class LatencyHistogram {
  readonly #h: hdr.Histogram;
  sum = 0;

  constructor() {
    this.#h = hdr.build({ ...SETTINGS, bitBucketSize: 32, useWebAssembly: wasm });
  }

  record(ms: number): void {
    if (!(ms >= 0)) return;
    const us = Math.round(ms * 1000);
    this.#h.recordValue(us < 1 ? 1 : us > HIGHEST ? HIGHEST : us);
    this.sum += ms;
  }

  get count(): number {
    return this.#h.totalCount;
  }

  /** Percentile in ms (p in 0..100); capped at the max, as hdr answers with the top of the value's bucket. */
  at(p: number): number {
    return this.#h.totalCount === 0 ? 0 : Math.min(this.#h.getValueAtPercentile(p), this.#h.maxValue) / 1000;
  }

  summary(): Summary {
    const h = this.#h;
    const r = (x: number) => Math.round(x * 1000) / 1000;
    if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    return {
      count: h.totalCount,
      mean: r(this.sum / h.totalCount),
      p50: r(this.at(50)),
      p90: r(this.at(90)),
      p99: r(this.at(99)),
      p999: r(this.at(99.9)),
      max: r(h.maxValue / 1000),
    };
  }

  /** Add another histogram's values (for totals over apps or tiers). */
  add(other: LatencyHistogram): void {
    this.#h.add(other.#h);
    this.sum += other.sum;
  }

  destroy(): void {
    this.#h.destroy();
  }
}
