import { realClock, type Clock } from '../clock.js';
import type { TargetConfig } from '../config/types.js';
import { PeakEwma } from './latency.js';

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
