import type { IncomingMessage, ServerResponse } from 'node:http';
import { isProxyError, ProxyError } from '../errors.js';
import { allows, roleFor, type AdminRole } from './roles.js';

export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when there is none). */
  body: unknown;
  raw: IncomingMessage;
}

/** A handler returns a JSON-able value, or writes to `res` itself and returns undefined. */
export type Handler = (req: Request, res: ServerResponse) => unknown | Promise<unknown>;

interface Route {
  method: string;
  pattern: string;
  parts: string[];
  handler: Handler;
  /** the least role that may use it (roles.ts) */
  role: AdminRole;
}

export const MAX_BODY = 64 * 1024;

/** A request body over MAX_BODY: answered 413, and the connection closed so the rest is never read. */
const bodyTooLarge = (): ProxyError => new ProxyError('SHAPER_ERR_ADMIN_BODY_TOO_LARGE', `request body over ${MAX_BODY} bytes`);

/** Just enough routing for a JSON admin API: `GET /tiers/:name`. */
export class Router {
  #routes: Route[] = [];

  on(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, pattern, parts: pattern.split('/').filter(Boolean), handler, role: roleFor(method, pattern) });
    return this;
  }

  /** Answers `req` as a request of `role` (the role of its token; admin when no token is configured). */
  async handle(req: IncomingMessage, res: ServerResponse, role: AdminRole = 'admin'): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      const parts = url.pathname.split('/').filter(Boolean).map(decodePart);
      const allowed: string[] = [];
      for (const route of this.#routes) {
        const params = match(route.parts, parts);
        if (!params) continue;
        if (route.method !== req.method) {
          allowed.push(route.method);
          continue;
        }
        // Before the body is read: a role that may not gets 403 and nothing runs.
        if (!allows(role, route.role)) {
          throw new ProxyError('SHAPER_ERR_ADMIN_FORBIDDEN', `the token's role "${role}" may not ${route.method} ${route.pattern} (that needs "${route.role}")`);
        }
        const body = await readJsonBody(req);
        const out = await route.handler(
          { method: req.method, path: url.pathname, params, query: url.searchParams, body, raw: req },
          res,
        );
        if (out !== undefined && !res.headersSent) sendJson(res, 200, out);
        return;
      }
      if (allowed.length > 0) {
        res.setHeader('allow', [...new Set(allowed)].join(', '));
        sendJson(res, 405, { error: `method ${req.method} not allowed on ${url.pathname} (allowed: ${[...new Set(allowed)].join(', ')})`, code: 'SHAPER_ERR_ADMIN_METHOD' });
      } else sendJson(res, 404, { error: `no such path ${url.pathname}`, code: 'SHAPER_ERR_ADMIN_NOT_FOUND' });
    } catch (err) {
      // The status comes from the error catalogue; anything else is our bug: 500.
      const known = isProxyError(err);
      const code = known ? err.code : undefined;
      // The body is not read: the connection cannot carry another request.
      if ((code === 'SHAPER_ERR_ADMIN_BODY_TOO_LARGE' || code === 'SHAPER_ERR_ADMIN_FORBIDDEN') && !res.headersSent) res.setHeader('connection', 'close');
      if (!res.headersSent) sendJson(res, known ? err.status : 500, { error: (err as Error).message, ...(code ? { code } : {}) });
      else res.destroy();
    }
  }
}

function match(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = parts[i]!;
    else if (p !== parts[i]) return undefined;
  }
  return params;
}

/** A path segment with its %-escapes decoded; a malformed escape is the client's mistake (400), not ours. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ProxyError('SHAPER_ERR_ADMIN_BAD_REQUEST', `malformed %-escape in the path segment ${JSON.stringify(part)}`);
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY) throw bodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw bodyTooLarge();
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new ProxyError('SHAPER_ERR_ADMIN_BAD_REQUEST', `body is not JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
