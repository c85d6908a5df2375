/**
 * Connections closed, by reason, and refused, by reason: the counts since the counters began
 * (they survive restarts) and how many of them came in the last minute (from this page's polls).
 */
import type { StatsDocument } from '../../observe/stats-document.js';
import { byId, el, setText } from './dom.js';
import { count } from './format.js';

const RECENT_MS = 60_000;

/** What each close reason means (a tooltip); a reason not listed shows as it is. */
const CLOSE_REASONS: Readonly<Record<string, string>> = {
  done: 'both sides finished',
  client_closed: 'the client hung up while the backend was still sending',
  backend_closed: 'the backend hung up while the client was still sending',
  client_error: 'a reset or another failure on the client socket',
  backend_error: 'a reset or another failure on the backend socket',
  stage_error: 'a stage between client and backend failed',
  idle_timeout: "nothing moved either way for the app's idleTimeout",
  no_target: 'no target of the app accepted the connection',
  client_gone: 'the client left before a target answered',
  shutdown: 'still open when the drain on shutdown ended',
  rejected: 'refused by a customer limit (maxConnections, connectionRate)',
  proxy_protocol: 'no valid PROXY protocol header',
  denied: "the PROXY header's client address is refused by the app's allow / deny",
  killed: 'closed through the admin API (DELETE /connections/:id)',
  resource_exhausted: 'no file descriptor left to dial the target',
  tls_handshake: "the client's TLS handshake failed",
};
/** Closing reasons that are no one's ordinary hang-up. */
const TROUBLE = new Set(['client_error', 'backend_error', 'stage_error', 'no_target', 'rejected', 'proxy_protocol', 'resource_exhausted', 'tls_handshake']);

/** Refusals at accept (the abuse limits, the descriptor budget) and by a customer limit (close reason `rejected`). */
const REFUSALS: Readonly<Record<string, string>> = {
  source_connections: 'limits.perSource.maxConnections',
  source_rate: 'limits.perSource.acceptRate',
  global_connections: 'limits.maxConnections',
  denied: "the app's allow / deny",
  resource_exhausted: 'the descriptor budget (ulimit -n)',
  customer_limit: "a customer's maxConnections or connectionRate",
};

type Counts = Record<string, number>;
/** [ms, close reasons, refusals] per poll, the oldest first, over the last minute. */
const polls: Array<[number, Counts, Counts]> = [];

function table(id: string, counts: Counts, before: Counts, about: Readonly<Record<string, string>>, field: string): void {
  const body = byId(id);
  body.replaceChildren();
  for (const [reason, n] of Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
    const recent = n - (before[reason] ?? 0);
    const tr = el('tr', { 'data-reason': reason, class: TROUBLE.has(reason) && field === 'closed' ? 'trouble' : '' });
    tr.append(
      el('td', { title: about[reason] ?? '' }, reason),
      el('td', { class: 'n', 'data-field': `${field}.${reason}`, 'data-value': n }, count(n)),
      el('td', { class: 'n' }, recent > 0 ? `+${count(recent)}` : ''),
    );
    body.appendChild(tr);
  }
}

export function renderConnections(s: StatsDocument): void {
  const now = Date.now();
  const closed: Counts = { ...s.connections.byReason };
  const refused: Counts = { ...s.connections.refused };
  if (s.connections.rejected > 0) refused['customer_limit'] = s.connections.rejected;
  polls.push([now, closed, refused]);
  while (polls.length > 1 && polls[0]![0] < now - RECENT_MS) polls.shift();
  const [since, closedBefore, refusedBefore] = polls[0]!;
  table('closed-body', closed, closedBefore, CLOSE_REASONS, 'closed');
  table('refused-body', refused, refusedBefore, REFUSALS, 'refused');
  byId('closed-empty').hidden = Object.keys(closed).length > 0;
  byId('refused-empty').hidden = Object.keys(refused).length > 0;
  const tls = s.connections.tlsHandshakeFailures;
  setText(byId('tls-failures'), tls.client + tls.target > 0 ? `failed TLS handshakes: ${count(tls.client)} of clients, ${count(tls.target)} with targets` : '');
  const window = Math.max(1, Math.round((now - since) / 1000));
  for (const id of ['closed-recent', 'refused-recent']) setText(byId(id), window >= 55 ? 'last min' : `last ${window}s`);
}
