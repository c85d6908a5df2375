/** One card per tier: connections, customers, rates each way, the caps, a meter and the chart. */
import type { TierStats } from '../../observe/stats-document.js';
import { drawChart, makeChart, type Chart } from './chart.js';
import { byId, el, setField, setText } from './dom.js';
import { bits, byteRate, cap, count } from './format.js';
import { samplesOf } from './history.js';

/** The meter turns to the cap's colour from this share of the cap on. */
const FULL = 0.95;

interface Card {
  card: HTMLElement;
  conns: HTMLElement;
  custs: HTMLElement;
  rateDown: HTMLElement;
  rateDownBytes: HTMLElement;
  rateUp: HTMLElement;
  rateUpBytes: HTMLElement;
  meter: HTMLElement;
  capDown: HTMLElement;
  capUp: HTMLElement;
  capMore: HTMLElement;
  chart: Chart;
}

const cards = new Map<string, Card>();

/** A figure of a tier, found by tests and scripts as `[data-tier][data-field]`. */
function field(tier: string, key: string, cls = ''): HTMLElement {
  return el('span', { class: cls, 'data-tier': tier, 'data-field': key });
}

function rateBox(tier: string, key: 'rateDown' | 'rateUp', label: string): { box: HTMLElement; big: HTMLElement; sub: HTMLElement } {
  const big = field(tier, key, 'big');
  const sub = field(tier, `${key}Bytes`, 'sub');
  const box = el('div', { class: 'rate' });
  box.append(el('div', { class: 'sub' }, label), big);
  box.appendChild(el('div')).appendChild(sub);
  return { box, big, sub };
}

function makeCard(tier: string): Card {
  const card = el('section', { class: 'card', 'data-tier': tier });
  const conns = field(tier, 'connections');
  const custs = field(tier, 'customers');
  const meta = el('small');
  meta.append(conns, ' connections \u00b7 ', custs, ' customers');
  const h = el('h3', {}, tier);
  h.appendChild(meta);

  const down = rateBox(tier, 'rateDown', '\u2193 down');
  const up = rateBox(tier, 'rateUp', '\u2191 up');
  const rates = el('div', { class: 'rates' });
  rates.append(down.box, up.box);

  const meter = el('div', { 'data-tier': tier, 'data-field': 'utilisation' });
  const track = el('div', { class: 'meter', title: 'down rate / tier cap' });
  track.appendChild(meter);

  const capDown = field(tier, 'capDown');
  const capUp = field(tier, 'capUp');
  const capMore = field(tier, 'capMore');
  const caps = el('div', { class: 'caps' });
  caps.append('tier cap \u2193 ', capDown, ' \u00b7 \u2191 ', capUp, el('br'), capMore);

  const chart = makeChart(tier);
  card.append(h, rates, track, caps, chart.root);
  return { card, conns, custs, rateDown: down.big, rateDownBytes: down.sub, rateUp: up.big, rateUpBytes: up.sub, meter, capDown, capUp, capMore, chart };
}

function update(c: Card, t: TierStats): void {
  setText(c.conns, count(t.connections));
  setText(c.custs, count(t.customers));
  setField(c.rateDown, bits(t.rateDown), t.rateDown);
  setField(c.rateUp, bits(t.rateUp), t.rateUp);
  setText(c.rateDownBytes, byteRate(t.rateDown));
  setText(c.rateUpBytes, byteRate(t.rateUp));
  setField(c.capDown, cap(t.capDown), t.capDown);
  setField(c.capUp, cap(t.capUp), t.capUp);
  const more: string[] = [];
  if (t.customerCapDown !== null) more.push(`per customer \u2193 ${bits(t.customerCapDown)}`);
  if (t.connectionCapDown !== null) more.push(`per connection \u2193 ${bits(t.connectionCapDown)}`);
  setText(c.capMore, more.join(' \u00b7 '));
  const share = t.capDown !== null && t.capDown > 0 ? Math.min(1, t.rateDown / t.capDown) : 0;
  c.meter.style.width = `${(share * 100).toFixed(1)}%`;
  c.meter.className = share >= FULL ? 'full' : '';
  c.meter.setAttribute('data-value', t.capDown !== null ? share.toFixed(3) : '');
  drawChart(c.chart, samplesOf(t.name), t.capDown);
}

/** Cards in the server's order; a tier gone from the config loses its card. */
export function renderTiers(tiers: readonly TierStats[]): void {
  const box = byId('tiers');
  const seen = new Set<string>();
  tiers.forEach((t, i) => {
    seen.add(t.name);
    let c = cards.get(t.name);
    if (!c) cards.set(t.name, (c = makeCard(t.name)));
    if (box.children[i] !== c.card) box.insertBefore(c.card, box.children[i] ?? null);
    update(c, t);
  });
  for (const [name, c] of cards) {
    if (seen.has(name)) continue;
    c.card.remove();
    cards.delete(name);
  }
  byId('tiers-empty').hidden = tiers.length > 0;
}
