/**
 * The single catalogue of errors a user or operator can meet (fastify's lib/errors.js): each code
 * with what it means, the HTTP status the admin API answers with, and the exit status of a command
 * that stops on it. Every error the proxy raises on purpose is a ProxyError with one of these
 * codes; tests check that the README's "Errors" table lists every code and that every code is
 * raised somewhere.
 */
interface ErrorSpec {
  readonly message: string;
  /** HTTP status when the admin API answers with it */
  readonly status: number;
}

const spec = (message: string, status = 500): ErrorSpec => ({ message, status });

export const ERRORS = {
  SHAPER_ERR_CONFIG: spec('The configuration is invalid; the message names the key path and the fix.', 400),
  SHAPER_ERR_CONFIG_READ: spec('The configuration file could not be read or parsed.', 400),
  SHAPER_ERR_UNIT: spec('A duration, rate or size could not be parsed.', 400),
  SHAPER_ERR_NO_TARGET: spec('No target of the app accepted the connection.', 502),
  SHAPER_ERR_CONNECT_TIMEOUT: spec('A target did not accept within connectTimeout.', 504),
  SHAPER_ERR_WAKE_TIMEOUT: spec('No target of an app with `wake` accepted within wake.timeout after its wake hook ran; the held clients are closed (close reason wake_timeout).', 504),
  SHAPER_ERR_TARGET_TLS: spec('The TLS handshake with a target failed (untrusted certificate, wrong name, protocol); the dial fails over.', 502),
  SHAPER_ERR_TLS_HANDSHAKE: spec("A client's TLS handshake failed, or did not finish within tls.handshakeTimeout."),
  SHAPER_ERR_ADMIN_BAD_REQUEST: spec('An admin API request body or parameter is invalid.', 400),
  SHAPER_ERR_ADMIN_BODY_TOO_LARGE: spec('An admin API request body is over 64 KiB; the connection is closed without reading the rest.', 413),
  SHAPER_ERR_ADMIN_AUTH: spec('An admin API request had no token or a wrong one (admin.token is set).', 401),
  SHAPER_ERR_ADMIN_FORBIDDEN: spec("The admin API token's role may not do this (read: GET only; operate: also kill, reload, drain; admin: everything); nothing changed.", 403),
  SHAPER_ERR_ADMIN_CONFLICT: spec('An admin API change conflicts with what is in use (a tier still used by customers, defaultTier or connections); nothing changed.', 409),
  SHAPER_ERR_ADMIN_NOT_FOUND: spec('An admin API path or object does not exist.', 404),
  SHAPER_ERR_ADMIN_METHOD: spec('An admin API path does not take this method; the Allow header lists the ones it takes.', 405),
  SHAPER_ERR_ADMISSION: spec('A connection was refused by a customer limit (maxConnections, connectionRate).', 429),
  SHAPER_ERR_QUOTA: spec("A customer is over its tier's quota for the period and the quota has no `then` tier: its new connections are refused and open ones closed (close reason quota_exceeded).", 429),
  SHAPER_ERR_SHAPING_OPTIONS: spec('ShapingStream or SharedCap options do not fit together (a cap under two parents or in a loop, caps of different engines).', 400),
  SHAPER_ERR_STATE: spec('The state file could not be read or written.', 500),
  SHAPER_ERR_NATIVE: spec('The native data plane could not take a connection (the engine is closed, a socket cannot be handed over); the connection stays on the JavaScript data plane or is closed.'),
  SHAPER_ERR_UPGRADE: spec('An upgrade could not start the new process (it exited, its config does not load, it was not ready in time); the old process keeps serving.', 500),
  SHAPER_ERR_CTL: spec('shaper-proxy ctl could not do what it was asked (bad arguments, the admin API unreachable or answering an error).'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class ProxyError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProxyError';
    this.code = code;
  }

  /** The HTTP status the admin API answers this error with. */
  get status(): number {
    return ERRORS[this.code].status;
  }
}

/** SHAPER_ERR_CONFIG with the problem lines (each "key.path: what is wrong (and the fix)") also as an array. */
export class ConfigError extends ProxyError {
  readonly problems: readonly string[];
  /** The file the config came from, when it came from one. */
  source?: string;
  constructor(problems: readonly string[]) {
    super('SHAPER_ERR_CONFIG', problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isProxyError(err: unknown, code?: ErrorCode): err is ProxyError {
  return err instanceof ProxyError && (code === undefined || err.code === code);
}
