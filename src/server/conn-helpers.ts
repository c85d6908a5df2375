/** Small helpers of connection.ts, and its dial (dialOrWake). */
import { isProxyError, ProxyError } from '../errors.js';
import type { PickContext } from '../upstream/balancer.js';
import { dial, type DialCancel, type DialHooks, type DialOptions, type DialResult } from '../upstream/dialer.js';
import type { AppUpstream } from '../upstream/upstreams.js';
import type { CloseReason } from './stages.js';

/**
 * A write found the peer gone after it closed in order: EPIPE is what Linux reports when a reset
 * comes from a peer that had sent its FIN first (CLOSE_WAIT), that is one that closed its socket
 * and then refused the bytes still on their way to it (a download the user stopped). That is an
 * ordinary close, not an error; a reset without a FIN first is ECONNRESET, and stays an error.
 */
export function hungUp(err: Error): boolean {
  return (err as NodeJS.ErrnoException).code === 'EPIPE';
}

export const noop = (): void => {};

/** ms to a hundredth, for the log line. */
export const round = (ms: number): number => Math.round(ms * 100) / 100;

/** "::ffff:1.2.3.4" -> "1.2.3.4", so IPv4 clients look the same on any socket. */
export function normaliseAddress(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/**
 * The first-byte hooks of a connection once its target accepted at `connectedAt`
 * (performance.now()): `measure` gets the ms to the target's first byte (the latency histogram),
 * `sample` least-time's sample: the ms from the client's first byte (or the accept, when the
 * target speaks first) to the target's first byte, the time the target took to answer.
 */
export function firstByteHooks(
  connectedAt: number,
  measure: ((ms: number) => void) | null,
  sample: ((ms: number) => void) | null,
): { up: (() => void) | null; down: (() => void) | null } {
  if (!measure && !sample) return { up: null, down: null };
  let upAt = -1;
  return {
    up: sample
      ? () => {
          if (upAt < 0) upAt = performance.now();
        }
      : null,
    down: () => {
      const now = performance.now();
      measure?.(now - connectedAt);
      sample?.(now - Math.max(connectedAt, upAt));
    },
  };
}

/**
 * A connection's dial: the dialer (balancer, failover, a connection dialed ahead), and on an app
 * with `wake`, when no target accepts, the wait for the app to wake (src/upstream/wake.ts) and one
 * more dial. What goes wrong comes back as the close reason and its error.
 */
export type DialOutcome = { result: DialResult } | { reason: CloseReason; error: Error };

export async function dialOrWake(app: AppUpstream, ctx: PickContext, hooks: DialHooks, cancel: DialCancel, opts: DialOptions): Promise<DialOutcome> {
  let held = false;
  for (;;) {
    try {
      return { result: await dial(app, ctx, hooks, cancel, opts) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (!cancel.aborted && !held && app.wake && isProxyError(e, 'SHAPER_ERR_NO_TARGET')) {
        // Held once: a target accepted a probe, so dial again; the next failure closes the client.
        held = true;
        const woke = await app.wake.hold(cancel);
        if (woke === 'up') continue;
        if (woke === 'timeout') {
          const within = app.config.wake ? ` within wake.timeout (${app.config.wake.timeout}ms)` : '';
          return { reason: 'wake_timeout', error: new ProxyError('SHAPER_ERR_WAKE_TIMEOUT', `no target of app "${app.config.name}" accepted${within}`) };
        }
      }
      return { reason: e.code === 'EMFILE' || e.code === 'ENFILE' ? 'resource_exhausted' : 'no_target', error: e };
    }
  }
}
