/**
 * The single catalogue of errors a user or operator can meet. Every error the
 * proxy raises on purpose is a ProxyError with a stable `code`; the README's
 * "Errors" table lists them all and a test checks that it does.
 */
export const ErrorCodes = {
  SHAPER_ERR_CONFIG: 'The configuration is invalid; the message names the key path and the fix.',
  SHAPER_ERR_CONFIG_READ: 'The configuration file could not be read or parsed.',
  SHAPER_ERR_UNIT: 'A duration, rate or size could not be parsed.',
  SHAPER_ERR_NO_TARGET: 'No target of the app accepted the connection.',
  SHAPER_ERR_CONNECT_TIMEOUT: 'A target did not accept within connectTimeout.',
  SHAPER_ERR_TARGET_TLS: 'The TLS handshake with a target failed (untrusted certificate, wrong name, protocol); the dial fails over.',
  SHAPER_ERR_TLS_HANDSHAKE: "A client's TLS handshake failed, or did not finish within tls.handshakeTimeout.",
  SHAPER_ERR_ADMIN_BAD_REQUEST: 'An admin API request body or parameter is invalid.',
  SHAPER_ERR_ADMIN_AUTH: 'An admin API request had no token or a wrong one (admin.token is set).',
  SHAPER_ERR_ADMIN_NOT_FOUND: 'An admin API path or object does not exist.',
  SHAPER_ERR_ADMIN_METHOD: 'An admin API path does not take this method; the Allow header lists the ones it takes.',
  SHAPER_ERR_UNKNOWN_TIER: 'A customer or request names a tier that does not exist.',
  SHAPER_ERR_ADMISSION: 'A connection was refused by a customer limit (maxConnections, connectionRate).',
  SHAPER_ERR_STATE: 'The state file could not be read or written.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class ProxyError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProxyError';
    this.code = code;
  }
}

export function isProxyError(err: unknown, code?: ErrorCode): err is ProxyError {
  return err instanceof ProxyError && (code === undefined || err.code === code);
}
