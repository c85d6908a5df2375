import { ProxyError } from '../errors.js';

/** The native data plane's error: SHAPER_ERR_NATIVE in the catalogue (src/errors.ts). */
export class NativeError extends ProxyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SHAPER_ERR_NATIVE', message, options);
    this.name = 'NativeError';
  }
}
