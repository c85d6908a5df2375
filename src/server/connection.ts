import { Socket } from 'node:net';
import { publish, type ConnectionInfo, type ConnectionSummary } from '../channels.js';
import type { AppUpstream } from '../upstream/upstreams.js';
import type { Target } from '../upstream/target.js';
import { DialCancel } from '../upstream/dialer.js';
import { refusalError, type ShapedConnection } from '../shaping/shaper.js';
import { encodeProxyHeader, type Endpoint } from '../identify/proxy-protocol.js';
import { readPreamble } from './preamble.js';
import { wire } from './pipeline.js';
import { explainMatch, explainPick } from './explain.js';
import { goesNative, NativeLink } from './native-path.js';
import type { CloseReason, Stages } from './stages.js';
import { dialOrWake, firstByteHooks, hungUp, noop, normaliseAddress, round } from './conn-helpers.js';
import type { ConnectionDeps, ShapingPort } from './connection-deps.js';

export { normaliseAddress };

export { PROXY_HEADER_TIMEOUT_MS, SNI_PREREAD_TIMEOUT_MS } from './preamble.js';
export type { Analyzer, CloseReason, Direction, Stage, Stages } from './stages.js';

export type { ConnectionSummary };

export type { ConnectionDeps, ShapingPort } from './connection-deps.js';

let nextId = 1;

const kConn = Symbol('shaper.connection');
/** Stands in for the sockets a connection handed to the native relay (it holds their descriptors): the destroyed objects can go. */
const HANDED_OVER = new Socket().destroy();
/** A client or backend socket with its connection attached. */
type Owned = Socket & { [kConn]?: Connection };

/**
 * Owns the client socket, the backend socket and the stages between them.
 * Everything that ends a connection goes through close(), which runs once and
 * gives back everything the connection took: its source's slot, its customer's
 * admission, its target's count, its place among the open connections.
 */
export class Connection implements ConnectionInfo {
  readonly id = nextId++;
  readonly startedAt = Date.now();
  /**
   * The client as the rest of the proxy sees it: the accepted socket, or on a `tls` app the TLS
   * socket over it once the handshake is done (so bytes and shaping are the plaintext's).
   */
  client: Socket;
  /** The TLS server name the client sent (SNI), on `tls` and `sniPreread` apps. */
  serverName: string | undefined;
  /** The subject of the client's verified certificate, on `tls` apps with `clientAuth`. */
  clientCert: string | undefined;
  /** The client: the socket's peer, or the one a PROXY protocol header names (set before admission). */
  clientAddress: string;
  clientPort: number;
  readonly localPort: number;
  backend: Socket | undefined;
  target: Target | undefined;
  stages: Stages | undefined;
  /** The shaping side (customer, tier, admission), when the connection is shaped. */
  shaped: ShapedConnection | null = null;
  closed = false;
  /** Aborts the dial when the connection closes first; dropped once the dial is done. */
  #aborter: DialCancel | undefined = new DialCancel();
  #clientClosed = false;
  #backendClosed = false;
  #reason: CloseReason = 'done';
  #error: string | undefined;
  /** targets the dial tried */
  #attempts = 0;
  /** On the native data plane: its relay and the counts carried on from the sockets. */
  #native: NativeLink | null = null;
  /** ms to connect to the target (failovers included), and from its accept to its first byte */
  #connectMs: number | undefined;
  #firstByteMs: number | undefined;
  /** The address the client connected to, as a PROXY header gave it. */
  #proxiedDestination: Endpoint | undefined;

  /** The client socket's own peer address, as accepted (before any PROXY header). */
  readonly peerAddress: string | undefined;
  /** The accepted socket (differs from `client` once TLS is terminated). */
  #raw: Socket;
  /** While the TLS handshake runs, its outcome decides the close reason. */
  #handshaking = false;

