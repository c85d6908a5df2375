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

  constructor(cfg: Pick<TargetConfig, 'address' | 'host' | 'port'>) {
    this.address = cfg.address;
    this.host = cfg.host;
    this.port = cfg.port;
  }

  get healthy(): boolean {
    return this.health === 'healthy';
  }
}
