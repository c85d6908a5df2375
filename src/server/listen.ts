import type { Server } from 'node:net';
import type { Logger } from '../log.js';
import { realClock, type Clock, type Timer } from '../clock.js';

export type ListenState = 'starting' | 'listening' | 'retrying' | 'closed';

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * The listen(2) backlog of every listening socket: how many connections the kernel completes and
 * queues while the process does not accept (a busy loop, a CPU-starved machine, an upgrade's new
 * process starting). Node's default, 511 (nginx's), fills in 2.5 s at 200 new connections a second;
 * then the kernel drops SYNs and answers with SYN cookies, and a cookie connection whose client spoke
 * first is reset (TcpExtSyncookiesFailed). Linux caps it at net.core.somaxconn (4096 since 5.4).
 */
export const LISTEN_BACKLOG = 4096;

/**
 * Binds `server` to host:port and keeps trying with exponential backoff while
 * the port is busy (or not yet permitted), without blocking anything else.
 * Used by app listeners and the admin server alike.
 */
export class RetryingListen {
  state: ListenState = 'starting';
  attempts = 0;
  lastError: string | undefined;
  #timer: Timer | undefined;
  #delay = RETRY_FIRST_MS;
  /** Called instead of logging when a listening server reports EMFILE / ENFILE (out of descriptors). */
  onExhausted: ((err: NodeJS.ErrnoException) => void) | undefined;
  /**
   * A listening descriptor handed over by the process this one upgrades: the first attempt listens
   * on it instead of binding (the same kernel socket keeps listening); should that fail, it binds.
   */
  inheritedFd: number | undefined;

  constructor(
    readonly server: Server,
    readonly host: string,
    readonly port: number,
    private readonly log: Logger,
    private readonly what: string,
    private readonly clock: Clock = realClock,
  ) {
    server.on('error', (err: NodeJS.ErrnoException) => this.#onError(err));
  }

  /** The port actually bound (differs from `port` when that is 0). */
  get boundPort(): number | undefined {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  #started: Promise<void> | undefined;

  /** Begin listening (once); resolves when bound, or when closed first. */
  start(): Promise<void> {
    this.#started ??= new Promise((resolve) => {
      this.#onListening = resolve;
      this.#try();
    });
    return this.#started;
  }

  #onListening: (() => void) | undefined;

  #try(): void {
    if (this.state === 'closed') return;
    this.attempts++;
    const fd = this.inheritedFd;
    this.inheritedFd = undefined;
    const listening = () => {
      this.state = 'listening';
      this.lastError = undefined;
      this.log.info({ what: this.what, host: this.host, port: this.boundPort, attempts: this.attempts, ...(fd === undefined ? {} : { inherited: true }) }, 'listening');
      this.#onListening?.();
      this.#onListening = undefined;
    };
    // listen({ fd }) ignores an options.backlog and listens again with 511, which would shrink the
    // socket's queue, shared with the old process, at every upgrade: the backlog goes positionally.
    if (fd === undefined) this.server.listen({ host: this.host, port: this.port, exclusive: true, backlog: LISTEN_BACKLOG }, listening);
    else this.server.listen({ fd }, LISTEN_BACKLOG, listening);
  }

  #onError(err: NodeJS.ErrnoException): void {
    if (this.state === 'closed') return;
    if (this.state === 'listening') {
      if (this.onExhausted && (err.code === 'EMFILE' || err.code === 'ENFILE')) {
        this.onExhausted(err);
        return;
      }
      this.log.error({ what: this.what, err }, 'listener error');
      return;
    }
    this.state = 'retrying';
    this.lastError = err.code ?? err.message;
    this.log.warn(
      { what: this.what, host: this.host, port: this.port, code: err.code, retryInMs: this.#delay, attempts: this.attempts },
      'cannot listen yet, retrying',
    );
    this.#timer = this.clock.setTimer(this.#delay, () => this.#try());
    this.#delay = Math.min(this.#delay * 2, RETRY_MAX_MS);
  }

  /** Stop accepting (and stop retrying). Open connections are not touched. */
  close(): Promise<void> {
    const wasListening = this.state === 'listening';
    this.state = 'closed';
    this.#timer?.cancel();
    this.#onListening?.();
    this.#onListening = undefined;
    // server.close() releases the port at once; its callback would wait for
    // every open connection, which a reload or drain must not do.
    if (wasListening) this.server.close();
    return Promise.resolve();
  }
}
