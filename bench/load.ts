/**
 * Load tester (seed 001's "Proxy Tester" wish list): N connections per app port of a proxy
 * config, ping-pong / burst / delay messages with per-message latency (hdr histogram), or bulk
 * download / upload; load shaped over time (constant, step, sine, saw) as connection count or
 * message rate; a connection-count sweep; drain or stop at once with dropped messages and errors
 * by kind; its own CPU use; a JSON + HTML report with SVG charts. Every run stops by itself.
 */
import type { Measurement } from './lib/load/engine.js';
import { runLoad } from './lib/load/engine.js';
import { LOAD_OPTIONS, planOf, type LoadPlan } from './lib/load/options.js';
import { progressBar } from './lib/load/progress.js';
import { SUMMARY_COLUMNS, errorsText, summaryRow, writeReport } from './lib/load/report.js';
import type { Args, Result, Scenario, Table } from './lib/scenario.js';

/** Above this share of one core the tester itself may be what limits the numbers. */
export const CPU_WARN_PERCENT = 80;

async function measure(plan: LoadPlan, connections: number, label: string): Promise<Measurement> {
  const bar = plan.progress ? progressBar(label, plan.durationMs / 1000) : undefined;
  try {
    return await runLoad({
      ...plan,
      connections: { ...plan.connections, max: connections },
      onSample: bar ? (s, total) => bar.update(s, total) : undefined,
    });
  } finally {
    bar?.stop();
  }
}

function paramsOf(plan: LoadPlan): Record<string, unknown> {
  return {
    targets: plan.targets.map((t) => `${t.app}@${t.host}:${t.port}`),
    mode: plan.mode,
    messageBytes: plan.payloads.map((p) => p.length),
    connections: plan.connections,
    shapeOf: plan.shapeOf,
    rate: plan.rate,
    messages: plan.messages,
    burst: plan.burst,
    delayMs: plan.delayMs,
    durationSeconds: plan.durationMs / 1000,
    timeoutSeconds: plan.timeoutMs / 1000,
    drain: plan.drain,
    drainTimeoutSeconds: plan.drainTimeoutMs / 1000,
    sources: plan.sources,
    sweep: plan.sweep,
  };
}

export function notesOf(plan: LoadPlan, ms: Measurement[]): string[] {
  const notes: string[] = [];
  for (const m of ms) {
    if (m.cpu.percentOfCore > CPU_WARN_PERCENT) {
      notes.push(
        `WARNING: the tester used ${m.cpu.percentOfCore} % of a core at ${m.connections} connections/port: it may be the bottleneck (fewer connections, or run it on another core with taskset)`,
      );
    }
    if (m.total.dropped > 0) {
      notes.push(
        `${m.total.dropped} message(s) dropped at ${m.connections} connections/port (sent, never answered)${plan.drain ? '' : '; --drain waits for in-flight replies at the end'}`,
      );
    }
    if (m.total.errorCount > 0) notes.push(`errors at ${m.connections} connections/port: ${errorsText(m.total.errors)}`);
  }
  if (plan.mode === 'download' || plan.mode === 'upload') notes.push(`${plan.mode} mode: bulk bytes only, no messages or latency`);
  if (plan.mode === 'upload') notes.push('upload counts bytes handed to the socket: short runs overstate the rate by what socket buffers absorb (a few hundred KB per connection)');
  notes.push(`latency is per message, send to last byte of its echo; req/s counts answered messages over the measured seconds (drain excluded)`);
  return notes;
}

function messagesText(payloads: Buffer[]): string {
  if (payloads.length === 1) return `${payloads[0]!.length} B messages`;
  const sizes = payloads.map((p) => p.length);
  return `${payloads.length} messages in turn (${Math.min(...sizes)}-${Math.max(...sizes)} B)`;
}

export function tablesOf(plan: LoadPlan, ms: Measurement[]): Table[] {
  const tables: Table[] = [
    {
      title: `load: ${plan.mode}, ${plan.targets.length} port(s) (${plan.targets.map((t) => t.port).join(',')}), ${messagesText(plan.payloads)}`,
      columns: SUMMARY_COLUMNS,
      rows: ms.map(summaryRow),
    },
  ];
  if (plan.targets.length > 1) {
    tables.push({
      title: 'per port',
      columns: ['connections', 'app', 'port', 'answered', 'dropped', 'req/s', 'p50 ms', 'p99 ms', 'errors'],
      rows: ms.flatMap((m) =>
        m.ports.map((p) => [
          String(m.connections),
          p.app,
          String(p.port),
          String(p.answered),
          String(p.dropped),
          p.requestsPerSecond.toFixed(1),
          p.latencyMs.p50.toFixed(3),
          p.latencyMs.p99.toFixed(3),
          errorsText(p.errors),
        ]),
      ),
    });
  }
  return tables;
}

export const load: Scenario = {
  name: 'load',
  describe: 'load tester: N connections per app port (--config), ping-pong/burst/delay/download/upload, shaped load, latency percentiles, JSON+HTML report',
  options: LOAD_OPTIONS,
  async run(args: Args): Promise<Result> {
    const plan = await planOf(args);
    const startedAt = new Date().toISOString();
    const steps = plan.sweep ?? [plan.connections.max];
    const measurements: Measurement[] = [];
    for (const [i, n] of steps.entries()) {
      measurements.push(await measure(plan, n, steps.length > 1 ? `${n} conns (${i + 1}/${steps.length})` : `${n} conns`));
    }
    const params = paramsOf(plan);
    const notes = notesOf(plan, measurements);
    if (plan.report) {
      const files = writeReport(plan.report, { scenario: 'load', startedAt, params, measurements, notes });
      notes.push(`report: ${files.json} and ${files.html}`);
    }
    return { params, tables: tablesOf(plan, measurements), notes, data: { measurements } };
  },
};
