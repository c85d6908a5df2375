/**
 * shaper-bench caps: verify every tier of a config. For each tier and direction, the connection
 * cap (one connection), the customer cap (many connections of one customer) and the tier total
 * (several customers), with Jain's index among connections sharing a bucket and the first second's
 * bytes against cap × 1 s + burst. The proxy runs as a child on the config with its apps pointed at
 * the caps backend (or `--proxy HOST:PORT` measures a running proxy whose targets run
 * `node dist/bench/lib/caps/backend.js`). Rates are printed in the units the config writes each cap
 * in; the last line is the verdict (`caps: 8 PASS, 0 FAIL, 4 SKIP`). Exits non-zero when a row FAILs.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfigFile, parseConfig } from '../src/config/load.js';
import type { ProxyConfig } from '../src/config/types.js';
import { ready, spawnNodeScript } from './lib/children.js';
import { jain, sum } from './lib/downloaders.js';
import { measure } from './lib/caps/measure.js';
import { decide, planCaps, type AppPort, type TierPlan } from './lib/caps/plan.js';
import { readRawConfig, startCapsProxy, type CapsProxy } from './lib/caps/proxy.js';
import { capsTable, htmlReport, verdictLine, type Row } from './lib/caps/report.js';
import { rateSeries } from './lib/caps/series.js';
import { configUnits, fmtIn } from './lib/caps/units.js';
import { numberArg, type Args, type Result, type Scenario } from './lib/scenario.js';

export interface CapsOptions {
  config: string;
  /** a running proxy instead of a child one */
  proxy?: string;
  seconds: number;
  warmup: number;
  tolerance: number;
  jainMin: number;
  tiers?: string[];
  report?: string;
  log?: (line: string) => void;
}

export interface CapsOutcome {
  plans: TierPlan[];
  rows: Row[];
  notes: string[];
  failed: number;
  /** `caps: 8 PASS, 0 FAIL, 4 SKIP` */
  verdict: string;
  result: Result;
}

/** Proxy ports to connect to, preferring plain TCP apps; with --proxy only the one given. */
function portsOf(config: ProxyConfig, only?: number): AppPort[] {
  const apps = [...config.apps].sort((a, b) => Number(a.protocol !== 'tcp') - Number(b.protocol !== 'tcp'));
  const all = apps.flatMap((a) => a.ports.map((port) => ({ app: a.name, port })));
  if (only === undefined) return all;
  return [all.find((p) => p.port === only) ?? { app: config.apps[0]?.name ?? '', port: only }];
}

