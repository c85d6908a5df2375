/**
 * One card per tier: connections and customers, the rate each way against the cap that binds it
 * now (a meter each), the configured caps, the shaping wait, and the chart of both directions.
 */
import type { Binding, TierStats } from '../../observe/stats-document.js';
import { drawChart, makeChart, type Chart } from './chart.js';
import { byId, el, setField, setText } from './dom.js';
import { bits, byteRate, cap, count, latency } from './format.js';
import { samplesOf } from './history.js';

/** The meter turns to the cap's colour from this share of the cap on. */
const FULL = 0.95;

interface Side {
  rate: HTMLElement;
  bytes: HTMLElement;
  meter: HTMLElement;
  binding: HTMLElement;
}

interface Card {
  card: HTMLElement;
  conns: HTMLElement;
  custs: HTMLElement;
  down: Side;
  up: Side;
  capDown: HTMLElement;
  capUp: HTMLElement;
  capMore: HTMLElement;
  wait: HTMLElement;
  chart: Chart;
}

const cards = new Map<string, Card>();

/** A figure of a tier, found by tests and scripts as `[data-tier][data-field]`. */
function field(tier: string, key: string, cls = ''): HTMLElement {
  return el('span', { class: cls, 'data-tier': tier, 'data-field': key });
}

function side(tier: string, dir: 'Down' | 'Up', label: string): { box: HTMLElement; side: Side } {
  const rate = field(tier, `rate${dir}`, 'big');
  const bytes = field(tier, `rate${dir}Bytes`, 'sub');
  const meter = el('div', { 'data-tier': tier, 'data-field': `utilisation${dir}` });
  const track = el('div', { class: 'meter', title: `${label} rate / the cap that binds it` });
  track.appendChild(meter);
  const binding = field(tier, `binding${dir}`, 'sub');
  const bytesRow = el('div');
  bytesRow.appendChild(bytes);
  const box = el('div', { class: 'rate' });
  box.append(el('div', { class: 'sub' }, label), rate, bytesRow, track, binding);
  return { box, side: { rate, bytes, meter, binding } };
}

function makeCard(tier: string): Card {
  const card = el('section', { class: 'card', 'data-tier': tier });
  const conns = field(tier, 'connections');
  const custs = field(tier, 'customers');
  const meta = el('small');
  meta.append(conns, ' connections \u00b7 ', custs, ' customers');
  const h = el('h3', {}, tier);
  h.appendChild(meta);

  const down = side(tier, 'Down', '\u2193 down');
  const up = side(tier, 'Up', '\u2191 up');
  const rates = el('div', { class: 'rates' });
  rates.append(down.box, up.box);

  const capDown = field(tier, 'capDown');
  const capUp = field(tier, 'capUp');
  const capMore = field(tier, 'capMore');
  const wait = field(tier, 'shaperWait');
  const caps = el('div', { class: 'caps' });
  caps.append('tier total \u2193 ', capDown, ' \u00b7 \u2191 ', capUp, el('br'), capMore, el('br'), wait);

  const chart = makeChart(tier);
  card.append(h, rates, caps, chart.root);
  return { card, conns, custs, down: down.side, up: up.side, capDown, capUp, capMore, wait, chart };
}

/** What sets the binding cap, in words. */
function bindingText(b: Binding, t: TierStats): string {
  switch (b.by) {
    case 'none':
      return 'no cap';
    case 'total':
      return `of ${bits(b.cap)} \u00b7 tier total`;
    case 'global':
      return `of ${bits(b.cap)} \u00b7 global cap`;
    case 'customers':
      if (t.activeCustomers === 0) return `of ${bits(b.cap)} \u00b7 a first connection's cap`;
      return `of ${bits(b.cap)} \u00b7 ${count(t.activeCustomers)} customer${t.activeCustomers === 1 ? '' : 's'}' caps`;
  }
}

function updateSide(s: Side, rate: number, b: Binding, t: TierStats): void {
  setField(s.rate, bits(rate), rate);
  setText(s.bytes, byteRate(rate));
  setField(s.binding, bindingText(b, t), b.cap);
  const share = b.cap !== null && b.cap > 0 ? Math.min(1, rate / b.cap) : 0;
  s.meter.style.width = `${(share * 100).toFixed(1)}%`;
  s.meter.className = share >= FULL ? 'full' : '';
  s.meter.setAttribute('data-value', b.cap !== null ? share.toFixed(3) : '');
}

/** "per customer ↓ 2.00 Mbit/s ↑ 1.00 Mbit/s · per connection ..." for the levels that have a cap. */
function levelCaps(t: TierStats): string {
  const level = (name: string, down: number | null, up: number | null) => {
    const parts = [down !== null ? `\u2193 ${bits(down)}` : '', up !== null ? `\u2191 ${bits(up)}` : ''].filter((p) => p !== '');
    return parts.length > 0 ? `per ${name} ${parts.join(' ')}` : '';
  };
  return [level('customer', t.customerCapDown, t.customerCapUp), level('connection', t.connectionCapDown, t.connectionCapUp)].filter((p) => p !== '').join(' \u00b7 ') || 'no customer or connection caps';
}

function update(c: Card, t: TierStats): void {
  setText(c.conns, count(t.connections));
  setText(c.custs, count(t.customers));
  updateSide(c.down, t.rateDown, t.bindingDown, t);
  updateSide(c.up, t.rateUp, t.bindingUp, t);
  setField(c.capDown, cap(t.capDown), t.capDown);
  setField(c.capUp, cap(t.capUp), t.capUp);
  setText(c.capMore, levelCaps(t));
  const w = t.latency.shaperWait;
  setText(c.wait, w ? `shaping wait p50 ${latency(w.p50)} \u00b7 p99 ${latency(w.p99)} \u00b7 max ${latency(w.max)}` : 'no shaping wait measured yet');
  drawChart(c.chart, samplesOf(t.name));
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
