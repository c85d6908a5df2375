/** The caps bench's table and HTML report (one section per tier, a chart per tier and direction). */
import { htmlPage, htmlTable, lineChart, type Series } from '../svg.js';
import type { Table } from '../scenario.js';
import { DIRS, LEVELS, fmtPct, fmtRate, type Dir, type Level, type Measurement, type Skip, type TierPlan, type Verdict } from './plan.js';

export interface Row {
  m: Measurement;
  measured: number;
  jain: number | null;
  firstSecond: number;
  verdict: Verdict;
  /** aggregate rate over time, [s since the first byte, bytes/s] */
  series: [number, number][];
  /** window, s since the first byte */
  window: [number, number];
}

export const COLUMNS = ['tier', 'level', 'direction', 'conns', 'cap', 'expected', 'measured', 'error', 'Jain', '1st s / bound', 'tolerance', 'result'];

export function tableRows(rows: Row[], skips: Skip[]): string[][] {
  const out = rows.map((r) => [
    r.m.tier,
    r.m.level,
    r.m.dir,
    `${r.m.clients.length}${r.m.customers > 1 ? ` (${r.m.customers} cust.)` : ''}`,
    fmtRate(r.m.cap),
    fmtRate(r.m.expected),
    fmtRate(r.measured),
    fmtPct(r.verdict.error),
    r.jain === null ? '-' : r.jain.toFixed(4),
    `${(r.firstSecond / 1e3).toFixed(1)} / ${(r.m.firstSecondBound / 1e3).toFixed(1)} kB`,
    r.verdict.tolerance,
    r.verdict.pass ? 'PASS' : 'FAIL',
  ]);
  for (const s of skips) out.push([s.tier, s.level, s.dir, '-', fmtRate(s.cap), '-', '-', '-', '-', '-', '-', 'SKIP']);
  const order = (r: string[]) => `${r[0]} ${LEVELS.indexOf(r[1] as Level)} ${DIRS.indexOf(r[2] as Dir)}`;
  return out.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

export function capsTable(rows: Row[], skips: Skip[], seconds: number): Table {
  return {
    title: `Caps per tier (rates over a ${seconds} s window after warm-up; 1st s = bytes in the first second after the first byte vs cap × 1 s + burst)`,
    columns: COLUMNS,
    rows: tableRows(rows, skips),
  };
}

const LEVEL_COLORS: Record<Level, string> = { connection: '#2563eb', customer: '#16a34a', total: '#9333ea' };

export function htmlReport(title: string, plans: TierPlan[], rows: Row[], notes: string[], table: Table): string {
  const failed = rows.filter((r) => !r.verdict.pass).length;
  const parts: string[] = [];
  parts.push(`<p>${rows.length} measurements, <span class="${failed ? 'fail' : 'pass'}">${failed ? `${failed} FAIL` : 'all PASS'}</span>.</p>`);
  parts.push(htmlTable(table.columns, table.rows, (c, i) => (i === table.columns.length - 1 ? (c === 'PASS' ? 'pass' : c === 'FAIL' ? 'fail' : undefined) : undefined)));
  const reasons = rows.filter((r) => r.verdict.reasons.length).map((r) => `${r.m.tier} ${r.m.level} ${r.m.dir}: ${r.verdict.reasons.join('; ')}`);
  if (reasons.length) parts.push(`<h2>Failures</h2><ul>${reasons.map((r) => `<li class="fail">${esc(r)}</li>`).join('')}</ul>`);
  for (const plan of plans) {
    parts.push(`<h2>Tier ${esc(plan.tier)}</h2>`);
    const charts: string[] = [];
    for (const dir of DIRS) {
      const mine = rows.filter((r) => r.m.tier === plan.tier && r.m.dir === dir);
      if (!mine.length) continue;
      const unit = Math.max(...mine.map((r) => r.m.cap)) >= 1e6 ? 1e6 : 1e3;
      const unitName = unit === 1e6 ? 'MB/s' : 'kB/s';
      const series: Series[] = mine.map((r) => ({
        name: `${r.m.level} (${r.m.clients.length} conn${r.m.clients.length > 1 ? 's' : ''})`,
        color: LEVEL_COLORS[r.m.level],
        points: r.series.map(([x, y]) => [x, y / unit] as [number, number]),
      }));
      const hlines = mine.map((r) => ({ y: r.m.expected / unit, label: `${r.m.level} cap ${fmtRate(r.m.expected)}`, color: LEVEL_COLORS[r.m.level] }));
      charts.push(
        lineChart(series, {
          title: `${plan.tier} — ${dir} (${dir === 'down' ? 'source backend → client' : 'client → sink backend'})`,
          xLabel: 's since the first byte (trailing 0.5 s average)',
          yLabel: unitName,
          width: 560,
          height: 280,
          hlines,
        }),
      );
    }
    if (charts.length) parts.push(`<div class="charts">${charts.join('')}</div>`);
    const tierNotes = [...plan.notes, ...plan.skips.map((s) => `${s.level} ${s.dir} skipped: ${s.reason}`), ...rows.filter((r) => r.m.tier === plan.tier).flatMap((r) => r.m.notes.map((n) => `${r.m.level} ${r.m.dir}: ${n}`))];
    if (tierNotes.length) parts.push(`<ul>${tierNotes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  }
  if (notes.length) parts.push(`<h2>Notes</h2><ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  return htmlPage(title, parts.join('\n'));
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
