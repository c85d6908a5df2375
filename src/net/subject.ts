/**
 * Client certificate subjects (mutual TLS) for customer matching. A subject is shown as
 * "O=Acme, CN=alice" (the certificate's order; a comma inside a value is escaped "\,", as OpenSSL
 * prints it). A pattern lists one or more "ATTR=value" pairs ("CN=alice", "O=Acme",
 * "CN=alice, O=Acme"); it matches a subject that has every pair, in any order. Attribute names and
 * values ignore case; a value is matched whole (no wildcards).
 */

const ATTR = /^[A-Za-z][A-Za-z0-9-]*$|^\d+(?:\.\d+)+$/;
/** ", " that is not an escaped comma inside a value */
const SEPARATOR = /(?<!\\), */;

/** "O=Acme\nCN=alice" (X509Certificate.subject) -> "O=Acme, CN=alice" */
export function subjectText(x509Subject: string): string {
  return x509Subject.replace(/\n/g, ', ');
}

type Pairs = [attr: string, value: string][];

/** The pairs of a pattern, or (`lenient`, for a certificate's subject) of the parts that are pairs. */
function parse(text: string, lenient = false): Pairs | undefined {
  const pairs: Pairs = [];
  for (const part of text.split(SEPARATOR)) {
    const eq = part.indexOf('=');
    const attr = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq > 0 && ATTR.test(attr) && value !== '') pairs.push([attr.toUpperCase(), value.toLowerCase()]);
    else if (!lenient) return undefined;
  }
  return pairs;
}

/** Why `p` is not a subject pattern, or undefined when it is one. */
export function subjectPatternProblem(p: unknown): string | undefined {
  if (typeof p === 'string' && p.trim() !== '' && parse(p)) return undefined;
  return `${JSON.stringify(p) ?? String(p)} is not a certificate subject (use "ATTR=value" pairs like "CN=alice" or "CN=alice, O=Acme")`;
}

/** A compiled list of subject patterns; one that matches is enough. */
export class SubjectPatterns {
  readonly #patterns: Pairs[];

  constructor(patterns: readonly string[]) {
    this.#patterns = patterns.map((p) => parse(p) ?? []);
  }

  /** Whether the verified client certificate's subject (as subjectText gives it; undefined: none) matches. */
  matches(subject: string | undefined): boolean {
    if (!subject) return false;
    const have = new Set(parse(subject, true)!.map(([attr, value]) => `${attr}=${value}`));
    return this.#patterns.some((pairs) => pairs.length > 0 && pairs.every(([attr, value]) => have.has(`${attr}=${value}`)));
  }
}
