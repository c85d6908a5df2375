/**
 * Calendar arithmetic in a time zone (src/config/calendar.ts) and schedule windows
 * (src/config/schedule.ts): periods roll over at local midnight, the first of the month and the
 * full hour, days of 23 and 25 hours at the DST changes, midnights that do not exist; windows by
 * day lists, past midnight, overlapping (the first wins), across a DST change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instantOf, isoInZone, offsetAt, periodAt } from '../../src/config/calendar.js';
import { parseClock, parseDays, parsePeriod, windowAt, type WindowTimes } from '../../src/config/schedule.js';

const H = 3_600_000;
const iso = (ms: number, zone: string) => isoInZone(ms, zone);
const span = (ms: number, spec: Parameters<typeof periodAt>[1], zone: string) => {
  const p = periodAt(ms, spec, zone);
  return [iso(p.start, zone), iso(p.end, zone), (p.end - p.start) / H];
};

test('day periods begin at local midnight; the DST days last 23 and 25 hours (Europe/Berlin)', () => {
  const zone = 'Europe/Berlin';
  // 2025-03-30: clocks go from 02:00 to 03:00.
  assert.deepEqual(span(Date.parse('2025-03-30T10:00:00Z'), 'day', zone), ['2025-03-30T00:00:00+01:00', '2025-03-31T00:00:00+02:00', 23]);
  // 2025-10-26: clocks go from 03:00 back to 02:00.
  assert.deepEqual(span(Date.parse('2025-10-26T22:59:59Z'), 'day', zone), ['2025-10-26T00:00:00+02:00', '2025-10-27T00:00:00+01:00', 25]);
  // The last instant of a day and the first of the next.
  const midnight = Date.parse('2025-10-26T23:00:00Z');
  assert.equal(iso(periodAt(midnight - 1, 'day', zone).start, zone), '2025-10-26T00:00:00+02:00');
  assert.equal(iso(periodAt(midnight, 'day', zone).start, zone), '2025-10-27T00:00:00+01:00');
});

test('month periods begin on the first at local midnight, across a year and a DST change', () => {
  assert.deepEqual(span(Date.parse('2025-03-15T12:00:00Z'), 'month', 'Europe/Berlin'), ['2025-03-01T00:00:00+01:00', '2025-04-01T00:00:00+02:00', 31 * 24 - 1]);
  assert.deepEqual(span(Date.parse('2025-12-31T23:30:00Z'), 'month', 'UTC'), ['2025-12-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 31 * 24]);
  // In New York it is still December 31st at 23:30 UTC, and January 1st at 05:00 UTC.
  assert.equal(span(Date.parse('2026-01-01T04:59:59Z'), 'month', 'America/New_York')[0], '2025-12-01T00:00:00-05:00');
  assert.equal(span(Date.parse('2026-01-01T05:00:00Z'), 'month', 'America/New_York')[0], '2026-01-01T00:00:00-05:00');
});

test('hour periods begin at the local full hour, also in a zone half an hour off UTC and across DST', () => {
  assert.deepEqual(span(Date.parse('2025-06-01T10:10:00Z'), 'hour', 'Asia/Kolkata'), ['2025-06-01T15:00:00+05:30', '2025-06-01T16:00:00+05:30', 1]);
  // Berlin's repeated hour (02:00-03:00 twice): two periods of an hour each.
  const first = periodAt(Date.parse('2025-10-26T00:30:00Z'), 'hour', 'Europe/Berlin');
  const second = periodAt(Date.parse('2025-10-26T01:30:00Z'), 'hour', 'Europe/Berlin');
  assert.equal(first.end, second.start);
  assert.deepEqual([iso(first.start, 'Europe/Berlin'), iso(second.start, 'Europe/Berlin')], ['2025-10-26T02:00:00+02:00', '2025-10-26T02:00:00+01:00']);
});

test('a period given as a duration counts from the Unix epoch, whatever the zone', () => {
  const p = periodAt(Date.parse('2025-01-01T00:00:07.500Z'), 5000, 'Europe/Berlin');
  assert.deepEqual([new Date(p.start).toISOString(), p.end - p.start], ['2025-01-01T00:00:05.000Z', 5000]);
});

test('a midnight that does not exist: the day begins when the clocks jump (America/Santiago, 2024-09-08)', () => {
  // At 00:00 local the clocks went to 01:00.
  const day = periodAt(Date.parse('2024-09-08T12:00:00Z'), 'day', 'America/Santiago');
  assert.equal(iso(day.start, 'America/Santiago'), '2024-09-08T01:00:00-03:00');
  assert.equal((day.end - day.start) / H, 23);
});

test('local times in a gap move forward by the gap; repeated ones are their first instant', () => {
  const zone = 'Europe/Berlin';
  assert.equal(iso(instantOf(2025, 3, 30, 2, 30, zone), zone), '2025-03-30T03:30:00+02:00');
  assert.equal(iso(instantOf(2025, 10, 26, 2, 30, zone), zone), '2025-10-26T02:30:00+02:00');
  assert.equal(offsetAt(Date.parse('2025-07-01T00:00:00Z'), zone), 2 * H);
});

test('days, times and periods: the grammars', () => {
  assert.deepEqual(parseDays('mon-fri'), [1, 2, 3, 4, 5]);
  assert.deepEqual(parseDays('sat-sun'), [0, 6]);
  assert.deepEqual(parseDays('mon,wed,fri'), [1, 3, 5]);
  assert.deepEqual(parseDays('fri-mon'), [0, 1, 5, 6]);
  assert.deepEqual(parseDays('Monday, sat'), [1, 6]);
  assert.deepEqual(parseDays('daily'), [0, 1, 2, 3, 4, 5, 6]);
  assert.throws(() => parseDays('mon-fro'), /"fro" is not a day/);
  assert.throws(() => parseDays(''), /is not a list of days/);
  assert.equal(parseClock('08:30'), 510);
  assert.equal(parseClock('24:00'), 1440);
  assert.throws(() => parseClock('8h'), /is not a time of day/);
  assert.throws(() => parseClock('24:30'), /is not a time of day/);
  assert.equal(parsePeriod('month'), 'month');
  assert.equal(parsePeriod('15m'), 900_000);
  assert.throws(() => parsePeriod('500ms'), /at least 1s/);
});

const at = (s: string) => Date.parse(s);

test('windows: day lists, past midnight, the first of overlapping windows wins, and the next boundary', () => {
  const zone = 'UTC';
  const windows: WindowTimes[] = [
    { days: parseDays('mon-fri'), from: parseClock('18:00'), to: parseClock('02:00') }, // evenings, into the night
    { days: parseDays('daily'), from: parseClock('00:00'), to: parseClock('24:00') }, // all day, every day
  ];
  // 2025-06-06 is a Friday.
  assert.deepEqual(windowAt(windows, at('2025-06-06T17:59:59Z'), zone), { active: 1, next: at('2025-06-06T18:00:00Z') });
  assert.deepEqual(windowAt(windows, at('2025-06-06T18:00:00Z'), zone), { active: 0, next: at('2025-06-07T00:00:00Z') });
  // Saturday 01:00: Friday's evening window runs on (it belongs to the day it starts on).
  assert.deepEqual(windowAt(windows, at('2025-06-07T01:00:00Z'), zone), { active: 0, next: at('2025-06-07T02:00:00Z') });
  // Sunday 01:00: Saturday had no evening window.
  assert.equal(windowAt(windows, at('2025-06-08T01:00:00Z'), zone).active, 1);
  const evenings: WindowTimes[] = [windows[0]!];
  // Saturday 02:00: nothing until Monday 18:00.
  assert.deepEqual(windowAt(evenings, at('2025-06-07T02:00:00Z'), zone), { active: -1, next: at('2025-06-09T18:00:00Z') });
  assert.deepEqual(windowAt([], at('2025-06-07T02:00:00Z'), zone), { active: -1, next: Infinity });
});

test('windows follow local time across a DST change (Europe/Berlin 18:00-23:00)', () => {
  const zone = 'Europe/Berlin';
  const w: WindowTimes[] = [{ days: parseDays('daily'), from: 18 * 60, to: 23 * 60 }];
  // Saturday 2025-03-29 (UTC+1): 17:00Z; Sunday 2025-03-30 (UTC+2): 16:00Z.
  assert.equal(windowAt(w, at('2025-03-29T12:00:00Z'), zone).next, at('2025-03-29T17:00:00Z'));
  assert.equal(windowAt(w, at('2025-03-30T12:00:00Z'), zone).next, at('2025-03-30T16:00:00Z'));
  assert.equal(windowAt(w, at('2025-03-30T16:30:00Z'), zone).active, 0);
});
