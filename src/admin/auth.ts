/**
 * Admin API authentication: optional bearer tokens, each with a role (`admin.tokens`; the one
 * `admin.token` / SHAPER_ADMIN_TOKEN is a token of the role "admin"). When any is set, every
 * request must carry `Authorization: Bearer TOKEN`, and gets the role of its token (what a role
 * may do: roles.ts); the dashboard page itself (GET /) may also give it as `?token=` so a browser
 * can open it, and the page then sends the header on its own fetches. Without a token the admin
 * API is only allowed on loopback (the config loader refuses anything else), with the role admin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminConfig } from '../config/types.js';
import { isDashboardAsset } from './dashboard.js';
import type { AdminRole } from './roles.js';

// The config loader needs it too, so it lives in the base layer (src/net.ts).
export { isLoopbackHost } from '../net/loopback.js';

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

/**
 * Tokens are compared as SHA-256 digests: equal lengths whatever was given, so timingSafeEqual
 * never throws and the time taken tells nothing about how much of a token matched, nor its length.
 */
const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** The tokens in force (admin.token as a token of the role admin, then admin.tokens), kept as SHA-256 digests. */
export class AdminTokens {
  readonly #tokens: { digest: Buffer; role: AdminRole }[];

  constructor(admin: Pick<AdminConfig, 'token' | 'tokens'> | null) {
    const all = [...(admin?.token ? [{ token: admin.token, role: 'admin' as const }] : []), ...(admin?.tokens ?? [])];
    this.#tokens = all.map((t) => ({ digest: digest(t.token), role: t.role }));
  }

  /** No token configured: every request may do everything (the loader allows that on loopback only). */
  get none(): boolean {
    return this.#tokens.length === 0;
  }

  /**
   * The role of `given`; undefined when it is none of the tokens. Every token is compared, each in
   * constant time, so the time taken tells neither which one matched nor how much of one did.
   */
  roleOf(given: string): AdminRole | undefined {
    const d = digest(given);
    let role: AdminRole | undefined;
    for (const t of this.#tokens) if (timingSafeEqual(d, t.digest) && role === undefined) role = t.role;
    return role;
  }
}

/**
 * The role a request has: that of its token; admin when no token is configured; read for the
 * dashboard's script and style (a browser sends no header for them; they hold no data); undefined
 * when it carries no token or a wrong one (401).
 */
export function requestRole(req: IncomingMessage, tokens: AdminTokens): AdminRole | undefined {
  if (tokens.none) return 'admin';
  if (req.method === 'GET' && isDashboardAsset(new URL(req.url ?? '/', 'http://admin').pathname)) return 'read';
  const given = requestToken(req);
  return given === undefined ? undefined : tokens.roleOf(given);
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
          ? 'the admin API token is wrong (send Authorization: Bearer TOKEN with admin.token or one of admin.tokens)'
          : 'the admin API needs a token (send Authorization: Bearer TOKEN with admin.token or one of admin.tokens)',
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
