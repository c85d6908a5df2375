/**
 * The dashboard page: polls `/stats` on the admin server that served it, once a second, and
 * nothing else anywhere. The first poll asks for the last five minutes (`?history=1`); after
 * that the page keeps its own history. A `?token=` in the page's address is sent as the
 * `Authorization` header on its requests. Figures tests read carry `data-field` (and
 * `data-tier` / `data-app`) attributes; rates also carry their raw bytes/s in `data-value`.
 */
import type { StatsDocument } from '../../observe/stats-document.js';
import { byId, setField, setText } from './dom.js';
import { bytes, count, duration } from './format.js';
import { push, seed } from './history.js';
import { renderApps, renderCustomers, renderFoo } from './tables.js';
import { renderTiers } from './tiers.js';
import { renderPlans } from './usage.js';

const POLL_MS = 1000;
const TIMEOUT_MS = 5000;

let haveHistory = false;

function renderHeader(s: StatsDocument): void {
  setText(byId('uptime'), duration(s.uptimeSeconds));
  setField(byId('active'), count(s.connections.active), s.connections.active);
  setText(byId('total'), count(s.connections.total));
  setText(byId('rejected'), count(s.connections.rejected));
  setText(byId('bytes-down'), bytes(s.bytes.down));
  setText(byId('bytes-up'), bytes(s.bytes.up));
  const targets = s.apps.flatMap((a) => a.targets);
  const healthy = targets.filter((t) => t.health === 'healthy').length;
  setText(byId('backends'), targets.length > 0 ? `${healthy}/${targets.length} healthy` : '\u2014');
}

function render(s: StatsDocument): void {
  renderHeader(s);
  if (!haveHistory && s.history) seed(s.history);
  const now = Date.now() / 1000;
  for (const t of s.tiers) push(t.name, now, t.rateDown, t.rateUp);
  renderTiers(s.tiers);
  renderApps(s.apps);
  renderCustomers(s.customers);
  renderFoo(s.foo);
  renderPlans(s.plans);
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
