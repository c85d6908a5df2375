/** The caps bench's table and HTML report (one section per tier, a chart per tier and direction). */
import { htmlPage, htmlTable, lineChart, type Series } from '../svg.js';
import type { Table } from '../scenario.js';
import { DIRS, LEVELS, fmtPct, type Dir, type Level, type Measurement, type Skip, type TierPlan, type Verdict } from './plan.js';
import { byteUnit, byteUnits, fmtIn, type CapUnits } from './units.js';

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

/** The table's rows: rates of each row in the unit its cap is written in (`units`). */
export function tableRows(rows: Row[], skips: Skip[], units: CapUnits = byteUnits): string[][] {
  const out = rows.map((r) => [
    r.m.tier,
    r.m.level,
    r.m.dir,
    `${r.m.clients.length}${r.m.customers > 1 ? ` (${r.m.customers} cust.)` : ''}`,
    ...[r.m.cap, r.m.expected, r.measured].map((bps) => fmtIn(bps, units(r.m.tier, r.m.level, r.m.dir))),
    fmtPct(r.verdict.error),
    r.jain === null ? '-' : r.jain.toFixed(4),
    `${(r.firstSecond / 1e3).toFixed(1)} / ${(r.m.firstSecondBound / 1e3).toFixed(1)} kB`,
    r.verdict.tolerance,
    r.verdict.pass ? 'PASS' : 'FAIL',
  ]);
  for (const s of skips) out.push([s.tier, s.level, s.dir, '-', fmtIn(s.cap, units(s.tier, s.level, s.dir)), '-', '-', '-', '-', '-', '-', 'SKIP']);
  const order = (r: string[]) => `${r[0]} ${LEVELS.indexOf(r[1] as Level)} ${DIRS.indexOf(r[2] as Dir)}`;
  return out.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

export function capsTable(rows: Row[], skips: Skip[], seconds: number, units: CapUnits = byteUnits): Table {
  return {
    title: `Caps per tier (rates over a ${seconds} s window after warm-up, in the config's units; 1st s = bytes in the first second after the first byte vs cap × 1 s + burst)`,
    columns: COLUMNS,
    rows: tableRows(rows, skips, units),
  };
}

/** The bench's last line: `caps: 8 PASS, 0 FAIL, 4 SKIP`. */
export function verdictLine(rows: Row[], skips: Skip[]): string {
  const failed = rows.filter((r) => !r.verdict.pass).length;
  return `caps: ${rows.length - failed} PASS, ${failed} FAIL, ${skips.length} SKIP`;
}

const LEVEL_COLORS: Record<Level, string> = { connection: '#2563eb', customer: '#16a34a', total: '#9333ea' };

export function htmlReport(title: string, plans: TierPlan[], rows: Row[], notes: string[], table: Table, verdict: string, units: CapUnits = byteUnits): string {
  const failed = rows.filter((r) => !r.verdict.pass).length;
  const parts: string[] = [];
  parts.push(`<p class="${failed ? 'fail' : 'pass'}">${esc(verdict)}</p>`);
  parts.push(htmlTable(table.columns, table.rows, (c, i) => (i === table.columns.length - 1 ? (c === 'PASS' ? 'pass' : c === 'FAIL' ? 'fail' : undefined) : undefined)));
  const reasons = rows.filter((r) => r.verdict.reasons.length).map((r) => `${r.m.tier} ${r.m.level} ${r.m.dir}: ${r.verdict.reasons.join('; ')}`);
  if (reasons.length) parts.push(`<h2>Failures</h2><ul>${reasons.map((r) => `<li class="fail">${esc(r)}</li>`).join('')}</ul>`);
  for (const plan of plans) {
    parts.push(`<h2>Tier ${esc(plan.tier)}</h2>`);
    const charts: string[] = [];
    for (const dir of DIRS) {
      const mine = rows.filter((r) => r.m.tier === plan.tier && r.m.dir === dir);
      if (!mine.length) continue;
      // the axis in the unit of the largest cap drawn, as the config writes it
      const top = mine.reduce((a, b) => (b.m.cap > a.m.cap ? b : a));
      const axis = units(plan.tier, top.m.level, dir) ?? byteUnit(top.m.cap);
      const series: Series[] = mine.map((r) => ({
        name: `${r.m.level} (${r.m.clients.length} conn${r.m.clients.length > 1 ? 's' : ''})`,
        color: LEVEL_COLORS[r.m.level],
        points: r.series.map(([x, y]) => [x, y / axis.bytes] as [number, number]),
      }));
      const hlines = mine.map((r) => ({ y: r.m.expected / axis.bytes, label: `${r.m.level} cap ${fmtIn(r.m.expected, units(plan.tier, r.m.level, dir))}`, color: LEVEL_COLORS[r.m.level] }));
      charts.push(
        lineChart(series, {
          title: `${plan.tier} — ${dir} (${dir === 'down' ? 'source backend → client' : 'client → sink backend'})`,
          xLabel: 's since the first byte (trailing 0.5 s average)',
          yLabel: axis.name,
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
