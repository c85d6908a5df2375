/**
 * The debug lines that explain a connection (`--log-level debug`): why it got its customer, and why
 * the balancer chose its target. Only called when debug is on.
 */
import type { Logger } from '../log.js';
import type { Refusal, ShapedConnection } from '../shaping/shaper.js';
import type { Target } from '../upstream/target.js';
import type { AppUpstream } from '../upstream/upstreams.js';
import type { ShapingPort } from './connection-deps.js';

/** What the explanations read of a connection. */
interface Explained {
  readonly id: number;
  readonly app: AppUpstream;
  readonly appName: string;
  readonly clientAddress: string;
  readonly localPort: number;
  readonly serverName: string | undefined;
  readonly clientCert: string | undefined;
}

/** Which customers were passed over and why, and what the connection got. */
export function explainMatch(log: Logger, conn: Explained, shaping: ShapingPort, verdict: ShapedConnection | null | Refusal): void {
  const who = {
    clientAddress: conn.clientAddress,
    app: conn.appName,
    port: conn.localPort,
    ...(conn.serverName !== undefined ? { sni: conn.serverName } : {}),
    ...(conn.clientCert !== undefined ? { clientCert: conn.clientCert } : {}),
  };
  const { matched, skipped } = shaping.explain(who);
  const got = typeof verdict === 'string' ? undefined : verdict;
  log.debug(
    {
      id: conn.id,
      ...who,
      matched: matched ?? null,
      skipped,
      ...(got !== undefined ? { customer: got?.customer.id ?? null, tier: got?.customer.tier ?? null } : {}),
      admission: verdict === 'rejected' ? 'refused' : verdict === 'quota_exceeded' ? 'refused: over its quota' : 'admitted',
      ...(matched === undefined && got ? { why: 'no customer matched: defaultTier, one customer per source address' } : {}),
      ...(got === null ? { why: 'no customer matched and no defaultTier: unshaped' } : {}),
    },
    'customer matching',
  );
}

/** The balancer's choice among the candidates (health, open connections, weight in this app). */
export function explainPick(log: Logger, conn: Explained, target: Target, candidates: readonly Target[], attempt: number): void {
  const { app } = conn;
  log.debug(
    {
      id: conn.id,
      app: conn.appName,
      balance: app.config.balance,
      picked: target.address,
      attempt,
      candidates: candidates.map((t) => ({ target: t.address, health: t.health, active: t.active, weight: app.weightOf(t) })),
    },
    'balancer choice',
  );
}
