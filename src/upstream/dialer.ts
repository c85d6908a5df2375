import net from 'node:net';
import tls from 'node:tls';
import type { TargetTlsConfig } from '../config/types.js';
import { ProxyError, isProxyError } from '../errors.js';
import type { AppUpstream, CancelSignal } from './upstreams.js';

export type { CancelSignal };
import type { Target } from './target.js';
import type { PickContext } from './balancer.js';

export interface DialResult {
  socket: net.Socket;
  target: Target;
  /** targets tried, this one included */
  attempts: number;
  /** Targets tried before this one, with why each failed. */
  failures: { target: string; error: string }[];
  /** A connection dialed ahead (config `preconnect`): paused, it reads through 'data' (no `onread`); resume it once wired. */
  pooled: boolean;
}

export interface DialHooks {
  /** A target refused or timed out: passive health check. */
  onTargetFailed(target: Target, error: Error): void;
  /** The balancer chose `target` among `candidates` (only called when given: debug logs). */
  onPicked?: ((target: Target, candidates: readonly Target[]) => void) | undefined;
}

export interface DialOptions {
  /** Read straight into this buffer (net's onread; plain TCP only: TLS sockets ignore it). */
  onread?: net.OnReadOpts;
  /** Bytes written first, before TLS if any (a PROXY protocol header). */
  preamble?: Buffer;
  /** Speak TLS to the target; a failed handshake fails the dial like a refused connect. */
  tls?: TargetTlsConfig;
}

/**
 * One client context per `targetTls` object (a reload makes a new one): the system CAs plus `ca`.
 * Built once, not per dial: parsing the CA store costs milliseconds.
 */
const noop = (): void => {};
const contexts = new WeakMap<TargetTlsConfig, tls.SecureContext>();
function clientContext(config: TargetTlsConfig): tls.SecureContext {
  let context = contexts.get(config);
  if (!context) {
    context = tls.createSecureContext(config.ca ? { ca: [...tls.rootCertificates, config.ca.pem.toString('latin1')] } : {});
    contexts.set(config, context);
  }
  return context;
}

/** A CancelSignal with one listener at a time (a dial tries one target at a time). */
export class DialCancel implements CancelSignal {
  aborted = false;
  #listener: (() => void) | null = null;

  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listener = listener;
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = null;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listener = this.#listener;
    this.#listener = null;
    listener?.();
  }
}

/**
 * Connect to one target (and, with `tls`, finish the TLS handshake), giving up after `timeoutMs`
 * for both together.
 */
export function connectTarget(host: string, port: number, timeoutMs: number, signal?: CancelSignal, opts: DialOptions = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ ...(opts.onread && !opts.tls ? { onread: opts.onread } : {}), host, port, allowHalfOpen: true, noDelay: true, keepAlive: true });
    let socket: net.Socket = raw;
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      raw.off('connect', onConnect);
      raw.off('error', onError);
      socket.off('secureConnect', onSecure);
      socket.off('error', onTlsError);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        socket.destroy();
        raw.destroy();
        reject(err);
      } else {
        // The TLS socket reports what goes wrong underneath; the raw one must not throw unheard.
        if (socket !== raw) raw.on('error', noop);
        resolve(socket);
      }
    };
    const onSecure = () => done();
    const onTlsError = (err: NodeJS.ErrnoException) =>
      done(new ProxyError('SHAPER_ERR_TARGET_TLS', `TLS with ${host}:${port} failed: ${err.code ? `${err.code}: ` : ''}${err.message}`, { cause: err }));
    const onConnect = () => {
      if (opts.preamble) raw.write(opts.preamble);
      if (!opts.tls) return done();
      const t = opts.tls;
      socket = tls.connect({
        socket: raw,
        host,
        ...(t.servername ? { servername: t.servername } : {}),
        secureContext: clientContext(t),
        rejectUnauthorized: t.rejectUnauthorized,
      }); // allowHalfOpen, like the other settings of the raw socket, carries over
      socket.once('secureConnect', onSecure);
      socket.once('error', onTlsError);
    };
    const onError = (err: Error) => done(err);
    const onAbort = () => done(new Error('aborted: client went away'));
    raw.once('connect', onConnect);
    raw.once('error', onError);
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
 * Why a dial or a health check of a target failed, short: the error's code, and for a TLS failure
 * OpenSSL's reason too ("SHAPER_ERR_TARGET_TLS (CERT_HAS_EXPIRED)", "... (ERR_TLS_CERT_ALTNAME_INVALID)").
 */
export function failureText(err: Error): string {
  const e = err as NodeJS.ErrnoException;
  const cause = isProxyError(e, 'SHAPER_ERR_TARGET_TLS') ? (e.cause as NodeJS.ErrnoException | undefined)?.code : undefined;
  return cause ? `${e.code} (${cause})` : (e.code ?? e.message);
}

/**
 * Pick a target with the app's balancer and connect; when it fails, try the
 * next healthy target, then the unhealthy ones, until one accepts.
 */
export async function dial(
  app: AppUpstream,
  ctx: PickContext,
  hooks: DialHooks,
  signal?: CancelSignal,
  opts?: DialOptions,
): Promise<DialResult> {
  const failures: DialResult['failures'] = [];
  // Usually one target is tried: an array, not a Set.
  const tried: Target[] = [];
  for (;;) {
    if (signal?.aborted) throw new Error('aborted: client went away');
    let candidates = app.targets.filter((t) => t.healthy && !t.removed && !tried.includes(t));
    if (candidates.length === 0) candidates = app.targets.filter((t) => !t.removed && !tried.includes(t));
    if (candidates.length === 0) {
      const why = failures.map((f) => `${f.target}: ${f.error}`).join('; ') || 'the app has no targets';
      throw new ProxyError('SHAPER_ERR_NO_TARGET', `no target of app "${app.config.name}" accepted (${why})`);
    }
    const target = app.balancer.pick(candidates, ctx);
    hooks.onPicked?.(target, candidates);
    tried.push(target);
    const pooled = app.pool?.take(target);
    if (pooled) {
      // Written before any client byte; a target that greeted first already did (its greeting is kept for the client).
      if (opts?.preamble) pooled.write(opts.preamble);
      return { socket: pooled, target, failures, attempts: tried.length, pooled: true };
    }
    const startedAt = performance.now();
    target.dialing++;
    try {
      const socket = await connectTarget(target.host, target.port, app.config.connectTimeout, signal, opts);
      target.sample('connect', performance.now() - startedAt);
      return { socket, target, failures, attempts: tried.length, pooled: false };
    } catch (err) {
      if (signal?.aborted) throw err;
      const e = err as NodeJS.ErrnoException;
      // A failed dial is as slow as the slowest success allowed: a refusing target must not look fast.
      if (e.code !== 'EMFILE' && e.code !== 'ENFILE') target.sample('connect', app.config.connectTimeout);
      // Out of file descriptors is this process's problem, not the target's: no failover
      // (every dial would fail alike), and the target's health is left alone.
      if (e.code === 'EMFILE' || e.code === 'ENFILE') throw err;
      failures.push({ target: target.address, error: failureText(e) });
      hooks.onTargetFailed(target, e);
    } finally {
      target.dialing--;
    }
  }
}
