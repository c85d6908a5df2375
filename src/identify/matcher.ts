import type { CustomerConfig } from '../config/types.js';
import { CidrSet } from '../net/cidr.js';
import { SubjectPatterns } from '../net/subject.js';
import { SniPatterns } from '../net/server-name.js';

/** What is known about a connection when it is matched to a customer. */
export interface Identity {
  clientAddress: string;
  app: string;
  /** the proxy port the client connected to */
  port: number;
  /** the TLS server name the client asked for (apps with `tls` or `sniPreread` only) */
  sni?: string;
  /** the subject of the client's verified certificate (apps with `tls.clientAuth` only) */
  clientCert?: string;
}

interface CompiledCustomer {
  id: string;
  sources: CidrSet | null;
  apps: Set<string> | null;
  ports: Set<number> | null;
  sni: SniPatterns | null;
  clientCert: SubjectPatterns | null;
}

/**
 * Finds the first customer whose given match criteria all hold (in config order: no criterion
 * outranks another, so list the narrower customers first). Criteria are
 * compiled once per config (CIDR sets, name and port sets), so a match is a
 * few set lookups per customer.
 */
export class CustomerMatcher {
  readonly #customers: CompiledCustomer[];

  constructor(customers: readonly CustomerConfig[]) {
    this.#customers = customers.map((c) => ({
      id: c.id,
      sources: c.match.sources?.length ? new CidrSet(c.match.sources) : null,
      apps: c.match.apps?.length ? new Set(c.match.apps) : null,
      ports: c.match.ports?.length ? new Set(c.match.ports) : null,
      sni: c.match.sni?.length ? new SniPatterns(c.match.sni) : null,
      clientCert: c.match.clientCert?.length ? new SubjectPatterns(c.match.clientCert) : null,
    }));
  }

  /** The id of the first matching customer, or undefined. */
  match(who: Identity): string | undefined {
    for (const c of this.#customers) if (missed(c, who) === null) return c.id;
    return undefined;
  }

  /**
   * Why each customer before the match did not match, and which one did (for `--log-level debug`;
   * never on the hot path otherwise).
   */
  explain(who: Identity): { matched: string | undefined; skipped: string[] } {
    const skipped: string[] = [];
    for (const c of this.#customers) {
      const why = missed(c, who);
      if (why === null) return { matched: c.id, skipped };
      skipped.push(`${c.id}: ${why}`);
    }
    return { matched: undefined, skipped };
  }
}

/** The first criterion of `c` that `who` fails, or null when every criterion it gives holds. */
function missed(c: CompiledCustomer, who: Identity): string | null {
  if (c.apps && !c.apps.has(who.app)) return 'app not in its apps';
  if (c.ports && !c.ports.has(who.port)) return 'port not in its ports';
  if (c.sources && !c.sources.has(who.clientAddress)) return 'source not in its sources';
  // No server name (a plain-TCP app, or a client that sent none) never matches an `sni` list.
  if (c.sni && !c.sni.matches(who.sni)) return who.sni === undefined ? 'no server name (sni)' : 'server name not in its sni';
  // Nor does a connection without a verified client certificate match a `clientCert` list.
  if (c.clientCert && !c.clientCert.matches(who.clientCert)) return who.clientCert === undefined ? 'no verified client certificate' : 'certificate subject not in its clientCert';
  return null;
}
