import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { AdminConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { listeningFd, type HandedListener, type InheritedFds } from '../net/listen-fds.js';
import { RetryingListen } from '../server/listen.js';
import { AdminTokens, requestRole, sendUnauthorized } from './auth.js';
import type { Router } from './router.js';

type AdminTls = NonNullable<AdminConfig['tls']>;

/** The admin HTTP(S) server: binds with retry like the app ports, never takes the proxy down. */
export class AdminServer {
  readonly server: http.Server;
  readonly listen: RetryingListen;

  /**
   * `tokens()`: the tokens in force (read per request, so a reload that changes them applies at
   * once); with `tls`, HTTPS.
   */
  constructor(host: string, port: number, router: Router, log: Logger, tokens: () => AdminTokens = () => new AdminTokens(null), tls?: AdminTls) {
    const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const role = requestRole(req, tokens());
      if (role === undefined) sendUnauthorized(req, res);
      else void router.handle(req, res, role);
    };
    this.server = tls ? https.createServer({ cert: tls.cert.pem, key: tls.key.pem, minVersion: 'TLSv1.2' }, handle) : http.createServer(handle);
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

  /** New certificate and key for the connections from now on (a reload that changed the files). */
  setTls(tls: AdminTls): void {
    (this.server as https.Server).setSecureContext({ cert: tls.cert.pem, key: tls.key.pem, minVersion: 'TLSv1.2' });
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
 * `admin.listen` changes or TLS is turned on or off, stopped when it is turned off. The tokens
 * are read per request; new TLS files apply to the next connections, without a restart.
 */
export class AdminHttp {
  #server: AdminServer | undefined;
  #key = '';
  #tokens = new AdminTokens(null);
  #tls: AdminTls | undefined;

  constructor(
    private readonly router: Router,
    private readonly log: Logger,
    /** listening descriptors handed over by the process this one upgrades */
    private readonly inherited?: InheritedFds,
  ) {}

  configure(admin: AdminConfig | null): void {
    const key = admin ? `${admin.tls ? 'https' : 'http'}://${admin.host}:${admin.port}` : '';
    this.#tokens = new AdminTokens(admin);
    const tls = admin?.tls;
    if (key === this.#key) {
      if (tls && this.#server && !(tls.cert.equals(this.#tls?.cert) && tls.key.equals(this.#tls?.key))) this.#server.setTls(tls);
      this.#tls = tls;
      return;
    }
    void this.#server?.close();
    this.#server = undefined;
    this.#key = key;
    this.#tls = tls;
    if (!admin) return;
    this.#server = new AdminServer(admin.host, admin.port, this.router, this.log, () => this.#tokens, tls);
    this.#server.listen.inheritedFd = this.inherited?.take(`admin:${key}`);
    void this.#server.start();
  }

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
