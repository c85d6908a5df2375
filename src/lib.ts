/**
 * The package's library entry ("shaper-proxy"): bandwidth shaping for any Node.js stream, with the
 * proxy's scheduler and none of the proxy (no sockets, no config files, no logger).
 *
 *   import { ShapingStream, SharedCap } from 'shaper-proxy';
 *   const tier = new SharedCap({ rate: '2MiB/s', burst: '64KiB' });
 *   src.pipe(new ShapingStream({ rate: '1MiB/s', burst: '64KiB', caps: [tier] })).pipe(dst);
 */
export { ShapingStream, type ShapingStreamOptions } from './shaping/stream.js';
export { SharedCap, ShapingEngine, type SharedCapOptions, type ShapingEngineOptions, type RateInput, type SizeInput } from './shaping/cap.js';
export { ManualClock, realClock, type Clock, type Timer } from './clock.js';
export { ProxyError, isProxyError, type ErrorCode } from './errors.js';
