/**
 * The native data plane's error. Its code joins the catalogue (src/errors.ts) when the engine is
 * wired into the proxy; kept here until then so this folder changes nothing outside it.
 */
export class NativeError extends Error {
  readonly code = 'SHAPER_ERR_NATIVE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NativeError';
  }
}
