/**
 * TLS server names (SNI) for customer matching. A pattern is an exact name ("api.example.com") or a
 * wildcard "*.example.com", which matches one or more labels left of the suffix ("a.example.com",
 * "a.b.example.com") and never the bare "example.com". Case does not matter, nor a trailing dot.
 */

const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const PATTERN = new RegExp(`^(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*$`);
const MAX_NAME = 253;

/** Lower case, without a trailing dot: how names are compared. */
export function normaliseServerName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Why `p` is not a server name pattern, or undefined when it is one. */
export function sniPatternProblem(p: unknown): string | undefined {
  const example = '(use a host name like "api.example.com" or a wildcard like "*.example.com")';
  if (typeof p !== 'string' || p === '') return `${JSON.stringify(p) ?? String(p)} is not a server name ${example}`;
  const name = normaliseServerName(p);
  if (name.length > MAX_NAME || !PATTERN.test(name)) {
    const why = name.includes('*') ? 'has a wildcard that is not the whole first label' : 'is not a host name';
    return `${JSON.stringify(p)} ${why} ${example}`;
  }
  return undefined;
}

/** A compiled list of patterns: a set lookup for exact names, a suffix test per wildcard. */
export class SniPatterns {
  readonly #exact = new Set<string>();
  /** ".example.com" for "*.example.com" */
  readonly #suffixes: string[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      const name = normaliseServerName(p);
      if (name.startsWith('*.')) this.#suffixes.push(name.slice(1));
      else this.#exact.add(name);
    }
  }

  /** Whether `serverName` (as the client sent it; undefined: none) matches one of the patterns. */
  matches(serverName: string | undefined): boolean {
    if (!serverName) return false;
    const name = normaliseServerName(serverName);
    if (this.#exact.has(name)) return true;
    for (const suffix of this.#suffixes) {
      // At least one non-empty label before the suffix: "x.example.com", never "example.com" or ".example.com".
      if (name.length > suffix.length && name.endsWith(suffix) && name[name.length - suffix.length - 1] !== '.') return true;
    }
    return false;
  }
}
