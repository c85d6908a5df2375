/** The apps table (targets and latency), the top customers and the Foo protocol's counters. */
import type { AppStats, CustomerStats, FooStatsDocument, LatencyKind, TargetStats } from '../../observe/stats-document.js';
import { byId, el, setText } from './dom.js';
import { bits, count, latency, sig } from './format.js';

const LATENCIES: ReadonlyArray<[LatencyKind, string]> = [
  ['connect', 'connect'],
  ['ttfb', 'ttfb'],
  ['duration', 'duration'],
  ['shaperWait', 'shaper wait'],
  ['foo', 'Foo REQ\u2192ACK'],
];
const PERCENTILES = ['p50', 'p90', 'p99', 'p999', 'max'] as const;
const TOP_CUSTOMERS = 10;

function targetCell(targets: readonly TargetStats[], rows: number): HTMLElement {
  const td = el('td', { rowspan: rows });
  for (const tg of targets) {
    const div = el('div', { class: 'target', 'data-target': tg.address, 'data-health': tg.health, title: tg.health });
    div.append(el('span', { class: `dot ${tg.health}` }), `${tg.address} `, el('span', { class: 'active' }, `(${count(tg.active)} active)`));
    td.appendChild(div);
  }
  return td;
}

/** One row per latency kind with samples (at least one row per app); the app's cells span them. */
export function renderApps(apps: readonly AppStats[]): void {
  const body = byId('apps-body');
  body.replaceChildren();
  for (const a of apps) {
    const kinds = LATENCIES.filter(([k]) => (a.latency[k]?.count ?? 0) > 0);
    const rows = Math.max(1, kinds.length);
    for (let i = 0; i < rows; i++) {
      const tr = el('tr', { 'data-app': a.name, class: i === 0 ? 'app-first' : '' });
      if (i === 0) {
        tr.append(
          el('td', { rowspan: rows }, a.name),
          el('td', { class: 'n', rowspan: rows, 'data-app': a.name, 'data-field': 'connections' }, count(a.connections)),
          targetCell(a.targets, rows),
        );
      }
      const kind = kinds[i];
      const h = kind && a.latency[kind[0]];
      if (kind && h) {
        tr.append(el('td', {}, kind[1]), el('td', { class: 'n' }, count(h.count)));
        for (const p of PERCENTILES) tr.appendChild(el('td', { class: 'n', 'data-app': a.name, 'data-field': `${kind[0]}.${p}`, 'data-value': h[p] }, latency(h[p])));
      } else {
        tr.appendChild(el('td', { colspan: 7, class: 'empty' }, 'no latency samples yet'));
      }
      body.appendChild(tr);
    }
  }
  byId('apps-empty').hidden = apps.length > 0;
}

/** The customers moving the most bytes down, at most TOP_CUSTOMERS of them. */
export function renderCustomers(customers: readonly CustomerStats[]): void {
  const body = byId('customers-body');
  body.replaceChildren();
  const top = [...customers].sort((a, b) => b.rateDown - a.rateDown).slice(0, TOP_CUSTOMERS);
  for (const c of top) {
    const tr = el('tr', { 'data-customer': c.id });
    tr.append(el('td', {}, c.id), el('td', {}, c.tier), el('td', { class: 'n' }, count(c.connections)), el('td', { class: 'n' }, bits(c.rateDown)), el('td', { class: 'n' }, bits(c.rateUp)));
    body.appendChild(tr);
  }
  byId('customers').hidden = top.length === 0;
  setText(byId('customers-more'), customers.length > top.length ? `top ${top.length} of ${customers.length} by down rate` : '');
}

const FOO: ReadonlyArray<[keyof FooStatsDocument, string]> = [
  ['msg_total', 'messages'],
  ['msg_req', 'requests'],
  ['msg_ack', 'acks'],
  ['msg_nak', 'naks'],
  ['msg_invalid', 'invalid'],
  ['request_rate_1s', 'requests/s (1 s)'],
  ['request_rate_10s', 'requests/s (10 s)'],
  ['response_rate_1s', 'responses/s (1 s)'],
  ['response_rate_10s', 'responses/s (10 s)'],
];

/** Shown once the proxy has seen a Foo message. */
export function renderFoo(foo: FooStatsDocument): void {
  const show = foo.msg_total > 0;
  byId('foo').hidden = !show;
  if (!show) return;
  const list = byId('foo-list');
  list.replaceChildren();
  for (const [key, label] of FOO) {
    const box = el('div');
    box.append(el('dt', {}, label), el('dd', { 'data-field': `foo.${key}` }, key.includes('rate') ? sig(foo[key]) : String(foo[key])));
    list.appendChild(box);
  }
}
