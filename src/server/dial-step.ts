/**
 * A connection's dial: the dialer (balancer, failover, a connection dialed ahead), and on an app
 * with `wake`, when no target accepts, the wait for the app to wake (src/upstream/wake.ts) and one
 * more dial. What goes wrong comes back as the close reason and its error.
 */
import { isProxyError, ProxyError } from '../errors.js';
import type { PickContext } from '../upstream/balancer.js';
import { dial, type DialCancel, type DialHooks, type DialOptions, type DialResult } from '../upstream/dialer.js';
import type { AppUpstream } from '../upstream/upstreams.js';
import type { CloseReason } from './stages.js';

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
