/**
 * Tiny self-contained SVG line charts for the bench's HTML reports (no CDN, no library): one or
 * more series over a shared x axis, optional horizontal reference lines (a cap), axis ticks.
 */

export interface Series {
  name: string;
  points: [number, number][];
  color?: string;
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** horizontal reference lines, e.g. a cap */
  hlines?: { y: number; label: string; color?: string }[];
  /** log scale on x (for connection-count sweeps) */
  logX?: boolean;
  yMin?: number;
}

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(3)}`;
}

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 300;
  const m = { l: 64, r: 16, t: 32, b: 44 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const fx = (x: number) => (o.logX ? Math.log10(Math.max(x, 1e-9)) : x);
  const xs = all.map(([x]) => fx(x));
  const ys = [...all.map(([, y]) => y), ...(o.hlines ?? []).map((h) => h.y)];
  let x0 = xs.length ? Math.min(...xs) : 0;
  let x1 = xs.length ? Math.max(...xs) : 1;
  if (x1 === x0) x1 = x0 + 1;
  const y0 = o.yMin ?? 0;
  let y1 = ys.length ? Math.max(...ys) * 1.08 : 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const sx = (x: number) => m.l + ((fx(x) - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">${esc(o.title)}</text>`);
  for (const t of ticks(y0, y1)) {
    const y = sy(t);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end" fill="#4b5563">${formatTick(t)}</text>`);
  }
  const xt = o.logX ? series[0]?.points.map(([x]) => x) ?? [] : ticks(x0, x1);
  for (const t of xt) {
    const x = sx(t);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#9ca3af"/>`);
    parts.push(`<text x="${x}" y="${m.t + ph + 16}" text-anchor="middle" fill="#4b5563">${formatTick(t)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#9ca3af"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#9ca3af"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle" fill="#111827">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" fill="#111827">${esc(o.yLabel)}</text>`);
  for (const h of o.hlines ?? []) {
    const y = sy(h.y);
    const c = h.color ?? '#ea580c';
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="${c}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
    parts.push(`<text x="${m.l + pw - 4}" y="${y - 4}" text-anchor="end" fill="${c}">${esc(h.label)}</text>`);
  }
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!pts.length) return;
    const c = s.color ?? PALETTE[i % PALETTE.length]!;
    const d = pts.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    parts.push(`<text x="${m.l + 8 + i * 130}" y="${m.t + 12}" fill="${c}">■ ${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** A whole HTML page around sections of text, tables and charts. */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#111827;background:#f9fafb}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;background:#fff;font-size:13px}td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:right}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:16px}.charts svg{background:#fff;border:1px solid #e5e7eb;border-radius:6px}</style></head>
<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

export function htmlTable(columns: string[], rows: string[][], classOf?: (cell: string, col: number) => string | undefined): string {
  const th = columns.map((c) => `<th>${esc(c)}</th>`).join('');
  const tr = rows
    .map((r) => `<tr>${r.map((c, i) => `<td${classOf?.(c, i) ? ` class="${classOf(c, i)}"` : ''}>${esc(c)}</td>`).join('')}</tr>`)
    .join('');
  return `<table><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table>`;
}
