/** The ctl's HTTP client of the admin API: JSON in and out, every failure a CtlError that says what to check. */
import { CtlError } from './usage.js';

/** An object of the API's JSON. */
export type Row = Record<string, unknown>;

const TIMEOUT_MS = 10_000;

export class AdminClient {
  constructor(
    readonly base: URL,
    readonly token?: string,
  ) {}

  /**
   * The parsed JSON answer; an error answer or no answer throws a CtlError saying why. `answers`:
   * error statuses whose JSON is returned instead; `timeoutMs`: how long the API may take.
   */
  async call(method: string, path: string, body?: unknown, notFound?: () => string, answers: readonly number[] = [], timeoutMs = TIMEOUT_MS): Promise<unknown> {
    const url = `${this.base.href.replace(/\/+$/, '')}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new CtlError(unreachable(err, this.base.href, timeoutMs));
    }
    const text = await res.text();
    if (res.status === 401) {
      throw new CtlError(
        this.token === undefined
          ? `the admin API at ${this.base.href} needs a token (HTTP 401): give --token TOKEN or set SHAPER_ADMIN_TOKEN to the proxy's admin.token or one of admin.tokens`
          : `the admin API at ${this.base.href} refused the token (HTTP 401): check --token / SHAPER_ADMIN_TOKEN against the proxy's admin.token`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CtlError(`${method} ${url}: HTTP ${res.status}, not a JSON answer (is ${this.base.href} the proxy's admin API?)`);
    }
    if (!res.ok && !answers.includes(res.status)) {
      if (res.status === 404 && notFound) throw new CtlError(notFound());
      const error = (json as { error?: unknown }).error;
      throw new CtlError(typeof error === 'string' ? error : `${method} ${url}: HTTP ${res.status}`);
    }
    return json;
  }
}

/** Why fetch got no answer, and what to check. */
function unreachable(err: unknown, url: string, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string; errors?: { code?: string }[] } };
  if (e.name === 'TimeoutError') return `the admin API at ${url} did not answer within ${timeoutMs / 1000}s`;
  const code = e.cause?.code ?? e.cause?.errors?.[0]?.code;
  const hint = 'is the proxy running, and is this its admin.listen? (set --admin URL or SHAPER_ADMIN_URL)';
  if (code === 'ECONNREFUSED') return `cannot connect to the admin API at ${url} (connection refused): ${hint}`;
  if (e.cause?.message === 'bad port') return `cannot use the admin API at ${url}: fetch refuses that port (one browsers block); give admin.listen another port`;
  return `cannot reach the admin API at ${url} (${code ?? e.cause?.message ?? e.message}): ${hint}`;
}
