import type { Socket } from 'node:net';
import diagnostics from 'node:diagnostics_channel';
import type { AppUpstream } from '../upstream/upstreams.js';
import type { Target } from '../upstream/target.js';
import { dial, type DialHooks } from '../upstream/dialer.js';
import type { ShapedConnection } from '../shaping/shaper.js';
import type { OwnedRead } from '../shaping/flow.js';
import { encodeProxyHeader, parseProxyHeader, type Endpoint } from '../identify/proxy-protocol.js';

/** A client on an `acceptProxyProtocol` port has this long to send its PROXY header. */
export const PROXY_HEADER_TIMEOUT_MS = 5000;

export type Direction = 'up' | 'down';

/** A stage between one socket's reads and the other socket's writes (shaping plugs in here). */
export interface Stage {
  /** Take over reading `src` and writing `dst`; with `read`, src already reads into the stage. */
  connect(src: Socket, dst: Socket, read?: OwnedRead): void;
  destroy(): void;
  /** Sees every chunk from the source (analysers); never keeps or changes it. */
  observe: ((chunk: Buffer) => void) | null;
  /** Called once, at the first byte from the source. */
  onFirstByte: (() => void) | null;
  /** ms bytes waited in the stage, in total */
  readonly waitedMs: number;
}

/** Watches the bytes of a connection without touching them (the Foo analyser). */
export interface Analyzer {
  client(chunk: Buffer): void;
  server(chunk: Buffer): void;
}

/**
 * The stages a connection's data passes through: `up` between client and
 * backend, `down` between backend and client. Absent stages cost nothing: the
 * sockets are piped directly.
 */
export interface Stages {
  up?: Stage;
  down?: Stage;
}

export type CloseReason =
  | 'done'
  | 'client_error'
  | 'backend_error'
  | 'stage_error'
  | 'idle_timeout'
  | 'no_target'
  | 'client_gone'
  | 'shutdown'
  | 'rejected'
  | 'proxy_protocol'
  /** the dial to the backend found no file descriptor left (EMFILE / ENFILE) */
  | 'resource_exhausted';

export interface ConnectionSummary {
  id: number;
  app: string;
  client: string;
  target: string | undefined;
  customer?: string;
  tier?: string;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  reason: CloseReason;
  error?: string;
}

/** Lifecycle events, for metrics and logs to listen in on (no cost without subscribers). */
export const channels = {
  open: diagnostics.channel('shaper:connection:open'),
  close: diagnostics.channel('shaper:connection:close'),
};

export interface ConnectionDeps extends DialHooks {
  /** Admission before dialing (customer limits); false refuses the connection. */
  admit?(conn: Connection): boolean | Promise<boolean>;
  /** Called once, when both directions are done or the connection is torn down. */
  onClose(conn: Connection, summary: ConnectionSummary): void;
  /** Build the stages for this connection once its target is known. */
  stages?(conn: Connection): Stages | undefined;
  /** A read path for the backend socket straight into the down stage (shaped connections). */
  backendRead?(conn: Connection): OwnedRead | undefined;
  /** The backend accepted, `ms` after dialing began (failovers included). */
  onConnected?(conn: Connection, ms: number): void;
  /** The backend's first byte arrived, `ms` after it accepted. */
  onFirstByte?(conn: Connection, ms: number): void;
  /** An analyser for this connection's bytes, if its app wants one. */
  analyzer?(conn: Connection): Analyzer | null;
  /** ms a PROXY header may take to arrive (default PROXY_HEADER_TIMEOUT_MS). */
  proxyHeaderTimeoutMs?: number;
}

let nextId = 1;

/**
 * Owns the client socket, the backend socket and the stages between them.
 * Everything that ends a connection goes through close(), which runs once.
 */
export class Connection {
  readonly id = nextId++;
  readonly startedAt = Date.now();
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
  /** Aborts the dial when the connection closes first; dropped once the dial is done (it is ~0.3 KB a connection). */
  #aborter: AbortController | undefined = new AbortController();
  #clientClosed = false;
  #backendClosed = false;
  #reason: CloseReason = 'done';
  #error: string | undefined;
  /** The address the client connected to, as a PROXY header gave it. */
  #proxiedDestination: Endpoint | undefined;

