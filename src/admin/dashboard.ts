/**
 * The dashboard: `GET /` and `GET /dashboard` answer its page, `GET /dashboard/<file>` its script
 * modules and style. They are files of the built package, dist/src/admin/dashboard/ (the browser
 * modules compiled there by tsc from src/admin/dashboard/, page.html and style.css copied there
 * by `npm run build`), read once when this module loads and answered from memory; the page asks
 * for nothing but these and `/stats` on the same admin server.
 *
 * The page needs the token like the rest of the API. Its files are public: a browser sends no
 * Authorization header when it loads a script or a style, and they hold no data, only the code
 * the package ships (auth.ts asks `isDashboardAsset`).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { ProxyError } from '../errors.js';
import type { Request, Router } from './router.js';

const DIR = new URL('./dashboard/', import.meta.url);
const PAGE = 'page.html';
const PREFIX = '/dashboard/';

/** What is served from the folder, by file extension; anything else there (.d.ts) is not. */
const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Only these files and `/stats` on the same origin; no inline script or style, nothing from anywhere else. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

interface Files {
  page: Buffer;
  assets: Map<string, Asset>;
}

function load(): Files | Error {
  try {
    const page = readFileSync(new URL(PAGE, DIR));
    const assets = new Map<string, Asset>();
    for (const entry of readdirSync(DIR, { withFileTypes: true })) {
      const type = entry.isFile() ? TYPES[entry.name.slice(entry.name.lastIndexOf('.'))] : undefined;
      if (type === undefined) continue;
      const body = readFileSync(new URL(entry.name, DIR));
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      assets.set(entry.name, { body, type, etag });
    }
    return { page, assets };
  } catch (err) {
    return new Error(`the dashboard's files are missing from ${fileURLToPath(DIR)} (npm run build compiles and copies them): ${(err as Error).message}`);
  }
}

const files = load();

/** Whether `pathname` is one of the dashboard's script or style files, which need no token. */
export function isDashboardAsset(pathname: string): boolean {
  return pathname.startsWith(PREFIX) && !(files instanceof Error) && files.assets.has(pathname.slice(PREFIX.length));
}

/** Adds `GET /`, `GET /dashboard` (the page) and `GET /dashboard/:file` (its files) to the router. */
export function dashboardRoutes(router: Router): void {
  router.on('GET', '/', servePage).on('GET', '/dashboard', servePage).on('GET', `${PREFIX}:file`, serveAsset);
}

function loaded(): Files {
  if (files instanceof Error) throw files;
  return files;
}

function servePage(_req: Request, res: ServerResponse): undefined {
  const { page } = loaded();
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': page.length,
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
  });
  res.end(page);
  return undefined;
}

/**
 * A file by its name in the folder, nothing else: a name with `/` or `..` (from `%2F`) is no
 * entry of the map. The URLs carry no version, so the browser asks again on each load
 * (`no-cache`) and gets a 304 while the ETag (the content's hash) is the same.
 */
function serveAsset(req: Request, res: ServerResponse): undefined {
  const name = req.params['file'] ?? '';
  const asset = loaded().assets.get(name);
  if (asset === undefined) throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no dashboard file ${JSON.stringify(name)}`);
  const headers = { etag: asset.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
  if (matches(req.raw.headers['if-none-match'], asset.etag)) {
    res.writeHead(304, headers);
    res.end();
    return undefined;
  }
  res.writeHead(200, { ...headers, 'content-type': asset.type, 'content-length': asset.body.length });
  res.end(asset.body);
  return undefined;
}

/** `If-None-Match`: a list of tags (weak ones compare equal too, RFC 9110 13.1.2) or `*`. */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}
