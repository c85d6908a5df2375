import type { HealthConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { connectTarget } from './dialer.js';
import type { Target } from './target.js';
import type { Upstreams } from './upstreams.js';

/**
 * Active TCP-connect health checks: one timer for all targets. A target turns
 * unhealthy after `unhealthyAfter` failed checks in a row (or at once when a
 * real connection to it fails: the passive check), and healthy again after
 * `healthyAfter` successes. Host names are resolved anew by every check.
 *
 * With `targetTls` too the check is a TCP connect, no handshake: a target's TLS is checked by the
 * real dials, where a failed handshake marks it down at once and fails over (a handshake per
 * target per interval would cost both sides a key exchange, and a target is shared by apps
 * whose TLS settings may differ).
 */
export class HealthChecker {
  #timer: NodeJS.Timeout | undefined;
  #inFlight = new Set<Target>();
  #aborter = new AbortController();

  constructor(
    private readonly upstreams: Upstreams,
    private config: HealthConfig,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stop();
    this.#aborter = new AbortController();
    this.checkAll();
    this.#timer = setInterval(() => this.checkAll(), this.config.interval);
    this.#timer.unref();
  }

  configure(config: HealthConfig): void {
    const restart = config.interval !== this.config.interval && this.#timer !== undefined;
    this.config = config;
    if (restart) this.start();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#aborter.abort();
  }

  checkAll(): void {
    for (const t of this.upstreams.byAddress.values()) void this.check(t);
  }

  async check(t: Target): Promise<void> {
    if (this.#inFlight.has(t)) return;
    this.#inFlight.add(t);
    try {
      const socket = await connectTarget(t.host, t.port, this.config.timeout, this.#aborter.signal);
      socket.destroy();
      this.recordSuccess(t);
    } catch (err) {
      // Out of descriptors says nothing about the target.
      const code = (err as NodeJS.ErrnoException).code;
      if (!this.#aborter.signal.aborted && code !== 'EMFILE' && code !== 'ENFILE') this.recordFailure(t, err as Error, false);
    } finally {
      this.#inFlight.delete(t);
      t.lastCheck = Date.now();
    }
  }

  recordSuccess(t: Target): void {
    t.consecutiveFailures = 0;
    t.consecutiveSuccesses++;
    if (!t.healthy && t.consecutiveSuccesses >= this.config.healthyAfter) {
      t.health = 'healthy';
      t.lastError = undefined;
      this.log.info({ target: t.address }, 'target healthy');
    }
  }

  /** `passive`: a real connection failed, which marks the target down at once. */
  recordFailure(t: Target, err: Error, passive: boolean): void {
    t.consecutiveSuccesses = 0;
    t.consecutiveFailures++;
    t.lastError = (err as NodeJS.ErrnoException).code ?? err.message;
    if (t.healthy && (passive || t.consecutiveFailures >= this.config.unhealthyAfter)) {
      t.health = 'unhealthy';
      this.log.warn({ target: t.address, error: t.lastError, passive }, 'target unhealthy');
    }
  }
}
