/**
 * The log on a terminal (log.ts picks it when stdout is a TTY): one line per event, as pino-pretty
 * writes it with the time (local), the level and the message, then every other field as
 * `key=value` (strings bare unless they need quotes, objects as compact JSON, so a stack or a
 * multi-line error stays on its line). pid, hostname and instance, the same on every line of a
 * terminal, are left out. A module of its own: pino runs it in a worker thread (pino.transport),
 * whose options cannot carry a function.
 */
import pretty, { type PrettyOptions } from 'pino-pretty';

/** Fields pino-pretty writes itself (time, level, the message), and those the same on every line. */
const LEFT_OUT = new Set(['time', 'level', 'pid', 'hostname', 'instance']);
/** A string written without quotes: no space, quote, `=`, backslash or control character. */
const BARE = /^[^\s"=\\\p{Cc}]+$/u;
const CONTROL = /\p{Cc}/gu;

function valueText(v: unknown): string {
  if (typeof v === 'string') return BARE.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v) ?? String(v);
}

/** The message, then ` key=value` for each field of `log` but the message and LEFT_OUT, in their order. */
export function terminalMessage(log: Record<string, unknown>, messageKey = 'msg'): string {
  const msg = log[messageKey];
  let line = typeof msg === 'string' ? msg.replace(CONTROL, (c) => JSON.stringify(c).slice(1, -1)) : msg === undefined ? '' : valueText(msg);
  for (const [key, v] of Object.entries(log)) {
    if (key !== messageKey && !LEFT_OUT.has(key) && v !== undefined) line += `${line === '' ? '' : ' '}${key}=${valueText(v)}`;
  }
  return line;
}

/** pino-pretty's options for the terminal (what terminalMessage does not write, it leaves out). */
export function terminalOptions(colorize: boolean): PrettyOptions {
  return {
    colorize,
    // The fields are in the message (terminalMessage), so no object below it. (Not `singleLine`:
    // with `hideObject` pino-pretty 13 then ends the line with no newline.)
    hideObject: true,
    // Not even `err`: an error is a field like any other, on its line.
    errorLikeObjectKeys: [],
    ignore: [...LEFT_OUT].filter((k) => k !== 'time' && k !== 'level').join(','),
    translateTime: 'SYS:HH:MM:ss.l',
    messageFormat: (log, messageKey) => terminalMessage(log, messageKey),
  };
}

/** The transport pino starts in its worker: `{ colorize }` as options. */
export default function terminalTransport(options: { colorize?: boolean } = {}) {
  return pretty(terminalOptions(options.colorize ?? false));
}