  // The sockets' listeners are shared by all connections (no closures per connection); a socket
  // finds its connection through one property.
  static #own(socket: Socket, conn: Connection): void {
    (socket as Owned)[kConn] = conn;
  }
  static #onClientError(this: Owned, err: Error): void {
    if (hungUp(err)) this[kConn]!.close('client_closed');
    else this[kConn]!.close('client_error', err);
  }
  static #onClientClose(this: Owned): void {
    const conn = this[kConn]!;
    conn.#clientClosed = true;
    if (conn.#handshaking) return;
    if (!conn.backend) conn.close('client_gone');
    else conn.#maybeDone();
  }
  static #onBackendError(this: Owned, err: Error): void {
    if (hungUp(err)) this[kConn]!.close('backend_closed');
    else this[kConn]!.close('backend_error', err);
  }
  static #onBackendClose(this: Owned): void {
    const conn = this[kConn]!;
    conn.#backendClosed = true;
    conn.#maybeDone();
  }

  constructor(
    client: Socket,
    readonly app: AppUpstream,
    private readonly deps: ConnectionDeps,
  ) {
    this.client = client;
    this.#raw = client;
    this.peerAddress = client.remoteAddress;
    this.clientAddress = normaliseAddress(client.remoteAddress ?? '');
    this.clientPort = client.remotePort ?? 0;
    this.localPort = client.localPort ?? 0;
    Connection.#own(client, this);
    app.open++;
    app.opened++;
    client.on('error', Connection.#onClientError);
    client.on('close', Connection.#onClientClose);
  }

  /** client bytes read + written at the last idle sweep, and since when (clock time) that count stands; -1: not swept yet */
  #idleMark = 0;
  #idleSince = -1;

  /**
   * The proxy's idle sweep (one timer for all connections, instead of a timer per socket):
   * closes the connection once the client has neither sent nor been sent a byte for the app's
   * idleTimeout. With TLS terminated, `client` is the TLS socket from the handshake on.
   */
  sweepIdle(now: number): void {
    const timeout = this.app.config.idleTimeout;
    if (timeout <= 0 || this.closed) return;
    const mark = this.bytesUp + this.bytesDown;
    if (mark !== this.#idleMark || this.#idleSince < 0) {
      this.#idleMark = mark;
      this.#idleSince = now;
    } else if (now - this.#idleSince >= timeout) this.close('idle_timeout');
  }

  get appName(): string {
    return this.app.config.name;
  }

  get tier(): string | undefined {
    return this.shaped?.customer.tier;
  }

  get customer(): string | undefined {
    return this.shaped?.customer.id;
  }

  async start(): Promise<void> {
    publish('open', { owner: this.deps.owner, conn: this });
    if (!(await this.#preamble())) return;
    const shaping = this.deps.shaping;
    if (shaping && !(await this.#admit(shaping))) return;
    publish('identified', { owner: this.deps.owner, conn: this });
    const native = goesNative(this.deps.native, this.app.config, this.app.config.protocol === 'foo' && this.deps.analyzer !== undefined);
    // A TLS socket takes no onread: its down flow reads through 'data' (TLS allocates per read anyway).
    const read = this.shaped && !native && !this.app.config.targetTls ? shaping!.backendRead() : undefined;
    const dialStart = performance.now();
    const send = this.app.config.sendProxyProtocol;
    const preamble = send ? encodeProxyHeader(send, { address: this.clientAddress, port: this.clientPort }, this.#localEndpoint()) : undefined;
    const dialed = await dialOrWake(this.app, { clientAddress: this.clientAddress }, this, this.#aborter!, {
      ...(read ? { onread: read.onread } : {}),
      // Written by the dialer before TLS and before any client byte (natively: by the relay, first).
      ...(preamble && !native ? { preamble } : {}),
      ...(this.app.config.targetTls ? { tls: this.app.config.targetTls } : {}),
    });
    this.#aborter = undefined;
    if (!('result' in dialed)) return this.close(this.closed ? this.#reason : dialed.reason, dialed.error);
    const result = dialed.result;
    if (this.closed) {
      result.socket.destroy();
      return;
    }
    const backend = result.socket;
    const connectedAt = performance.now();
    this.#connectMs = connectedAt - dialStart;
    this.backend = backend;
    const target = (this.target = result.target);
    publish('connected', { owner: this.deps.owner, conn: this, ms: this.#connectMs });
    target.active++;
    target.total++;
    Connection.#own(backend, this);
    backend.on('error', Connection.#onBackendError).on('close', Connection.#onBackendClose);
    const sample = this.app.config.balance === 'least-time' ? (ms: number) => target.sample('firstByte', ms) : null;
    const firstBytes = firstByteHooks(connectedAt, this.deps.measureFirstByte ? (ms) => this.#firstByte(ms) : null, sample);
    if (native && this.#goNative(backend, preamble, firstBytes)) return;
    try {
      if (this.shaped) this.stages = shaping!.stages(this.shaped, `conn:${this.id}`);
    } catch (err) {
      this.close('stage_error', err as Error);
      return;
    }
    // A connection dialed ahead was made without `onread`: it reads through 'data', from where it was paused.
    wire(this.client, backend, this.stages, result.pooled ? undefined : read, {
      firstByte: firstBytes.down,
      upFirstByte: firstBytes.up,
      analyzer: this.deps.analyzer?.(this) ?? null,
    });
    this.client.resume();
    if (result.pooled) backend.resume();
  }

  /**
   * Match the customer and run its admission limits; false when the connection was closed
   * instead (refused, or the client left meanwhile): nothing was dialed.
   */
  async #admit(shaping: ShapingPort): Promise<boolean> {
    const verdict = await shaping.admit({
      clientAddress: this.clientAddress,
      app: this.appName,
      port: this.localPort,
      ...(this.backend ? { dataPlane: this.dataPlane } : {}),
      ...(this.serverName !== undefined ? { sni: this.serverName } : {}),
      ...(this.clientCert !== undefined ? { clientCert: this.clientCert } : {}),
    }, this);
    if (this.closed) {
      // The client left while admission was pending: give the slot back at once.
      if (verdict && typeof verdict !== 'string') shaping.release(verdict);
      return false;
    }
    if (this.deps.log.isLevelEnabled('debug')) explainMatch(this.deps.log, this, shaping, verdict);
    if (typeof verdict === 'string') {
      this.close(verdict, refusalError(verdict));
      return false;
    }
    this.shaped = verdict;
    return true;
  }

  /**
   * Hands both sockets to the native relay (what their streams already read goes with them).
   * False when the engine refused them: the connection goes on on the JavaScript data plane.
   */
  #goNative(backend: Socket, preamble: Buffer | undefined, firstBytes: ReturnType<typeof firstByteHooks>): boolean {
    const client = this.client;
    // The sockets are destroyed by the hand-over (nothing is sent): their events are no longer ours.
    for (const s of [client, backend]) s.removeAllListeners('close').removeAllListeners('error').on('error', noop);
    const link = NativeLink.open(this.deps.native!, client, backend, preamble, this.shaped ? { sc: this.shaped, shaping: this.deps.shaping!, label: `conn:${this.id}` } : null, {
      done: (reason, err) => this.close(reason, err),
      firstBytes,
    });
    if (link instanceof Error) {
      this.deps.log.warn({ id: this.id, app: this.appName, error: link.message }, 'native data plane refused the connection; it stays on the JavaScript one');
      client.on('error', Connection.#onClientError).on('close', Connection.#onClientClose);
      backend.on('error', Connection.#onBackendError).on('close', Connection.#onBackendClose);
      return false;
    }
    this.#native = link;
    this.client = this.#raw = this.backend = HANDED_OVER; // about 2 KB of heap each, 1,000s of connections
    return true;
  }

  #firstByte(ms: number): void {
    this.#firstByteMs = ms;
    publish('firstByte', { owner: this.deps.owner, conn: this, ms });
  }

  /** The dialer's hook: the balancer chose `target` (explained at debug level). */
  onPicked(target: Target, candidates: readonly Target[]): void {
    this.#attempts++;
    publish('dialing', { owner: this.deps.owner, conn: this, target: target.address });
    if (this.deps.log.isLevelEnabled('debug')) explainPick(this.deps.log, this, target, candidates, this.#attempts);
  }

  /** The dialer's hook: a target refused, timed out or failed its TLS handshake; the dial goes on. */
  onTargetFailed(target: Target, error: Error): void {
    publish('targetFailed', { owner: this.deps.owner, conn: this, app: this.appName, target: target.address, error });
    this.deps.health.recordFailure(target, error, true);
  }

  /**
   * The PROXY header, the TLS handshake or the server name, before anything is dialed (see
   * readPreamble); from a TLS handshake on, `client` is the TLS socket. False when the connection
   * was closed instead: a bad or missing header, a header's client that apps[].allow / deny refuse,
   * a failed handshake, a client gone.
   */
  async #preamble(): Promise<boolean> {
    const pre = await readPreamble(this.#raw, this.app.config, this.deps.tlsFor(this.appName), this.deps.proxyHeaderTimeoutMs, (on) => (this.#handshaking = on), (address) => this.deps.denied(this.appName, address));
    if (!pre.ok) {
      this.close(pre.reason, pre.error);
      return false;
    }
    if (pre.client !== this.#raw) {
      if (this.closed || this.#clientClosed) {
        pre.client.destroy();
        this.close('client_gone');
        return false;
      }
      this.client = pre.client;
      Connection.#own(pre.client, this);
      pre.client.on('error', Connection.#onClientError).on('close', Connection.#onClientClose);
    }
    if (pre.source) {
      this.clientAddress = pre.source.address;
      this.clientPort = pre.source.port;
      this.#proxiedDestination = pre.destination;
    }
    this.serverName = pre.serverName;
    this.clientCert = pre.clientCert;
    return !this.closed;
  }

  /** Where the client connected to: the PROXY header's destination, else this proxy's address. */
  #localEndpoint(): Endpoint {
    return this.#proxiedDestination ?? { address: normaliseAddress(this.client.localAddress ?? ''), port: this.localPort };
  }

  #maybeDone(): void {
    if (this.#clientClosed && this.#backendClosed) this.close('done');
  }

  /** The one way a connection ends, once: everything it took is given back here. */
  close(reason: CloseReason, err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.#reason = reason;
    if (err) this.#error = (err as NodeJS.ErrnoException).code ?? err.message;
    this.#aborter?.abort();
    this.client.destroy();
    if (this.client !== this.#raw) this.#raw.destroy();
    this.backend?.destroy();
    this.stages?.up?.destroy();
    this.stages?.down?.destroy();
    this.#native?.close();
    if (this.target) this.target.active--;
    this.app.open--;
    if (this.shaped) this.deps.shaping?.release(this.shaped);
    this.deps.limits.release(this.peerAddress);
    this.deps.registry.delete(this);
    if (this.#error === 'EMFILE' || this.#error === 'ENFILE') this.deps.exhausted(this.#error, this.appName);
    publish('close', { owner: this.deps.owner, conn: this, summary: this.summary() });
  }

  /** Bytes the client sent that reached the proxy, and bytes written back to it (plaintext under TLS). */
  get bytesUp(): number {
    return this.#native ? this.#native.bytesUp : this.client.bytesRead;
  }

  get bytesDown(): number {
    return this.#native ? this.#native.bytesDown : this.client.bytesWritten;
  }

  /** Which data plane moves this connection's bytes. */
  get dataPlane(): 'native' | 'js' {
    return this.#native ? 'native' : 'js';
  }

  /** ms this connection's bytes waited in its shaping stages, both ways (undefined: unshaped). */
  get shaperWaitMs(): number | undefined {
    if (this.#native) return this.#native.waitedMs;
    if (!this.stages) return undefined;
    return (this.stages.up?.waitedMs ?? 0) + (this.stages.down?.waitedMs ?? 0);
  }

  summary(): ConnectionSummary {
    return {
      id: this.id,
      app: this.appName,
      ...(this.shaped ? { customer: this.shaped.customer.id, tier: this.shaped.customer.tier } : {}),
      ...(this.serverName !== undefined ? { sni: this.serverName } : {}),
      ...(this.clientCert !== undefined ? { clientCert: this.clientCert } : {}),
      client: `${this.clientAddress}:${this.clientPort}`,
      target: this.target?.address,
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      durationMs: Date.now() - this.startedAt,
      port: this.localPort,
      ...(this.#attempts > 0 ? { dialAttempts: this.#attempts } : {}),
      ...(this.#connectMs !== undefined ? { connectMs: round(this.#connectMs) } : {}),
      ...(this.#firstByteMs !== undefined ? { firstByteMs: round(this.#firstByteMs) } : {}),
      ...(this.shaperWaitMs !== undefined ? { shapingWaitMs: round(this.shaperWaitMs) } : {}),
      reason: this.#reason,
      ...(this.#error ? { error: this.#error } : {}),
    };
  }
}
