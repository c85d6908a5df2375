/**
 * Schedule windows of a tier ("days": "mon-fri", "from": "18:00", "to": "23:00") and accounting
 * periods: the grammars of `days`, times of day and `accounting.period`, and, on the calendar of a
 * time zone (calendar.ts), which window holds an instant and when the next one starts or ends.
 * A window belongs to the day it starts on; one whose `to` is not after its `from` runs past
 * midnight into the next day. Where windows overlap, the first listed wins.
 */
import { instantOf, localTime, type PeriodSpec } from './calendar.js';
import { parseDuration } from './units.js';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const MINUTES_PER_DAY = 24 * 60;

function weekday(name: string): number {
  const n = name.trim().toLowerCase();
  const i = n.length >= 3 ? DAY_NAMES.findIndex((d) => d.startsWith(n)) : -1;
  if (i < 0) throw new Error(`${JSON.stringify(name.trim())} is not a day (use mon, tue, wed, thu, fri, sat, sun)`);
  return i;
}

/** "mon-fri", "mon,wed,fri", "sat-sun", "fri-mon" (wraps), "daily" -> weekdays 0 (Sunday) - 6, in order. */
export function parseDays(value: unknown): number[] {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new Error(`${JSON.stringify(value)} is not a list of days (use e.g. "mon-fri", "mon,wed,fri", "sat-sun" or "daily")`);
  }
  if (['daily', '*', 'all'].includes(value.trim().toLowerCase())) return [0, 1, 2, 3, 4, 5, 6];
  const days = new Set<number>();
  for (const part of value.split(',')) {
    const [a, b, ...rest] = part.split('-');
    if (rest.length > 0) throw new Error(`${JSON.stringify(part.trim())} is not a day or a range of days (use e.g. "mon-fri")`);
    const from = weekday(a!);
    const to = b === undefined ? from : weekday(b);
    for (let d = from; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === to) break;
    }
  }
  return [...days].sort((x, y) => x - y);
}

const CLOCK = /^([01]?\d|2[0-4]):([0-5]\d)$/;
export const CLOCK_PATTERN = CLOCK.source;

/** "08:00", "18:30", "24:00" -> minutes after midnight. */
export function parseClock(value: unknown): number {
  const m = typeof value === 'string' ? CLOCK.exec(value.trim()) : null;
  const minutes = m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  if (!(minutes <= MINUTES_PER_DAY)) throw new Error(`${JSON.stringify(value)} is not a time of day (use "HH:MM", e.g. "08:00", "18:30" or "24:00")`);
  return minutes;
}

/** `accounting.period`: "month", "day", "hour", or a duration of at least a second ("15m", "7d"). */
export function parsePeriod(value: unknown): PeriodSpec {
  if (value === 'month' || value === 'day' || value === 'hour') return value;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    ms = NaN;
  }
  if (!(ms >= 1000)) throw new Error(`${JSON.stringify(value)} is not a period (use "month", "day", "hour" or a duration of at least 1s, e.g. "15m")`);
  return ms;
}

/** When a window applies; what it sets is its owner's business. */
export interface WindowTimes {
  /** weekdays it starts on, 0 (Sunday) - 6 */
  days: readonly number[];
  /** minutes after local midnight; `to` <= `from` runs into the next day */
  from: number;
  to: number;
}

/** The instants a window that starts on local date y-m-d begins and ends. */
function spanOn(w: WindowTimes, y: number, m: number, d: number, zone: string): [number, number] {
  const start = instantOf(y, m, d, 0, w.from, zone);
  const end = instantOf(y, m, w.to > w.from ? d : d + 1, 0, w.to, zone);
  return [start, end];
}

/**
 * The first window holding `epochMs` (its index, or -1) and the next instant after `epochMs` at
 * which any window starts or ends (Infinity: there are none).
 */
export function windowAt(windows: readonly WindowTimes[], epochMs: number, zone: string): { active: number; next: number } {
  let active = -1;
  let next = Infinity;
  if (windows.length === 0) return { active, next };
  const today = localTime(epochMs, zone);
  // From yesterday (a window running past midnight) to a week ahead: every window occurs in it.
  for (let offset = -1; offset <= 8; offset++) {
    const weekdayOf = (((today.weekday + offset) % 7) + 7) % 7;
    windows.forEach((w, i) => {
      if (!w.days.includes(weekdayOf)) return;
      const [start, end] = spanOn(w, today.year, today.month, today.day + offset, zone);
      if (start <= epochMs && epochMs < end && (active < 0 || i < active)) active = i;
      if (start > epochMs && start < next) next = start;
      if (end > epochMs && end < next) next = end;
    });
  }
  return { active, next };
}
