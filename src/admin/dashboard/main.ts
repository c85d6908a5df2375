/**
 * The dashboard page: polls `/stats` on the admin server that served it, once a second, and
 * nothing else anywhere. The first poll asks for the last five minutes (`?history=1`); after
 * that the page keeps its own history. A `?token=` in the page's address is sent as the
 * `Authorization` header on its requests. Figures tests read carry `data-field` (and
 * `data-tier` / `data-app`) attributes; rates also carry their raw bytes/s in `data-value`.
 */
import type { StatsDocument } from '../../observe/stats-document.js';
import { renderConnections } from './connections.js';
import { byId, setText } from './dom.js';
import { renderFleet } from './fleet.js';
import { renderHeader } from './header.js';
import { push, sampleOf, seed } from './history.js';
import { renderConfig } from './reload.js';
import { renderApps, renderCustomers, renderFoo } from './tables.js';
import { renderTiers } from './tiers.js';
import { renderPlans } from './usage.js';

const POLL_MS = 1000;
const TIMEOUT_MS = 5000;

let haveHistory = false;

/** The page's sections, in order: each reads what it shows of the document (a new section is one more module and line). */
const SECTIONS: ReadonlyArray<(s: StatsDocument) => void> = [
  renderHeader,
  (s) => renderConfig(s.config),
  (s) => renderTiers(s.tiers),
  renderConnections,
  (s) => renderApps(s.apps),
  (s) => renderCustomers(s.customers),
  (s) => renderFleet(s.fleet),
  (s) => renderFoo(s.foo),
  (s) => renderPlans(s.plans),
];

function render(s: StatsDocument): void {
  if (!haveHistory && s.history) seed(s.history, s.tiers);
  const now = Date.now() / 1000;
  for (const t of s.tiers) push(t.name, sampleOf(now, t));
  for (const section of SECTIONS) section(s);
}

function connected(ok: true): void;
function connected(ok: false, why: string): void;
function connected(ok: boolean, why?: string): void {
  const banner = byId('banner');
  const live = byId('live');
  banner.hidden = ok;
  banner.setAttribute('data-state', ok ? 'connected' : 'disconnected');
  if (!ok) setText(banner, `disconnected from the proxy (${why}) \u2014 retrying every second`);
  live.setAttribute('data-state', ok ? 'up' : 'down');
  setText(live, ok ? `updated ${new Date().toLocaleTimeString()}` : 'disconnected');
}

async function fetchStats(token: string | null): Promise<StatsDocument> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  try {
    const res = await fetch(haveHistory ? '/stats' : '/stats?history=1', {
      cache: 'no-store',
      signal: ctrl.signal,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()) as StatsDocument;
  } finally {
    clearTimeout(timer);
  }
}

function reason(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown } | null | undefined;
  if (e?.name === 'AbortError') return 'timed out';
  return typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
}

async function poll(): Promise<void> {
  const started = Date.now();
  try {
    render(await fetchStats(new URLSearchParams(location.search).get('token')));
    haveHistory = true;
    connected(true);
  } catch (err) {
    connected(false, reason(err));
  }
  setTimeout(() => void poll(), Math.max(0, POLL_MS - (Date.now() - started)));
}

void poll();
