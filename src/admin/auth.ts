/**
 * Admin API authentication: an optional bearer token (`admin.token` / SHAPER_ADMIN_TOKEN).
 * When one is set, every request must carry `Authorization: Bearer TOKEN`; the dashboard page
 * itself (GET /) may also give it as `?token=` so a browser can open it, and the page then sends
 * the header on its own fetches. Without a token the admin API is only allowed on loopback (the
 * config loader refuses anything else).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isDashboardAsset } from './dashboard.js';

// The config loader needs it too, so it lives in the base layer (src/net.ts).
export { isLoopbackHost } from '../net/loopback.js';

/**
 * Constant-time comparison of a given token with the expected one: both are hashed first, so
 * the digests have equal lengths whatever was given and timingSafeEqual never throws; the time
 * taken tells nothing about how much of the token matched, nor its length.
 */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The token a request carries: `Authorization: Bearer X`, or for the dashboard page `?token=X`. */
export function requestToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    return m ? m[1] : undefined;
  }
  if (req.method === 'GET' || req.method === 'HEAD') {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/') return url.searchParams.get('token') ?? undefined;
  }
  return undefined;
}

/** Whether the request may go on; with no token configured every request may. */
export function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined || token === '') return true;
  if (req.method === 'GET' && isDashboardAsset(new URL(req.url ?? '/', 'http://admin').pathname)) return true; // code and style, no data
  const given = requestToken(req);
  return given !== undefined && tokenMatches(given, token);
}

/**
 * Answers 401 and closes the connection: the request body, if any, is never read, and no
 * handler runs, so nothing changes.
 */
export function sendUnauthorized(req: IncomingMessage, res: ServerResponse): void {
  const had = req.headers.authorization !== undefined;
  const body =
    JSON.stringify(
      {
        error: had
          ? 'the admin API token is wrong (send Authorization: Bearer TOKEN with admin.token)'
          : 'the admin API needs a token (send Authorization: Bearer TOKEN with admin.token)',
        code: 'SHAPER_ERR_ADMIN_AUTH',
      },
      null,
      2,
    ) + '\n';
  res.writeHead(401, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'www-authenticate': 'Bearer realm="shaper-proxy admin"',
    'cache-control': 'no-store',
    connection: 'close',
  });
  res.end(body);
}
