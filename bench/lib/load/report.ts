/**
 * `--report FILE`: the whole run as JSON plus a self-contained HTML page (inline SVG charts, no
 * CDN): throughput and p50/p99/p999 latency against connections (one point per sweep step), and
 * rates and connections over time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { htmlPage, htmlTable, lineChart } from '../svg.js';
import type { Measurement } from './engine.js';

export interface LoadReport {
  scenario: 'load';
  startedAt: string;
  params: Record<string, unknown>;
  measurements: Measurement[];
  notes: string[];
}

/** FILE.html -> (FILE.json, FILE.html); FILE.json -> (FILE.json, FILE.html); FILE -> (FILE.json, FILE.html) */
export function reportPaths(file: string): { json: string; html: string } {
  const ext = path.extname(file).toLowerCase();
  const base = ext === '.json' || ext === '.html' ? file.slice(0, -ext.length) : file;
  return { json: `${base}.json`, html: `${base}.html` };
}

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function errorsText(errors: Record<string, number>): string {
  const e = Object.entries(errors).sort((a, b) => b[1] - a[1]);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

/** One row per measurement, shared by the console table and the HTML page. */
export const SUMMARY_COLUMNS = ['connections', 'seconds', 'sent', 'answered', 'dropped', 'req/s', 'MB/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p999 ms', 'max ms', 'errors', 'cpu %'];

export function summaryRow(m: Measurement): string[] {
  const t = m.total;
  const l = t.latencyMs;
  return [
    String(m.connections),
    fmt(m.seconds, 2),
    String(t.sent),
    String(t.answered),
    String(t.dropped),
    fmt(t.requestsPerSecond),
    fmt(t.bytesPerSecond / 1e6, 3),
    fmt(l.p50, 3),
    fmt(l.p90, 3),
    fmt(l.p99, 3),
    fmt(l.p999, 3),
    fmt(l.max, 3),
    errorsText(t.errors),
    fmt(m.cpu.percentOfCore),
  ];
}

export function renderHtml(r: LoadReport): string {
  const ms = r.measurements;
  const byConn = (f: (m: Measurement) => number) => ms.map((m) => [m.connections, f(m)] as [number, number]);
  const logX = ms.length > 2 && Math.max(...ms.map((m) => m.connections)) / Math.max(1, Math.min(...ms.map((m) => m.connections))) >= 50;
  const charts = [
    lineChart([{ name: 'requests/s', points: byConn((m) => m.total.requestsPerSecond) }], {
      title: 'Throughput vs connections (per port)',
      xLabel: 'connections per port',
      yLabel: 'answered messages / s',
      logX,
    }),
    lineChart([{ name: 'MB/s (sent + received)', points: byConn((m) => m.total.bytesPerSecond / 1e6) }], {
      title: 'Bytes/s vs connections',
      xLabel: 'connections per port',
      yLabel: 'MB/s',
      logX,
    }),
    lineChart(
      [
        { name: 'p50', points: byConn((m) => m.total.latencyMs.p50) },
        { name: 'p99', points: byConn((m) => m.total.latencyMs.p99) },
        { name: 'p999', points: byConn((m) => m.total.latencyMs.p999) },
      ],
      { title: 'Latency vs connections', xLabel: 'connections per port', yLabel: 'ms', logX },
    ),
  ];
  const overTime = ms.map((m) =>
    lineChart(
      [
        { name: 'req/s', points: m.samples.map((s) => [s.t, s.requestsPerSecond] as [number, number]) },
        ...(m.samples.some((s) => s.targetRate !== undefined)
          ? [{ name: 'target req/s', dashed: true, points: m.samples.map((s) => [s.t, s.targetRate ?? NaN] as [number, number]) }]
          : []),
      ],
      { title: `Rate over time (${m.connections} connections per port)`, xLabel: 'seconds', yLabel: 'answered messages / s' },
    ),
  );
  // a shaped connection count gets its own chart (on the rate's axis it would be a flat line)
  const connectionCharts = ms
    .filter((m) => new Set(m.samples.map((s) => s.targetConnections)).size > 1)
    .map((m) =>
      lineChart(
        [
          { name: 'open', points: m.samples.map((s) => [s.t, s.connections] as [number, number]) },
          { name: 'target', dashed: true, points: m.samples.map((s) => [s.t, s.targetConnections] as [number, number]) },
        ],
        { title: `Connections over time (peak ${m.connections} per port)`, xLabel: 'seconds', yLabel: 'connections' },
      ),
    );
  const ports = ms.flatMap((m) =>
    m.ports.map((p) => [String(m.connections), p.app, String(p.port), String(p.answered), String(p.dropped), fmt(p.requestsPerSecond), fmt(p.latencyMs.p99, 3), errorsText(p.errors)]),
  );
  const params = Object.entries(r.params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  const body = [
    `<p>Started ${r.startedAt}.</p>`,
    '<h2>Summary</h2>',
    htmlTable(SUMMARY_COLUMNS, ms.map(summaryRow)),
    '<h2>Charts</h2>',
    `<div class="charts">${[...charts, ...overTime, ...connectionCharts].join('')}</div>`,
    '<h2>Per port</h2>',
    htmlTable(['connections', 'app', 'port', 'answered', 'dropped', 'req/s', 'p99 ms', 'errors'], ports),
    ...(r.notes.length ? ['<h2>Notes</h2>', `<ul>${r.notes.map((n) => `<li>${n.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!)}</li>`).join('')}</ul>`] : []),
    '<h2>Parameters</h2>',
    htmlTable(['flag', 'value'], params),
  ].join('\n');
  return htmlPage('shaper-bench load', body);
}

export function writeReport(file: string, r: LoadReport): { json: string; html: string } {
  const p = reportPaths(file);
  fs.mkdirSync(path.dirname(path.resolve(p.json)), { recursive: true });
  fs.writeFileSync(p.json, `${JSON.stringify(r, null, 2)}\n`);
  fs.writeFileSync(p.html, renderHtml(r));
  return p;
}
