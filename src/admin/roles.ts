/**
 * What each role of the admin API may do (config `admin.tokens`), decided per route in one place:
 * `read` may GET; `operate` may also kill a connection, reload and drain; `admin` may do
 * everything, and so may any request when no token is configured (loopback only). A route not
 * listed here that changes something needs `admin`.
 */
import type { AdminRole } from '../config/types.js';

export type { AdminRole };

const RANK: Record<AdminRole, number> = { read: 0, operate: 1, admin: 2 };

/** The operations: "METHOD /pattern" as the routes are registered. */
const OPERATE = new Set(['DELETE /connections/:id', 'POST /reload', 'POST /drain', 'POST /undrain']);

/** The least role a route needs. */
export function roleFor(method: string, pattern: string): AdminRole {
  if (method === 'GET' || method === 'HEAD') return 'read';
  return OPERATE.has(`${method} ${pattern}`) ? 'operate' : 'admin';
}

/** Whether a request of role `has` may use a route that needs `needs`. */
export function allows(has: AdminRole, needs: AdminRole): boolean {
  return RANK[has] >= RANK[needs];
}
