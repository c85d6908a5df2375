/**
 * Plans (issue 15): the accounting period, the customers with the most bytes in it (their quota,
 * what is left, whether they are over it and in which tier that put them), and each scheduled
 * tier's window in force. Rows carry `data-customer` / `data-tier`, figures `data-field`.
 */
import type { PlansStats } from '../../observe/stats-document.js';
import { byId, el, setText } from './dom.js';
import { bytes } from './format.js';

export function renderPlans(plans: PlansStats): void {
  byId('plans').hidden = plans.period === null && plans.windows.length === 0;
  setText(byId('plans-period'), plans.period ? `period ${plans.period.start} \u2013 ${plans.period.end} (${plans.period.timezone})` : 'no usage accounting');
  const body = byId('usage-body');
  body.replaceChildren();
  for (const u of plans.top) {
    const tr = el('tr', { 'data-customer': u.customer, 'data-exceeded': String(u.exceeded) });
    const tier = u.inTier === u.tier ? u.tier : `${u.tier} \u2192 ${u.inTier}`;
    tr.append(
      el('td', {}, u.customer),
      el('td', { 'data-field': 'inTier' }, tier),
      el('td', { class: 'n', 'data-field': 'down', 'data-value': u.down }, bytes(u.down)),
      el('td', { class: 'n', 'data-field': 'up', 'data-value': u.up }, bytes(u.up)),
      el('td', { class: 'n' }, u.quotaBytes === null ? '\u2014' : bytes(u.quotaBytes)),
      el('td', { class: 'n', 'data-field': 'remaining', 'data-value': u.remaining ?? '' }, u.remaining === null ? '\u2014' : bytes(u.remaining)),
      el('td', { 'data-field': 'exceeded' }, u.exceeded ? 'over quota' : ''),
    );
    body.appendChild(tr);
  }
  byId('usage-table').hidden = plans.top.length === 0;
  const list = byId('windows-list');
  list.replaceChildren();
  for (const w of plans.windows) {
    const text = w.active < 0 ? 'own caps (no window now)' : `window ${w.active + 1}: ${w.days} ${w.from}\u2013${w.to}`;
    list.appendChild(el('li', { 'data-tier': w.tier, 'data-field': 'window', 'data-value': w.active }, `${w.tier}: ${text}`));
  }
  byId('windows').hidden = plans.windows.length === 0;
}
