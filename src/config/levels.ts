/**
 * Peak rates and guaranteed minimums of a level of caps: their schema (a rate for both directions
 * or {"down": RATE, "up": RATE}, as `burst` is written), the checks against the level's own rates
 * (a peak above its rate, a minimum at most its total), the check across tiers (the minimums fit
 * under `global`), and their typed values in LevelLimits.
 */
import type * as Zod from 'zod';
import { isPlainObject } from './fly.js';
import { either, group, leaf, nullable, optional } from './kit.js';
import { keyPath, type Problems, show } from './problems.js';
import type { LevelLimits, TierConfig } from './types.js';
import { parseRate, RATE_PATTERN } from './units.js';

type Dir = 'down' | 'up';
const DIRS: readonly Dir[] = ['down', 'up'];

/** A finite rate ("8MiB/s", "200mbit"): a peak or a minimum cannot be "unlimited". */
const finiteRate = leaf<string | number>(
  (v) => {
    if (parseRate(v) === Infinity) throw new Error(`must be a rate like "8MiB/s" or "200mbit", not ${show(v)} (leave the key out for none)`);
  },
  { anyOf: [{ type: 'number', exclusiveMinimum: 0 }, { type: 'string', pattern: RATE_PATTERN }] },
);

const perDirection = (what: string) =>
  either(group({ down: optional(finiteRate, `${what} of the download direction.`), up: optional(finiteRate, `${what} of the upload direction.`) }), finiteRate);

/** `peak`: at any level. */
export const PEAK = nullable(perDirection('Peak rate'), {
  doc: 'Peak rate (tc tbf peakrate): a full bucket drains no faster than this, so a burst is a burst of credit, not a line-rate spike. A rate for the directions that have one, or {"down": RATE, "up": RATE}; above the rate.',
});

/** `min`: on a tier's `total`. */
export const MIN = nullable(perDirection('Guaranteed minimum'), {
  doc: 'Guaranteed minimum under the global cap (HTB rate): while the tier is busy it gets this before the rest of global is shared by weight. A rate for both directions or {"down": RATE, "up": RATE}; at most the total.',
});

/** The written `peak` or `min` of each direction (a scalar is both), undefined where none. */
function written(value: unknown): Partial<Record<Dir, unknown>> {
  if (value === null || value === undefined) return {};
  if (isPlainObject(value)) return { down: value['down'], up: value['up'] };
  return { down: value, up: value };
}

function rateOf(value: unknown): number | undefined {
  try {
    return parseRate(value);
  } catch {
    return undefined; // reported by the leaf
  }
}

/** Problems of `peak` and `min` against the level's own rates, as [key path under the level, message]. */
export function levelProblems(level: Record<string, unknown>): [string[], string][] {
  const out: [string[], string][] = [];
  for (const key of ['peak', 'min'] as const) {
    const value = level[key];
    if (value === null || value === undefined) continue;
    const scalar = !isPlainObject(value);
    const given = written(value);
    let rated = 0;
    for (const d of DIRS) {
      const v = given[d];
      const x = v === undefined ? undefined : rateOf(v);
      const rate = rateOf(level[d] ?? 'unlimited');
      if (x === undefined || rate === undefined) continue;
      const at = scalar ? [key] : [key, d];
      if (key === 'peak') {
        if (rate === Infinity) {
          if (!scalar) out.push([at, `${show(v)} needs a rate to be above: set "${d}" too, or leave ${key}.${d} out`]);
          continue;
        }
        rated++;
        if (x <= rate) out.push([at, `${show(v)} must be above the rate ${d} ${show(level[d])}${scalar ? ` (for ${d})` : ''}`]);
      } else if (x > rate) out.push([at, `${show(v)} is above the tier's total ${d} ${show(level[d])}${scalar ? ` (for ${d})` : ''}: a minimum is at most the total`]);
    }
    if (key === 'peak' && scalar && rated === 0 && rateOf(value) !== undefined) {
      out.push([[key], `${show(value)} needs a rate to be above: set "down" or "up" (a peak limits how fast a full bucket drains)`]);
    }
  }
  return out;
}

/** The level check as a zod refinement: each problem at its key path. */
export function refineLevel(level: Record<string, unknown>, ctx: Zod.core.$RefinementCtx<Record<string, unknown>>): void {
  for (const [path, message] of levelProblems(level)) ctx.addIssue({ code: 'custom', message, path, input: level });
}

