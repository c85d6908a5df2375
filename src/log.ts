import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout; pretty-printed when stdout is a terminal (pino-pretty
 * runs in a worker thread then, off the proxy's event loop).
 */
export function createLogger(level: string, dest?: DestinationStream): Logger {
  const opts = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (dest) return pino(opts, dest);
  if (process.stdout.isTTY) {
    return pino(opts, pino.transport({ target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } }));
  }
  return pino(opts, pino.destination({ dest: 1, sync: false }));
}

/** A logger that drops everything, for tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
