/** What a bench scenario looks like to the runner (bench/run.ts), and the small helpers they share. */

export interface OptionSpec {
  type: 'string' | 'boolean';
  default?: string | boolean;
  description: string;
}

export type Args = Record<string, string | boolean | undefined>;

/** A table the runner prints; rows hold already formatted cells. */
export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
}

export interface Result {
  /** The options as used, defaults filled in. */
  params: Record<string, unknown>;
  tables: Table[];
  /** Things a reader should know: skipped parts, warnings, how to read the numbers. */
  notes: string[];
  /** Everything measured, for the JSON report. */
  data: unknown;
  /** One line the runner prints last, e.g. caps' `caps: 8 PASS, 0 FAIL, 4 SKIP`. */
  verdict?: string;
}

export interface Scenario {
  name: string;
  describe: string;
  options: Record<string, OptionSpec>;
  run(args: Args): Promise<Result>;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function formatTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [t.title, line(t.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

/** A string option as a positive number, with the flag name in the error. */
export function numberArg(args: Args, name: string): number {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: "${String(args[name])}" is not a positive number`);
  return v;
}

/** "1,4" -> [1, 4] */
export function listArg(args: Args, name: string): number[] {
  const list = String(args[name]).split(',').map(Number);
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Error(`--${name}: "${String(args[name])}" is not a list of positive integers like 1,4`);
  }
  return list;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
