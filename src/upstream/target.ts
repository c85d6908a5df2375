import { realClock, type Clock } from '../clock.js';
import type { TargetConfig } from '../config/types.js';

export type Health = 'healthy' | 'unhealthy';

/**
 * One backend address. The object lives across reloads while its address stays
 * in the config, so active counts and health survive a reload; apps that list
 * the same address share it. Its weight is the app's (AppUpstream.weightOf).
 */
export class Target {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Connections currently proxied to this target. */
  active = 0;
  /** Connections ever proxied to this target. */
  total = 0;
  health: Health = 'healthy';
  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  lastError: string | undefined;
  lastCheck: number | undefined;
  /** Set when the target left the config; balancers skip it. */
  removed = false;
  /** Dials of client connections to it in flight. */
  dialing = 0;
  /** ms to connect (and, with targetTls, to finish the handshake), as a peak-EWMA on the proxy's clock */
  readonly connectTime = new PeakEwma();
  /** ms from the client's first byte (or the connect) to the target's first byte, on least-time apps */
  readonly firstByteTime = new PeakEwma();

  /** `clock`: the proxy's; the latency estimates decay on it. */
  constructor(
    cfg: Pick<TargetConfig, 'address' | 'host' | 'port'>,
    readonly clock: Clock = realClock,
  ) {
    this.address = cfg.address;
    this.host = cfg.host;
    this.port = cfg.port;
  }

  get healthy(): boolean {
    return this.health === 'healthy';
  }

  /** A sample of this target's latency: `connect` ms (a failed dial counts as connectTimeout), or ms to its `firstByte`. */
  sample(kind: 'connect' | 'firstByte', ms: number): void {
    (kind === 'connect' ? this.connectTime : this.firstByteTime).observe(ms, this.clock.now());
  }

  /** The estimates now, ms to a hundredth (/status): connect, and first byte (0: no sample, or decayed away). */
  latencyView(now = this.clock.now()): { connectMs: number; firstByteMs: number } {
    const r = (ms: number): number => Math.round(ms * 100) / 100;
    return { connectMs: r(this.connectTime.at(now)), firstByteMs: r(this.firstByteTime.at(now)) };
  }

  /** The latency estimate now (ms): connect plus first byte (least-time's cost before load and weight). */
  latency(now = this.clock.now()): number {
    return this.connectTime.at(now) + this.firstByteTime.at(now);
  }
}

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
