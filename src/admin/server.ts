import http from 'node:http';
import type { Logger } from '../log.js';
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
