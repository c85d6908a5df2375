import type { HealthConfig } from '../config/types.js';
import type { Chore, Housekeeping } from '../housekeeping.js';
import { encodeProxyHeader } from '../identify/proxy-protocol.js';
import type { Logger } from '../log.js';
import { connectTarget, failureText, type DialOptions } from './dialer.js';
import type { Target } from './target.js';
import type { Upstreams } from './upstreams.js';

/** What one check of a target does: a TCP connect, or with `tls` a TLS handshake after it. */
type Probe = Pick<DialOptions, 'tls' | 'preamble'>;
const TCP_CONNECT: Probe[] = [{}];
/** The address of a PROXY header that names none: v1 "UNKNOWN", v2 "LOCAL" (what balancers' own checks send). */
const NO_ADDRESS = { address: '', port: 0 };

/**
 * Active health checks: one housekeeping chore for all targets (the proxy's one timer, on the
 * injected clock). A target turns unhealthy after `unhealthyAfter`
 * failed checks in a row (or at once when a real connection to it fails: the passive check), and
 * healthy again after `healthyAfter` successes. Host names are resolved anew by every check.
 *
 * A check is a TCP connect; for a target of an app with `targetTls` it is a TLS handshake with
 * that app's settings (CA, servername, rejectUnauthorized), as real connections make it, so a
 * certificate that fails marks the target down before clients meet it, and a target is put back
 * only once its TLS works again. An app that sends PROXY headers sends its targets one naming no
 * address before the handshake (such a target reads a header first). A target shared by apps with
 * different TLS settings is checked with each, and one failure is a failed check.
 */
export class HealthChecker {
  readonly #chore: Chore;
  #running = false;
  #inFlight = new Set<Target>();
  #aborter = new AbortController();

  constructor(
    private readonly upstreams: Upstreams,
    private config: HealthConfig,
    private readonly log: Logger,
    housekeeping: Housekeeping,
  ) {
    this.#chore = housekeeping.add('health checks', 0, () => this.checkAll());
  }

  /** A round of checks now, then one every `interval`. */
  start(): void {
    this.#aborter.abort();
    this.#aborter = new AbortController();
    this.#running = true;
    this.checkAll();
    this.#chore.every(this.config.interval);
  }

  configure(config: HealthConfig): void {
    const restart = config.interval !== this.config.interval && this.#running;
    this.config = config;
    if (restart) this.#chore.every(config.interval);
  }

  stop(): void {
    this.#running = false;
    this.#chore.every(0);
    this.#aborter.abort();
  }

  checkAll(): void {
    const probes = this.#probes();
    for (const t of this.upstreams.byAddress.values()) void this.check(t, probes.get(t) ?? TCP_CONNECT);
  }

  /** The TLS probes of every target of an app with `targetTls`, one per distinct setting; others: none. */
  #probes(): Map<Target, Probe[]> {
    const byTarget = new Map<Target, Map<string, Probe>>();
    for (const app of this.upstreams.apps.values()) {
      const { targetTls: tls, sendProxyProtocol: send } = app.config;
      if (!tls) continue;
      const probe: Probe = { tls, ...(send ? { preamble: encodeProxyHeader(send, NO_ADDRESS, NO_ADDRESS) } : {}) };
      const key = `${JSON.stringify(tls)} ${send ?? ''}`;
      for (const t of app.targets) {
        const probes = byTarget.get(t) ?? new Map<string, Probe>();
        if (!probes.has(key)) probes.set(key, probe);
        byTarget.set(t, probes);
      }
    }
    return new Map([...byTarget].map(([t, probes]) => [t, [...probes.values()]]));
  }

  async check(t: Target, probes: Probe[] = this.#probes().get(t) ?? TCP_CONNECT): Promise<void> {
    if (this.#inFlight.has(t)) return;
    this.#inFlight.add(t);
    try {
      for (const probe of probes) {
        const socket = await connectTarget(t.host, t.port, this.config.timeout, this.#aborter.signal, probe);
        if (!probe.tls) {
          socket.destroy();
          continue;
        }
        // close_notify and FIN, so the target sees a clean close (the session tickets it sent are
        // unread: a destroy now would reset); destroyed if it does not close in turn.
        socket.on('error', () => {});
        socket.setTimeout(this.config.timeout, () => socket.destroy());
        socket.end();
      }
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
    t.lastError = failureText(err);
    if (t.healthy && (passive || t.consecutiveFailures >= this.config.unhealthyAfter)) {
      t.health = 'unhealthy';
      this.log.warn({ target: t.address, error: t.lastError, reason: err.message, passive }, 'target unhealthy');
    }
  }
}