export async function runCaps(o: CapsOptions): Promise<CapsOutcome> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const original = await loadConfigFile(o.config); // reports config problems against the user's file
  const raw = await readRawConfig(o.config);
  const units = configUnits(raw); // rates are printed as the config spells each cap
  const notes: string[] = [
    `tolerance: rate within ±${o.tolerance * 100}% of the expected rate for caps ≤ 200 MB/s (above: FAIL only when above cap × (1 + tol)); Jain ≥ ${o.jainMin} among connections sharing a bucket; first second ≤ cap × 1 s + burst (+ tol × cap of measurement slack).`,
    'down: the client counts what it receives from the source backend; up: the sink backend reports every 10 ms what passed the proxy (timestamps on the shared clock).',
    'clients are put into a tier by their source address: a customer\'s 127.x address from match.sources, or for the defaultTier fresh 127.0.1.x addresses no customer matches (each its own customer).',
    `warm-up ${o.warmup} s (at least 1 s after the first byte), window ${o.seconds} s.`,
  ];
  const load0 = os.loadavg()[0]!;
  let backend: ReturnType<typeof spawnNodeScript> | undefined;
  let proxy: CapsProxy | undefined;
  let config: ProxyConfig;
  let host = '127.0.0.1';
  let ports: AppPort[];
  const explain = () => (proxy ? `; proxy stderr: ${proxy.child.stderr.slice(-1000).trim() || '(none)'}` : '');
  try {
    if (o.proxy) {
      const m = /^(.*):(\d+)$/.exec(o.proxy);
      if (!m) throw new Error(`--proxy: "${o.proxy}" is not HOST:PORT`);
      host = m[1]!.replace(/^\[|\]$/g, '');
      config = original;
      ports = portsOf(config, Number(m[2]));
      notes.push(`running proxy at ${o.proxy}: its targets must run the caps backend (node dist/bench/lib/caps/backend.js --port N); config ${o.config} is used for the tiers and customers only.`);
    } else {
      backend = spawnNodeScript('caps-backend', 'caps/backend', []);
      const { port } = await ready<{ port: number }>(backend);
      proxy = await startCapsProxy(raw, `127.0.0.1:${port}`);
      config = parseConfig(JSON.parse(await fs.readFile(proxy.file, 'utf8')));
      ports = portsOf(config);
      notes.push(`proxy child on ${path.basename(o.config)} rewritten: apps → caps backend 127.0.0.1:${port}, ports ${[...proxy.portMap].map(([a, b]) => `${a}→${b}`).join(', ')}.`);
    }
    const plans = planCaps(config, ports, o.tiers, units);
    const rows: Row[] = [];
    for (const plan of plans) {
      for (const m of plan.measurements) {
        log(`caps: ${m.tier} ${m.level} ${m.dir}: ${m.clients.length} connection(s) of ${m.customers} customer(s)…`);
        if (m.settleMs) await new Promise((r) => setTimeout(r, m.settleMs));
        const run = await measure(m.clients, m.dir, { host, warmupMs: o.warmup * 1000, windowMs: o.seconds * 1000, paceMs: m.paceMs, explain });
        const measured = sum(run.rates);
        const fairness = m.clients.length > 1 ? jain(run.rates) : null;
        const verdict = decide({ expected: m.expected, measured, jain: fairness, firstSecond: run.firstSecond, firstSecondBound: m.firstSecondBound }, o.tolerance, o.jainMin);
        rows.push({
          m,
          measured,
          jain: fairness,
          firstSecond: run.firstSecond,
          verdict,
          series: rateSeries(run.histories, run.firstByteAt, run.t1),
          window: [(run.t0 - run.firstByteAt) / 1000, (run.t1 - run.firstByteAt) / 1000],
        });
        const unit = units(m.tier, m.level, m.dir);
        log(`caps: ${m.tier} ${m.level} ${m.dir}: ${fmtIn(measured, unit)} of ${fmtIn(m.expected, unit)} -> ${verdict.pass ? 'PASS' : `FAIL (${verdict.reasons.join('; ')})`}`);
      }
    }
    const skips = plans.flatMap((p) => p.skips);
    const table = capsTable(rows, skips, o.seconds, units);
    const failed = rows.filter((r) => !r.verdict.pass).length;
    const verdict = verdictLine(rows, skips);
    const allNotes = [
      ...plans.flatMap((p) => [...p.notes, ...p.skips.map((s) => `${s.tier} ${s.level} ${s.dir} skipped: ${s.reason}`)]),
      ...rows.flatMap((r) => [...r.m.notes, ...r.verdict.reasons].map((n) => `${r.m.tier} ${r.m.level} ${r.m.dir}: ${n}`)),
      ...notes,
    ];
    allNotes.push(`load average ${load0.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end on ${os.cpus().length} CPUs: client, proxy and backends share them, so a busy machine shows as rates below the cap (most in the up direction).`);
    if (!rows.length) allNotes.unshift('nothing was measured (see the notes above)');
    const data = {
      config: o.config,
      measurements: rows.map((r) => ({ ...r.m, measured: r.measured, jain: r.jain, firstSecond: r.firstSecond, verdict: r.verdict, window: r.window, series: r.series })),
      skips,
      failed,
    };
    const result: Result = {
      params: { config: o.config, proxy: o.proxy ?? null, seconds: o.seconds, warmup: o.warmup, tolerance: o.tolerance, jain: o.jainMin, tiers: o.tiers ?? null, report: o.report ?? null },
      tables: [table],
      notes: allNotes,
      data,
      verdict,
    };
    if (o.report) {
      const title = `shaper-bench caps — ${path.basename(o.config)}`;
      await fs.mkdir(path.dirname(path.resolve(o.report)), { recursive: true });
      await fs.writeFile(o.report, htmlReport(title, plans, rows, allNotes, table, verdict, units));
      const json = o.report.replace(/\.html?$/i, '') + '.json';
      await fs.writeFile(json, `${JSON.stringify({ ...result, generatedAt: new Date() }, null, 2)}\n`);
      allNotes.push(`report: ${o.report} and ${json}`);
    }
    return { plans, rows, notes: allNotes, failed, verdict, result };
  } finally {
    await proxy?.stop();
    await backend?.kill();
  }
}

export const caps: Scenario = {
  name: 'caps',
  describe: 'verify every tier of a config: connection/customer/total caps both ways, fairness, first-second overshoot (exit 1 on FAIL)',
  options: {
    config: { type: 'string', default: 'config/tiers.json', description: 'config whose tiers to verify' },
    proxy: { type: 'string', description: 'HOST:PORT of a running proxy (its targets run dist/bench/lib/caps/backend.js) instead of a child proxy' },
    tiers: { type: 'string', description: 'only these tiers (comma-separated)' },
    seconds: { type: 'string', default: '3', description: 'measuring window per measurement, s' },
    warmup: { type: 'string', default: '1', description: 'warm-up before the window, s (the window starts ≥ 1 s after the first byte)' },
    tolerance: { type: 'string', default: '0.03', description: 'allowed relative rate error' },
    jain: { type: 'string', default: '0.95', description: 'least Jain index among connections sharing a bucket' },
    report: { type: 'string', description: 'write an HTML report (charts per tier) here, and the JSON beside it' },
  },
  async run(args: Args): Promise<Result> {
    const out = await runCaps({
      config: String(args['config']),
      proxy: typeof args['proxy'] === 'string' ? args['proxy'] : undefined,
      tiers: typeof args['tiers'] === 'string' ? args['tiers'].split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      seconds: numberArg(args, 'seconds'),
      warmup: Number(args['warmup']) >= 0 ? Number(args['warmup']) : numberArg(args, 'warmup'),
      tolerance: numberArg(args, 'tolerance'),
      jainMin: numberArg(args, 'jain'),
      report: typeof args['report'] === 'string' ? args['report'] : undefined,
    });
    // The runner prints the report, then exits with process.exitCode (bench/run.ts).
    if (out.failed > 0) {
      process.exitCode = 1;
      out.result.notes.unshift(`${out.failed} measurement(s) FAILED: exit code 1`);
    }
    return out.result;
  },
};
