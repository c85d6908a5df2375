/**
 * Peak-EWMA (Finagle's and Linkerd's load metric): a decaying average of a target's latency that
 * jumps to any sample above it at once (a slow target is avoided from its first slow answer) and
 * takes lower samples in gradually. With no samples it decays toward zero, the probe value: a
 * target left alone because it was slow becomes the cheapest again after a while, gets one
 * connection, and that sample says whether it recovered. Time is the injected clock's.
 */

/** The time constant of the decay (ms): Finagle's and Linkerd's default. */
export const LATENCY_DECAY_MS = 10_000;

export class PeakEwma {
  /** ms, as it was at `#at` */
  #value = 0;
  #at = 0;
  /** samples taken so far */
  samples = 0;

  constructor(readonly decayMs = LATENCY_DECAY_MS) {}

  /** The estimate at clock time `now` (ms), decayed since the last sample. */
  at(now: number): number {
    if (this.#value === 0) return 0;
    const dt = now - this.#at;
    return dt > 0 ? this.#value * Math.exp(-dt / this.decayMs) : this.#value;
  }

  /** A sample of `ms` taken at clock time `now`. */
  observe(ms: number, now: number): void {
    const current = this.at(now);
    if (ms >= current) {
      this.#value = ms;
    } else {
      const dt = Math.max(0, now - this.#at);
      const w = Math.exp(-dt / this.decayMs);
      this.#value = current * w + ms * (1 - w);
    }
    this.#at = now;
    this.samples++;
  }
}
