/**
 * The list every config problem goes into, one line each, "<key path>: <what is wrong and the fix>",
 * and the helpers that write those lines: key paths ("apps[0].targets[1]", `tiers["gold plus"]`),
 * values as the user wrote them, and the "did you mean" of an unknown key.
 */

/** One step of a key path: an object key or a list index. */
export type PathSegment = string | number;

/** Keys that read plainly in a key path (others are quoted, like tiers["gold plus"]). */
const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/;

/** `["apps", 0, "targets"]` -> "apps[0].targets"; keys that are not plain are quoted. */
export function keyPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out === '' ? '(config)' : out;
}

export class Problems {
  readonly lines: string[] = [];
  readonly #paths = new Set<string>();
  add(path: string, message: string): void {
    this.lines.push(`${path}: ${message}`);
    this.#paths.add(path);
  }
  has(path: string): boolean {
    return this.#paths.has(path);
  }
  /** Whether any problem is at `path` or below it ("apps[0].tls" covers "apps[0].tls.cert"). */
  under(path: string): boolean {
    return this.lines.some((line) => line.startsWith(`${path}:`) || line.startsWith(`${path}.`) || line.startsWith(`${path}[`));
  }
  get count(): number {
    return this.lines.length;
  }
}

/** A value as it would be written in the config: strings quoted, objects as JSON. */
export function show(value: unknown): string {
  if (typeof value === 'number' || value === undefined) return String(value);
  return JSON.stringify(value) ?? String(value);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The problem line of an unknown key: with the closest known key, or the list of them. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const hint = suggest(key, known);
  return hint ? `unknown key (did you mean "${hint}"?)` : `unknown key (known keys: ${known.join(', ')})`;
}

/** The candidate closest to `key` (case-insensitive edit distance), if one is close enough to be a typo. */
export function suggest(key: string, candidates: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  for (const candidate of candidates) {
    const d = editDistance(k, candidate.toLowerCase());
    if (d <= bestDistance) {
      best = candidate;
      bestDistance = d - 1;
      if (d === 0) break;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
