/**
 * What keeps an app's targets ready besides health checks: connections dialed ahead
 * (src/upstream/preconnect.ts) and wake-on-connect / sleep (src/upstream/wake.ts), applied and
 * stopped together.
 */
import type { Clock } from '../clock.js';
import type { AppConfig } from '../config/types.js';
import type { Housekeeping } from '../housekeeping.js';
import type { Logger } from '../log.js';
import { Preconnector } from './preconnect.js';
import type { Upstreams } from './upstreams.js';
import { Wakers } from './wake.js';

export class Standby {
  readonly preconnect: Preconnector;
  readonly wakers: Wakers;

  constructor(upstreams: Upstreams, housekeeping: Housekeeping, clock: Clock, log: Logger) {
    this.preconnect = new Preconnector(upstreams, housekeeping, clock);
    this.wakers = new Wakers(upstreams, housekeeping, clock, log);
  }

  /** After the upstreams took the config. */
  apply(apps: readonly AppConfig[]): void {
    this.preconnect.apply(apps);
    this.wakers.apply(apps);
  }

  stop(): void {
    this.preconnect.stop();
    this.wakers.stop();
  }
}
