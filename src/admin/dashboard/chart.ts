/**
 * A tier's rates over the last five minutes as an SVG line chart in bits/s (the unit that suits
 * the scale): down (filled) and up, each with the cap that binds it (dashed; a step where it
 * changed), scaled to the highest of the rates and those caps: a tier whose customers are held far
 * below its total still fills its chart. The axis top, in bit/s, is the root's `data-top`.
 */
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
/** Cap labels closer than this (px) would overlap: the lower one goes under its line. */
const LABEL_H = 14;
const X_LABELS: ReadonlyArray<[number, string]> = [[-300, '\u22125m'], [-240, '\u22124m'], [-180, '\u22123m'], [-120, '\u22122m'], [-60, '\u22121m'], [0, 'now']];

type Dir = 'down' | 'up';
const DIRS: readonly Dir[] = ['down', 'up'];
/** Where a direction's rate and cap sit in a Sample. */
const RATE = { down: 1, up: 2 } as const;
const CAP = { down: 3, up: 4 } as const;
const ARROW = { down: '\u2193', up: '\u2191' } as const;
/** Bits per second of each axis unit, the largest first. */
const UNITS: ReadonlyArray<[number, string]> = [[1e9, 'Gbit/s'], [1e6, 'Mbit/s'], [1e3, 'kbit/s'], [1, 'bit/s']];

interface Series {
  line: SVGPathElement;
  cap: SVGPathElement;
  label: SVGTextElement;
}

export interface Chart {
  root: SVGSVGElement;
  grid: SVGGElement;
  unit: SVGTextElement;
  /** the down rate's filled area */
  area: SVGPathElement;
  series: Record<Dir, Series>;
}

