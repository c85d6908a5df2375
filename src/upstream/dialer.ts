import net from 'node:net';
import { ProxyError } from '../errors.js';
import type { AppUpstream } from './upstreams.js';
import type { Target } from './target.js';
import type { PickContext } from './balancer.js';

export interface DialResult {
  socket: net.Socket;
  target: Target;
  /** Targets tried before this one, with why each failed. */
  failures: { target: string; error: string }[];
}

export interface DialHooks {
  /** A target refused or timed out: passive health check. */
  onTargetFailed(target: Target, error: Error): void;
}

/** Connect to one target, giving up after `timeoutMs`. */
export function connectTarget(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
  extra?: Partial<net.TcpNetConnectOpts>,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...extra, host, port, allowHalfOpen: true, noDelay: true, keepAlive: true });
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onConnect = () => done();
    const onError = (err: Error) => done(err);
    const onAbort = () => done(new Error('aborted: client went away'));
    socket.once('connect', onConnect);
    socket.once('error', onError);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => done(new ProxyError('SHAPER_ERR_CONNECT_TIMEOUT', `no answer from ${host}:${port} within ${timeoutMs}ms`)),
        timeoutMs,
      );
    }
  });
}

/**
 * Pick a target with the app's balancer and connect; when it fails, try the
 * next healthy target, then the unhealthy ones, until one accepts.
 */
export async function dial(
  app: AppUpstream,
  ctx: PickContext,
  hooks: DialHooks,
  signal?: AbortSignal,
  extra?: Partial<net.TcpNetConnectOpts>,
): Promise<DialResult> {
  const failures: DialResult['failures'] = [];
  const tried = new Set<Target>();
  for (;;) {
    if (signal?.aborted) throw new Error('aborted: client went away');
    let candidates = app.targets.filter((t) => !tried.has(t) && t.healthy && !t.removed);
    if (candidates.length === 0) candidates = app.targets.filter((t) => !tried.has(t) && !t.removed);
    if (candidates.length === 0) {
      const why = failures.map((f) => `${f.target}: ${f.error}`).join('; ') || 'the app has no targets';
      throw new ProxyError('SHAPER_ERR_NO_TARGET', `no target of app "${app.config.name}" accepted (${why})`);
    }
    const target = app.balancer.pick(candidates, ctx);
    tried.add(target);
    try {
      const socket = await connectTarget(target.host, target.port, app.config.connectTimeout, signal, extra);
      return { socket, target, failures };
    } catch (err) {
      if (signal?.aborted) throw err;
      const e = err as NodeJS.ErrnoException;
      // Out of file descriptors is this process's problem, not the target's: no failover
      // (every dial would fail alike), and the target's health is left alone.
      if (e.code === 'EMFILE' || e.code === 'ENFILE') throw err;
      failures.push({ target: target.address, error: e.code ?? e.message });
      hooks.onTargetFailed(target, e);
    }
  }
}
