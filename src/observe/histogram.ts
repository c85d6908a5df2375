import { createRequire } from 'node:module';
import type { Histogram } from 'hdr-histogram-js';

/**
 * hdr-histogram-js's JS histogram with 32-bit counts, loaded on its own (not the package's index,
 * which pulls in the WebAssembly build). Measured on this machine, per record / per p99 query / RSS
 * added by loading (20 histograms, 2 M records, three runs):
 *   WebAssembly, 32-bit   28-58 ns / 4-8 µs / 22.5 MB (and it needs initWebAssembly() and destroy());
 *   JS, 32-bit (this)    116-171 ns / 9-12 µs / 0.5 MB;
 *   JS, "packed"         649 ns / 13 ms (an earlier round).
 * Recording happens per connection event and per Foo message, never per chunk, so ~0.1 µs is nothing
 * next to the memory, which the 1000-connection shaping bench counts.
 */
const Int32Histogram = (createRequire(import.meta.url)('hdr-histogram-js/dist/Int32Histogram.js') as {
  default: new (lowest: number, highest: number, digits: number) => Histogram;
}).default;

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
const LOWEST = 1;
const HIGHEST = 3_600_000_000;
const DIGITS = 2;

/**
 * A latency histogram (hdr-histogram-js), recorded in microseconds and
 * reported in milliseconds. Recording is one array increment: no allocation.
 */
export class LatencyHistogram {
  readonly #h: Histogram;
  sum = 0;

  constructor() {
    this.#h = new Int32Histogram(LOWEST, HIGHEST, DIGITS);
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