export function makeChart(tier: string): Chart {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-tier': tier, 'data-field': 'chart' });
  root.appendChild(svg('title', {}, `tier ${tier}: down and up rates over the last 5 minutes against the caps that bind them (bits/s)`));
  const series = (d: Dir): Series => ({
    line: svg('path', { class: `line ${d}`, 'data-dir': d }),
    cap: svg('path', { class: `cap ${d}`, 'data-dir': d }),
    label: svg('text', { class: `caplabel ${d}`, 'text-anchor': 'end', 'data-dir': d }),
  });
  const unit = svg('text', { x: L - 6, y: 13, 'text-anchor': 'end', 'font-weight': 600 }, 'Mbit/s');
  const c: Chart = { root, grid: svg('g'), unit, area: svg('path', { class: 'area down' }), series: { down: series('down'), up: series('up') } };
  const legend = svg('text', { x: L + 4, y: 13 });
  legend.append(svg('tspan', { class: 'key-down' }, '\u25a0 \u2193 down'), svg('tspan', { class: 'key-up', dx: 12 }, '\u25a0 \u2191 up'), svg('tspan', { class: 'key-cap', dx: 12 }, '- - cap that binds'));
  root.append(c.grid, c.area, c.series.up.line, c.series.down.line, c.series.down.cap, c.series.up.cap, c.series.down.label, c.series.up.label, legend, unit);
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

interface Scale {
  x(t: number): number;
  y(bytesPerS: number): number;
  from: number;
  now: number;
}

/** A rate's line (and area under it), broken where a value is missing or polls were missed. */
function ratePaths(points: readonly Sample[], at: 1 | 2, s: Scale): { line: string; area: string } {
  let line = '';
  let area = '';
  let run: Array<[string, string]> = [];
  let prevT: number | null = null;
  const flush = () => {
    if (run.length === 0) return;
    const pts = run.map((p) => p.join(',')).join('L');
    line += `M${pts}`;
    area += `M${run[0]![0]},${s.y(0)}L${pts}L${run[run.length - 1]![0]},${s.y(0)}Z`;
    run = [];
  };
  for (const p of points) {
    const t = p[0];
    const v = p[at];
    if (t < s.from) continue;
    if (v === null || (prevT !== null && t - prevT > GAP_S)) flush();
    if (v !== null) run.push([s.x(t).toFixed(1), s.y(v).toFixed(1)]);
    prevT = t;
  }
  flush();
  return { line, area };
}

/** A cap as steps: level from one sample to the next, the last one on to now; none where there was no cap. */
function capPath(points: readonly Sample[], at: 3 | 4, s: Scale): string {
  let d = '';
  let prevY: string | null = null;
  for (const p of points) {
    const v = p[at];
    if (p[0] < s.from) continue;
    const px = s.x(p[0]).toFixed(1);
    if (v === null) {
      if (prevY !== null) d += `H${px}`;
      prevY = null;
      continue;
    }
    const py = s.y(v).toFixed(1);
    if (prevY === null) d += `M${px},${py}`;
    else if (py !== prevY) d += `H${px}V${py}`;
    prevY = py;
  }
  if (prevY !== null) d += `H${s.x(s.now).toFixed(1)}`;
  return d;
}

export function drawChart(c: Chart, points: readonly Sample[]): void {
  const now = Date.now() / 1000;
  const from = now - WINDOW_S;
  let most = 0; // bytes/s
  for (const p of points) {
    if (p[0] < from) continue;
    for (const i of [1, 2, 3, 4] as const) {
      const v = p[i];
      if (v !== null && v > most) most = v;
    }
  }
  const topBits = most > 0 ? most * 8 * 1.08 : 1e6;
  const [per, unit] = UNITS.find(([f]) => topBits >= f) ?? UNITS[UNITS.length - 1]!;
  const step = niceStep(topBits / per / 4);
  const top = Math.ceil(topBits / per / step) * step;
  c.unit.textContent = unit;
  c.root.setAttribute('data-top', String(top * per));
  const plotW = W - L - R;
  const plotH = H - T - B;
  const s: Scale = { x: (t) => L + plotW * (1 - (now - t) / WINDOW_S), y: (v) => T + plotH * (1 - (v * 8) / per / top), from, now };

  c.grid.replaceChildren();
  for (let v = 0; v <= top + step / 2; v += step) {
    const gy = T + plotH * (1 - v / top);
    c.grid.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: gy, y2: gy }), svg('text', { x: L - 6, y: gy + 4, 'text-anchor': 'end' }, tick(v)));
  }

  const last = points[points.length - 1];
  for (const d of DIRS) {
    const { line, area } = ratePaths(points, RATE[d], s);
    c.series[d].line.setAttribute('d', line || 'M0,0');
    if (d === 'down') c.area.setAttribute('d', area || 'M0,0');
    c.series[d].cap.setAttribute('d', capPath(points, CAP[d], s) || 'M0,0');
  }
  labelCaps(c, last ? { down: last[CAP.down], up: last[CAP.up] } : { down: null, up: null }, s);
}

/** The caps now, by their lines (one label when they are the same); "no cap" when neither direction has one. */
function labelCaps(c: Chart, caps: Record<Dir, number | null>, s: Scale): void {
  const place = (d: Dir, text: string, y: number) => {
    const label = c.series[d].label;
    label.textContent = text;
    label.setAttribute('x', String(W - R - 4));
    label.setAttribute('y', y.toFixed(1));
    label.setAttribute('visibility', text === '' ? 'hidden' : 'visible');
  };
  const { down, up } = caps;
  if (down === null && up === null) {
    place('down', 'no cap', T - 10);
    place('up', '', 0);
    return;
  }
  if (down !== null && down === up) {
    place('down', `\u2193\u2191 cap ${bits(down)}`, s.y(down) - 4);
    place('up', '', 0);
    return;
  }
  const yDown = down === null ? null : s.y(down);
  const yUp = up === null ? null : s.y(up);
  // Above its line; the lower of two labels that would overlap goes under its line.
  const close = yDown !== null && yUp !== null && Math.abs(yDown - yUp) < LABEL_H;
  for (const [d, y, other] of [['down', yDown, yUp], ['up', yUp, yDown]] as const) {
    if (y === null) place(d, '', 0);
    else place(d, `${ARROW[d]} cap ${bits(caps[d])}`, close && other !== null && y >= other ? y + LABEL_H - 2 : y - 4);
  }
}