/** `peak` and `min` of a validated level, as LevelLimits fields (a peak only where the direction has a rate). */
export function peakAndMin(level: { down: unknown; up: unknown; peak?: unknown; min?: unknown }, limits: LevelLimits): LevelLimits {
  const peak = written(level.peak);
  const min = written(level.min);
  for (const d of DIRS) {
    const p = peak[d];
    if (p !== undefined && Number.isFinite(limits[d])) limits[d === 'down' ? 'peakDown' : 'peakUp'] = parseRate(p);
    const m = min[d];
    if (m !== undefined) limits[d === 'down' ? 'minDown' : 'minUp'] = parseRate(m);
  }
  return limits;
}

/** What the minimums problem needs of a tier: its key path and its minimums per direction. */
interface Minimums {
  at: string;
  down: number | undefined;
  up: number | undefined;
}

/**
 * The guaranteed minimums of the tiers must fit under `global` (per direction): a problem at
 * `global.<dir>` naming every minimum, or none.
 */
export function minimumsProblems(tiers: readonly Minimums[], global: { down: number; up: number }): [string, string][] {
  const out: [string, string][] = [];
  for (const d of DIRS) {
    const mins = tiers.filter((t) => t[d] !== undefined) as (Minimums & Record<Dir, number>)[];
    const sum = mins.reduce((s, t) => s + t[d], 0);
    if (mins.length === 0 || sum <= global[d]) continue;
    const listed = mins.map((t) => `${t.at} ${rateText(t[d])}`).join(' + ');
    out.push([
      `global.${d}`,
      `the tiers' guaranteed minimums add up to ${rateText(sum)} (${listed}), more than global.${d} ${rateText(global[d])}: lower them or raise global.${d}`,
    ]);
  }
  return out;
}

/** The minimums check on the config as written (validated or not: values that do not parse are reported elsewhere). */
export function checkMinimums(top: Record<string, unknown>, problems: Problems): void {
  const tiers = isPlainObject(top['tiers']) ? top['tiers'] : {};
  const global = isPlainObject(top['global']) ? top['global'] : {};
  const rates = { down: rateOf(global['down'] ?? 'unlimited') ?? Infinity, up: rateOf(global['up'] ?? 'unlimited') ?? Infinity };
  const mins: Minimums[] = [];
  for (const [name, tier] of Object.entries(tiers)) {
    const total = isPlainObject(tier) && isPlainObject(tier['total']) ? tier['total'] : undefined;
    if (!total || total['min'] === undefined || total['min'] === null) continue;
    const given = written(total['min']);
    const at = keyPath(['tiers', name, 'total', 'min']);
    const scalar = !isPlainObject(total['min']);
    const down = given.down === undefined ? undefined : rateOf(given.down);
    const up = given.up === undefined ? undefined : rateOf(given.up);
    mins.push({ at: scalar ? at : `${at}.down`, down, up: undefined }, { at: scalar ? at : `${at}.up`, down: undefined, up });
  }
  for (const [path, message] of minimumsProblems(mins, rates)) problems.add(path, message);
}

/** The same check on typed tiers (a tier changed through the admin API): the problem lines. */
export function minimumsOfTiers(tiers: Record<string, TierConfig>, global: LevelLimits): string[] {
  const mins: Minimums[] = [];
  for (const [name, tier] of Object.entries(tiers)) {
    const at = keyPath(['tiers', name, 'total', 'min']);
    const { minDown, minUp } = tier.total;
    if (minDown !== undefined || minUp !== undefined) mins.push({ at, down: minDown, up: minUp });
  }
  return minimumsProblems(mins, global).map(([path, message]) => `${path}: ${message}`);
}

/** "200 Mbit/s (25000000 bytes/s)"-like, short: bytes/s in the units people write. */
function rateText(bytesPerSecond: number): string {
  if (bytesPerSecond === Infinity) return 'unlimited';
  const bits = bytesPerSecond * 8;
  for (const [unit, size] of [['Gbit/s', 1e9], ['Mbit/s', 1e6], ['kbit/s', 1e3]] as const) {
    if (bits >= size) return `${+(bits / size).toFixed(3)} ${unit}`;
  }
  return `${bytesPerSecond} bytes/s`;
}
