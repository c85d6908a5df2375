import { fileURLToPath } from 'node:url';
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** The level names, most severe first. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Seed 000's numeric levels, 0 (most verbose) to 7 (nothing): 0 debug, 1 info, 2 warn, 3 error,
 * 4 fatal, 5 panic and 6 (which pino does not have: its most severe, fatal), 7 disabled.
 */
const NUMERIC: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'fatal', 'fatal', 'fatal', 'silent'];

/** A level name, or one of seed 000's numbers (as a number or a string of digits); undefined if neither. */
export function logLevel(value: unknown): LogLevel | undefined {
  if (typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(n) ? NUMERIC[n] : undefined;
}

/** What logLevel() takes, for error messages. */
export const LOG_LEVEL_HELP = `one of ${LOG_LEVELS.join(', ')}, or 0-7 (0 debug, 1 info, 2 warn, 3 error, 4-6 fatal, 7 silent)`;

/** The terminal's format (log-pretty.ts), as pino's worker loads it: by file. */
const TERMINAL = fileURLToPath(new URL('./log-pretty.js', import.meta.url));

/**
 * JSON lines on stdout; on a terminal one readable line per event (log-pretty.ts: pino-pretty,
 * in a worker thread, off the proxy's event loop).
 */
export function createLogger(level: string, dest?: DestinationStream): Logger {
  const opts = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (dest) return pino(opts, dest);
  if (process.stdout.isTTY) return pino(opts, pino.transport({ target: TERMINAL, options: { colorize: true } }));
  return pino(opts, pino.destination({ dest: 1, sync: false }));
}

/** A logger that drops everything, for tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
