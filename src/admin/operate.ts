/**
 * The operations of the admin API (role "operate", see roles.ts), besides POST /reload:
 *
 *   DELETE /connections/:id    close one connection now (close reason `killed`)
 *   POST   /drain              stop accepting: the app listeners close, /ready answers 503, open
 *                              connections go on until they end by themselves
 *   POST   /undrain            accept again
 *
 * A drain is reversible and ends nothing by itself: to stop the process after it, send SIGTERM (its
 * drainTimeout then closes what is still open).
 */
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Router } from './router.js';

/** What an operation can do to a connection: its id, where it comes from, and its one close path. */
export interface KillableConnection {
  readonly id: number;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly appName: string;
  close(reason: 'killed'): void;
}

export interface OperateParts {
  log: Logger;
  connections: { readonly size: number; forEach(visit: (c: KillableConnection) => void): void };
  /** the acceptor's drain: listeners closed or open again */
  accepting: { readonly draining: boolean; drain(): void; undrain(): void };
}

export interface DrainView {
  draining: boolean;
  /** connections open now */
  connections: number;
}

export function registerOperations(router: Router, parts: OperateParts): void {
  const { connections, accepting, log } = parts;
  const drainView = (): DrainView => ({ draining: accepting.draining, connections: connections.size });
  router
    .on('DELETE', '/connections/:id', (req) => {
      const text = req.params['id']!;
      const id = /^\d+$/.test(text) ? Number(text) : NaN;
      let found: KillableConnection | undefined;
      connections.forEach((c) => {
        if (c.id === id) found = c;
      });
      if (!found) throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no open connection ${JSON.stringify(text)} (GET /connections lists them)`);
      const conn: KillableConnection = found;
      conn.close('killed');
      return { killed: conn.id, client: `${conn.clientAddress}:${conn.clientPort}`, app: conn.appName };
    })
    .on('POST', '/drain', () => {
      if (!accepting.draining) {
        accepting.drain();
        log.info({ connections: connections.size }, 'draining (admin API): listeners closed, open connections go on');
      }
      return drainView();
    })
    .on('POST', '/undrain', () => {
      if (accepting.draining) {
        accepting.undrain();
        log.info({ connections: connections.size }, 'drain ended (admin API): accepting again');
      }
      return drainView();
    });
}
