/**
 * Fleet mode (config `cluster`): this instance and its Redis, the members with the age of their
 * last heartbeat, and this instance's share of each fleet-wide cap that has demand. Hidden while
 * the proxy runs alone.
 */
import type { FleetStats } from '../../observe/stats-document.js';
import { byId, el, setField, setText } from './dom.js';
import { ago, count, latency, percent } from './format.js';

/** A heartbeat's age: whole milliseconds under a second (they come every rebalanceInterval), else with its unit. */
const heartbeat = (ms: number): string => (ms < 1000 ? `${count(ms)} ms ago` : `${latency(ms)} ago`);

export function renderFleet(f: FleetStats | null): void {
  byId('fleet').hidden = f === null;
  if (!f) return;
  setText(byId('fleet-instance'), f.instance);
  const redis = byId('fleet-redis');
  redis.setAttribute('data-state', f.redis.state);
  redis.title = f.redis.url;
  const errors = f.redis.errors > 0 ? ` \u00b7 ${count(f.redis.errors)} failed commands` : '';
  setText(redis, `${f.redis.state} since ${ago(f.redis.since)}${errors}${f.redis.lastError ? ` \u00b7 ${f.redis.lastError}` : ''}`);
  setText(byId('fleet-rebalance'), f.fallback ? 'Redis away: the last known shares (or fallbackShare) hold' : `${count(f.rebalances)} rebalances, the last ${ago(f.lastRebalance)}`);

  const members = byId('fleet-members');
  members.replaceChildren();
  for (const m of f.members) {
    const tr = el('tr', { 'data-member': m.instance, 'data-live': String(m.live) });
    const name = el('td');
    name.append(el('span', { class: `dot ${m.live ? 'healthy' : 'unhealthy'}`, title: m.live ? 'live' : 'no recent heartbeat' }), m.instance, m.self ? el('small', {}, ' (this one)') : '');
    tr.append(name, el('td', {}, m.host ?? '\u2014'), el('td', { class: 'n' }, count(m.connections)), el('td', { class: 'n' }, heartbeat(m.heartbeatAgeMs)));
    members.appendChild(tr);
  }
  setField(byId('fleet-count'), `${count(f.members.filter((m) => m.live).length)} live of ${count(f.members.length)}`, f.members.length);

  const shares = byId('fleet-shares');
  shares.replaceChildren();
  for (const sh of [...f.shares].sort((a, b) => a.scope.localeCompare(b.scope))) {
    const tr = el('tr', { 'data-scope': sh.scope });
    tr.append(el('td', {}, sh.scope), el('td', { class: 'n', 'data-field': 'share', 'data-value': sh.share }, percent(sh.share)), el('td', { class: 'n' }, count(sh.demand)), el('td', { class: 'n' }, count(sh.fleetDemand)));
    shares.appendChild(tr);
  }
  byId('fleet-shares-empty').hidden = f.shares.length > 0;
}
