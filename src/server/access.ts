/**
 * Access control per app (`apps[].allow` / `apps[].deny`, CIDR lists): deny wins; with `allow`,
 * only the listed sources get in. Checked at accept, before any dial (and, on an app with
 * acceptProxyProtocol, once more on the client address of the PROXY header). An app without
 * either list costs one map lookup.
 */
import { CidrSet, parseIp } from '../net/cidr.js';
import type { AppConfig } from '../config/types.js';

interface Rules {
  allow: CidrSet | null;
  deny: CidrSet | null;
}

export class AccessRules {
  #byApp = new Map<string, Rules>();

  /** The lists of every app (a reload replaces them all). */
  configure(apps: readonly AppConfig[]): void {
    const next = new Map<string, Rules>();
    for (const app of apps) {
      if (!app.allow && !app.deny) continue;
      next.set(app.name, { allow: app.allow ? new CidrSet(app.allow) : null, deny: app.deny ? new CidrSet(app.deny) : null });
    }
    this.#byApp = next;
  }

  /** Whether `address` may not connect to `app`: listed in deny, or not listed in its allow. */
  denied(app: string, address: string | undefined): boolean {
    const rules = this.#byApp.get(app);
    if (rules === undefined) return false;
    const ip = address === undefined ? null : parseIp(address);
    // An address that does not parse is in no list: it passes a deny list, and is kept out by an allow list.
    if (ip === null) return rules.allow !== null;
    if (rules.deny?.has(ip)) return true;
    return rules.allow !== null && !rules.allow.has(ip);
  }
}
