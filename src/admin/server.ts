import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { listeningFd, type HandedListener, type InheritedFds } from '../net/listen-fds.js';
import { RetryingListen } from '../server/listen.js';
import { authorized, sendUnauthorized } from './auth.js';
import type { Router } from './router.js';

/** The admin HTTP server: binds with retry like the app ports, never takes the proxy down. */
export class AdminServer {
  readonly server: http.Server;
  readonly listen: RetryingListen;

  /** `token()`: the bearer token in force (read per request, so a reload that changes it applies at once). */
  constructor(host: string, port: number, router: Router, log: Logger, token: () => string | undefined = () => undefined) {
    this.server = http.createServer((req, res) => {
      if (!authorized(req, token())) sendUnauthorized(req, res);
      else void router.handle(req, res);
    });
    this.server.on('clientError', answerClientError);
    this.server.keepAliveTimeout = 5_000;
    this.server.requestTimeout = 10_000;
    this.listen = new RetryingListen(this.server, host, port, log, 'admin');
  }

  start(): Promise<void> {
    return this.listen.start();
  }

  get port(): number | undefined {
    return this.listen.boundPort;
  }

  async close(): Promise<void> {
    await this.listen.close();
    this.server.closeAllConnections();
  }
}

/**
 * A request node's HTTP parser refused (a raw non-ASCII byte in the path, a malformed header,
 * headers too large, too slow): answered like every other admin error, a JSON body with a code,
 * instead of node's bare 400; then the connection is closed, as it must be after a parse error.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, text] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
    : [400, 'Bad Request'];
  const body = `${JSON.stringify({ error: `malformed HTTP request (${err.code ?? err.message})`, code: 'SHAPER_ERR_ADMIN_BAD_REQUEST' }, null, 2)}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * The admin server as the config wants it: started at the configured address, restarted when
 * `admin.listen` changes, stopped when it is turned off. The token is read per request.
 */
export class AdminHttp {
  #server: AdminServer | undefined;
  #key = '';

  constructor(
    private readonly router: Router,
    private readonly log: Logger,
    /** listening descriptors handed over by the process this one upgrades */
    private readonly inherited?: InheritedFds,
  ) {}

  configure(admin: { host: string; port: number; token?: string } | null): void {
    const key = admin ? `${admin.host}:${admin.port}` : '';
    this.#token = admin?.token;
    if (key === this.#key) return;
    void this.#server?.close();
    this.#server = undefined;
    this.#key = key;
    if (!admin) return;
    this.#server = new AdminServer(admin.host, admin.port, this.router, this.log, () => this.#token);
    this.#server.listen.inheritedFd = this.inherited?.take(`admin:${key}`);
    void this.#server.start();
  }

  #token: string | undefined;

  /** The bound port, once it listens. */
  get port(): number | undefined {
    return this.#server?.port;
  }

  /** The listening socket's descriptor, for an upgrade to hand to the new process. */
  handoff(): HandedListener[] {
    const fd = this.#server?.listen.state === 'listening' ? listeningFd(this.#server.server) : -1;
    return fd >= 0 ? [{ key: `admin:${this.#key}`, fd }] : [];
  }

  /** Stop accepting (an upgrade: the new process serves the API now); requests under way finish. */
  async closeListener(): Promise<void> {
    await this.#server?.listen.close();
  }

  async close(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
    this.#key = '';
  }
}
