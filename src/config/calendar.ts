/**
 * Wall-clock arithmetic in an IANA time zone, on epoch milliseconds, for accounting periods and
 * schedule windows. The zone's rules come from Intl (Node's ICU data); everything else is plain
 * arithmetic: a local date and time is turned into an instant by trying the zone's offsets on
 * either side of it, so days of 23 or 25 hours (DST) and midnights that do not exist come out
 * right. Disambiguation is Temporal's "compatible": a local time that happens twice is its
 * first instant, one that falls in a gap is moved forward by the gap (02:30 -> 03:30).
 */

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Local date and time fields; month 1-12, weekday 0 (Sunday) - 6. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, f);
  }
  return f;
}

/** Whether `zone` is an IANA time zone this Node knows ("UTC", "Europe/Berlin"). */
export function isTimeZone(zone: string): boolean {
  try {
    formatFor(zone);
    return true;
  } catch {
    return false;
  }
}

/** The local time at `epochMs` in `zone`. */
export function localTime(epochMs: number, zone: string): LocalTime {
  const t = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, weekday: 0 };
  for (const p of formatFor(zone).formatToParts(epochMs)) {
    if (p.type === 'year' || p.type === 'month' || p.type === 'day' || p.type === 'hour' || p.type === 'minute' || p.type === 'second') t[p.type] = Number(p.value);
  }
  t.weekday = new Date(Date.UTC(t.year, t.month - 1, t.day)).getUTCDay();
  return t;
}

/** The zone's offset from UTC at `epochMs`, in ms (positive east of Greenwich). */
export function offsetAt(epochMs: number, zone: string): number {
  const t = localTime(epochMs, zone);
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  return asUtc - Math.floor(epochMs / 1000) * 1000;
}

/**
 * The instant of a local date and time in `zone` (month 1-12; day and month may overflow, as in
 * Date.UTC: day 32 is the next month's first). See the module comment for gaps and repeats.
 */
export function instantOf(year: number, month: number, day: number, hour: number, minute: number, zone: string): number {
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  const before = offsetAt(wall - DAY_MS, zone);
  const after = offsetAt(wall + DAY_MS, zone);
  if (before === after) return wall - before;
  const early = wall - before;
  const late = wall - after;
  const earlyOk = offsetAt(early, zone) === before;
  const lateOk = offsetAt(late, zone) === after;
  if (earlyOk && lateOk) return Math.min(early, late); // happens twice: the first
  if (earlyOk) return early;
  if (lateOk) return late;
  return early; // in a gap: moved forward by the gap, with the offset from before it
}

/** A period: `start` inclusive, `end` exclusive, epoch ms. */
export interface Span {
  start: number;
  end: number;
}

/** An accounting period: a calendar unit of the zone, or a fixed length in ms. */
export type PeriodSpec = 'month' | 'day' | 'hour' | number;

/**
 * The period holding `epochMs`. Months and days begin at local midnight (so a day may last 23 or
 * 25 hours); hours at the local full hour. A length in ms counts from the Unix epoch, whatever the
 * zone.
 */
export function periodAt(epochMs: number, spec: PeriodSpec, zone: string): Span {
  if (typeof spec === 'number') {
    const start = Math.floor(epochMs / spec) * spec;
    return { start, end: start + spec };
  }
  if (spec === 'hour') {
    const local = epochMs + offsetAt(epochMs, zone);
    const start = epochMs - (((local % HOUR_MS) + HOUR_MS) % HOUR_MS);
    return { start, end: start + HOUR_MS };
  }
  const t = localTime(epochMs, zone);
  if (spec === 'day') return { start: instantOf(t.year, t.month, t.day, 0, 0, zone), end: instantOf(t.year, t.month, t.day + 1, 0, 0, zone) };
  return { start: instantOf(t.year, t.month, 1, 0, 0, zone), end: instantOf(t.year, t.month + 1, 1, 0, 0, zone) };
}

/** ISO 8601 of `epochMs` in `zone`'s local time with its offset: "2025-03-30T00:00:00+01:00". */
export function isoInZone(epochMs: number, zone: string): string {
  const t = localTime(epochMs, zone);
  const off = offsetAt(epochMs, zone) / 60_000;
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const ms = epochMs % 1000 === 0 ? '' : `.${String(((epochMs % 1000) + 1000) % 1000).padStart(3, '0')}`;
  return `${t.year}-${p2(t.month)}-${p2(t.day)}T${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)}${ms}${sign}${p2(Math.floor(abs / 60))}:${p2(abs % 60)}`;
}
