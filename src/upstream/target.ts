import type { TargetConfig } from '../config/types.js';

export type Health = 'healthy' | 'unhealthy';

/**
 * One backend of an app. The object lives across reloads while its address
 * stays in the config, so active counts and health survive a reload.
 */
export class Target {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  weight: number;
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

  constructor(cfg: TargetConfig) {
    this.address = cfg.address;
    this.host = cfg.host;
    this.port = cfg.port;
    this.weight = cfg.weight;
  }

  get healthy(): boolean {
    return this.health === 'healthy';
  }
}
