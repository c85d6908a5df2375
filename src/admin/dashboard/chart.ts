/** A tier's down rate over the last five minutes as an SVG line chart (Mbit/s), with its cap dashed. */
import type { Cap } from '../../observe/stats-document.js';
import { svg } from './dom.js';
import { bits, tick } from './format.js';
import { WINDOW_S, type Sample } from './history.js';

const W = 560;
const H = 200;
const L = 50;
const R = 12;
const T = 26;
const B = 24;
/** A poll missed for longer than this breaks the line. */
const GAP_S = 3;
const X_LABELS: ReadonlyArray<[number, string]> = [[-300, '\u22125m'], [-240, '\u22124m'], [-180, '\u22123m'], [-120, '\u22122m'], [-60, '\u22121m'], [0, 'now']];

export interface Chart {
  root: SVGSVGElement;
  grid: SVGGElement;
  area: SVGPathElement;
  line: SVGPathElement;
  cap: SVGLineElement;
  capLabel: SVGTextElement;
}

export function makeChart(tier: string): Chart {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-tier': tier, 'data-field': 'chart' });
  root.appendChild(svg('title', {}, `tier ${tier}: down rate over the last 5 minutes (Mbit/s)`));
  const c: Chart = {
    root,
    grid: svg('g'),
    area: svg('path', { class: 'area' }),
    line: svg('path', { class: 'line' }),
    cap: svg('line', { class: 'cap' }),
    capLabel: svg('text', { class: 'caplabel', 'text-anchor': 'end' }),
  };
  root.append(c.grid, c.area, c.line, c.cap, c.capLabel, svg('text', { x: L - 6, y: 13, 'text-anchor': 'end', 'font-weight': 600 }, 'Mbit/s'));
  for (const [s, label] of X_LABELS) {
    const x = L + (W - L - R) * (1 + s / WINDOW_S);
    root.appendChild(svg('text', { x, y: H - 5, 'text-anchor': s === 0 ? 'end' : s === -WINDOW_S ? 'start' : 'middle' }, label));
  }
  return c;
}

/** 1, 2, 2.5 or 5 times a power of ten, at least x. */
function niceStep(x: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  const f = x / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

const mbit = (bytesPerS: number) => (bytesPerS * 8) / 1e6;

export function drawChart(c: Chart, points: readonly Sample[], capDown: Cap): void {
  const now = Date.now() / 1000;
  let top = 0;
  for (const p of points) if (p[1] !== null && p[1] > top) top = p[1];
  if (capDown !== null && capDown > top) top = capDown;
  top = mbit(top) * 1.08;
  if (!(top > 0)) top = 1;
  const step = niceStep(top / 4);
  top = Math.ceil(top / step) * step;
  const plotW = W - L - R;
  const plotH = H - T - B;
  const y = (bytesPerS: number) => T + plotH * (1 - mbit(bytesPerS) / top);
  const x = (t: number) => L + plotW * (1 - (now - t) / WINDOW_S);

  c.grid.replaceChildren();
  for (let v = 0; v <= top + step / 2; v += step) {
    const gy = T + plotH * (1 - v / top);
    c.grid.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: gy, y2: gy }), svg('text', { x: L - 6, y: gy + 4, 'text-anchor': 'end' }, tick(v)));
  }

  let line = '';
  let area = '';
  let run: Array<[string, string]> = [];
  let prevT: number | null = null;
  const flush = () => {
    if (run.length === 0) return;
    const pts = run.map((p) => p.join(',')).join('L');
    line += `M${pts}`;
    area += `M${run[0]![0]},${y(0)}L${pts}L${run[run.length - 1]![0]},${y(0)}Z`;
    run = [];
  };
  for (const [t, down] of points) {
    if (t < now - WINDOW_S) continue;
    if (down === null || (prevT !== null && t - prevT > GAP_S)) flush();
    if (down !== null) run.push([x(t).toFixed(1), y(down).toFixed(1)]);
    prevT = t;
  }
  flush();
  c.line.setAttribute('d', line || 'M0,0');
  c.area.setAttribute('d', area || 'M0,0');

  if (capDown === null) {
    c.cap.setAttribute('visibility', 'hidden');
    c.capLabel.textContent = 'no cap';
    c.capLabel.setAttribute('x', String(W - R));
    c.capLabel.setAttribute('y', String(T - 10));
  } else {
    const cy = String(y(capDown));
    c.cap.setAttribute('visibility', 'visible');
    for (const [k, v] of [['x1', String(L)], ['x2', String(W - R)], ['y1', cy], ['y2', cy]] as const) c.cap.setAttribute(k, v);
    c.capLabel.textContent = `cap ${bits(capDown)}`;
    c.capLabel.setAttribute('x', String(W - R - 4));
    c.capLabel.setAttribute('y', String(y(capDown) - 4));
  }
}