  /** The client socket's own peer address, as accepted (before any PROXY header). */
  readonly peerAddress: string | undefined;

  constructor(
    readonly client: Socket,
    readonly app: AppUpstream,
    private readonly deps: ConnectionDeps,
  ) {
    this.peerAddress = client.remoteAddress;
    this.clientAddress = normaliseAddress(client.remoteAddress ?? '');
    this.clientPort = client.remotePort ?? 0;
    this.localPort = client.localPort ?? 0;
    client.on('error', (err: NodeJS.ErrnoException) => this.#fail('client_error', err));
    client.on('close', () => {
      this.#clientClosed = true;
      if (!this.backend) this.close('client_gone');
      else this.#maybeDone();
    });
  }

  /** client bytes read + written at the last idle sweep, and since when that count stands */
  #idleMark = 0;
  #idleSince = this.startedAt;

  /**
   * The proxy's idle sweep (one timer for all connections, instead of a timer per socket):
   * closes the connection once the client has neither sent nor been sent a byte for the app's
   * idleTimeout.
   */
  sweepIdle(now: number): void {
    const timeout = this.app.config.idleTimeout;
    if (timeout <= 0 || this.closed) return;
    const mark = this.client.bytesRead + this.client.bytesWritten;
    if (mark !== this.#idleMark) {
      this.#idleMark = mark;
      this.#idleSince = now;
    } else if (now - this.#idleSince >= timeout) this.close('idle_timeout');
  }

  get appName(): string {
    return this.app.config.name;
  }

  async start(): Promise<void> {
    channels.open.publish(this);
    if (this.app.config.acceptProxyProtocol && !(await this.#readProxyHeader())) return;
    if (this.deps.admit) {
      const ok = await this.deps.admit(this);
      if (this.closed) return;
      if (!ok) {
        this.close('rejected');
        return;
      }
    }
    const read = this.deps.backendRead?.(this);
    const dialStart = performance.now();
    let result;
    try {
      result = await dial(
        this.app,
        { clientAddress: this.clientAddress },
        this.deps,
        this.#aborter!.signal,
        read ? { onread: read.onread } : undefined,
      );
    } catch (err) {
      this.#aborter = undefined;
      const code = (err as NodeJS.ErrnoException).code;
      this.close(this.closed ? this.#reason : code === 'EMFILE' || code === 'ENFILE' ? 'resource_exhausted' : 'no_target', err as Error);
      return;
    }
    this.#aborter = undefined;
    if (this.closed) {
      result.socket.destroy();
      return;
    }
    const backend = result.socket;
    const connectedAt = performance.now();
    this.deps.onConnected?.(this, connectedAt - dialStart);
    this.backend = backend;
    this.target = result.target;
    result.target.active++;
    result.target.total++;
    backend.on('error', (err) => this.#fail('backend_error', err));
    backend.on('close', () => {
      this.#backendClosed = true;
      this.#maybeDone();
    });
    const send = this.app.config.sendProxyProtocol;
    // Before the pipes: the header must precede every client byte.
    if (send) backend.write(encodeProxyHeader(send, { address: this.clientAddress, port: this.clientPort }, this.#localEndpoint()));

    try {
      this.stages = this.deps.stages?.(this);
    } catch (err) {
      this.close('stage_error', err as Error);
      return;
    }
    const { up, down } = this.stages ?? {};
    if (up) up.connect(this.client, backend);
    else this.client.pipe(backend);
    if (down) down.connect(backend, this.client, read);
    else backend.pipe(this.client);
    const onFirstByte = this.deps.onFirstByte;
    if (onFirstByte) {
      const first = () => onFirstByte(this, performance.now() - connectedAt);
      if (down) down.onFirstByte = first;
      else backend.once('data', first);
    }
    const analyzer = this.deps.analyzer?.(this);
    if (analyzer) {
      const client = (chunk: Buffer) => analyzer.client(chunk);
      const server = (chunk: Buffer) => analyzer.server(chunk);
      if (up) up.observe = client;
      else this.client.on('data', client);
      if (down) down.observe = server;
      else backend.on('data', server);
    }
    this.client.resume();
  }

  /**
   * Read the PROXY header off the paused client socket, take its client address, and put the
   * bytes after it back for the pipes. False when the connection was closed instead (bad or
   * missing header, timeout, client gone): nothing was dialed.
   */
  #readProxyHeader(): Promise<boolean> {
    const client = this.client;
    return new Promise((resolve) => {
      let buf: Buffer | undefined;
      const finish = (err?: Error, rest?: Buffer): void => {
        clearTimeout(timer);
        client.off('readable', onReadable);
        client.off('end', onEnd);
        client.off('close', onClose);
        if (err) this.close('proxy_protocol', err);
        else if (rest && rest.length > 0) client.unshift(rest);
        resolve(!this.closed);
      };
      const onReadable = (): void => {
        let chunk: Buffer | null;
        while ((chunk = client.read() as Buffer | null) !== null) {
          buf = buf ? Buffer.concat([buf, chunk]) : chunk;
          const header = parseProxyHeader(buf);
          if (header.kind === 'need-more') continue;
          if (header.kind === 'error') return finish(new Error(`PROXY protocol: ${header.reason}`));
          if (!header.local && header.source) {
            this.clientAddress = header.source.address;
            this.clientPort = header.source.port;
            this.#proxiedDestination = header.destination;
          }
          return finish(undefined, buf.subarray(header.length));
        }
      };
      const onEnd = (): void => finish(new Error('PROXY protocol: client ended before the header'));
      const onClose = (): void => finish();
      const timer = setTimeout(
        () => finish(new Error('PROXY protocol: no header in time')),
        this.deps.proxyHeaderTimeoutMs ?? PROXY_HEADER_TIMEOUT_MS,
      );
      client.on('readable', onReadable);
      client.on('end', onEnd);
      client.on('close', onClose);
    });
  }

  /** Where the client connected to: the PROXY header's destination, else this proxy's address. */
  #localEndpoint(): Endpoint {
    return this.#proxiedDestination ?? { address: normaliseAddress(this.client.localAddress ?? ''), port: this.localPort };
  }

  #fail(reason: CloseReason, err: Error): void {
    this.close(reason, err);
  }

  #maybeDone(): void {
    if (this.#clientClosed && this.#backendClosed) this.close('done');
  }

  /** The one way a connection ends. Idempotent. */
  close(reason: CloseReason, err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.#reason = reason;
    if (err) this.#error = (err as NodeJS.ErrnoException).code ?? err.message;
    this.#aborter?.abort();
    this.client.destroy();
    this.backend?.destroy();
    this.stages?.up?.destroy();
    this.stages?.down?.destroy();
    if (this.target) this.target.active--;
    const summary = this.summary();
    channels.close.publish(summary);
    this.deps.onClose(this, summary);
  }

  /** Bytes the client sent that reached the proxy, and bytes written back to it. */
  get bytesUp(): number {
    return this.client.bytesRead;
  }

  get bytesDown(): number {
    return this.client.bytesWritten;
  }

  /** ms this connection's bytes waited in its shaping stages, both ways (undefined: unshaped). */
  get shaperWaitMs(): number | undefined {
    if (!this.stages) return undefined;
    return (this.stages.up?.waitedMs ?? 0) + (this.stages.down?.waitedMs ?? 0);
  }

  summary(): ConnectionSummary {
    return {
      id: this.id,
      app: this.appName,
      ...(this.shaped ? { customer: this.shaped.customer.id, tier: this.shaped.customer.tier } : {}),
      client: `${this.clientAddress}:${this.clientPort}`,
      target: this.target?.address,
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      durationMs: Date.now() - this.startedAt,
      reason: this.#reason,
      ...(this.#error ? { error: this.#error } : {}),
    };
  }
}

/** "::ffff:1.2.3.4" -> "1.2.3.4", so IPv4 clients look the same on any socket. */
export function normaliseAddress(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}
