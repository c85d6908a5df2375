#!/usr/bin/env node
/**
 * The bench runner:  node dist/bench/run.js <scenario> [--flags]   (npm run bench -- <scenario> ...)
 * Runs one scenario, prints its tables and writes the full result as JSON to
 * bench/results/<scenario>-<timestamp>.json. `--help` lists the scenarios and their flags.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { RESULTS_DIR, ROOT } from './lib/children.js';
import { formatTable, type Scenario } from './lib/scenario.js';
import { throughput } from './throughput.js';
import { shaping } from './shaping.js';
import { observe } from './observe.js';
import { caps } from './caps.js';
import { load } from './load.js';
import { peers } from './peers.js';
import { fleet } from './fleet.js';
import { admission } from './admission.js';
import { conns } from './conns.js';
import { soak } from './soak.js';
import { sources } from './sources.js';
import { library } from './library.js';
import { timeouts } from './timeouts.js';
import { relay } from './relay.js';
import { plans } from './plans.js';
import { preconnect } from './preconnect.js';
import { wake } from './wake.js';
import { upgrade } from './upgrade.js';
import { tracing } from './tracing.js';

/** Add a scenario: one file in bench/ exporting a Scenario, one line here. */
const SCENARIOS: Record<string, Scenario> = Object.fromEntries([throughput, shaping, observe, peers, load, caps, conns, sources, soak, fleet, admission, timeouts, library, relay, plans, preconnect, wake, upgrade, tracing].map((s) => [s.name, s]));

const RESULTS = RESULTS_DIR;

function usage(): string {
  const names = Object.values(SCENARIOS);
  const width = Math.max(...names.map((s) => s.name.length));
  return [
    'Usage: node dist/bench/run.js <scenario> [--flags]     (or: npm run bench -- <scenario> [--flags])',
    '',
    'Scenarios:',
    ...names.map((s) => `  ${s.name.padEnd(width)}  ${s.describe}`),
    '',
    `"<scenario> --help" lists its flags. Results go to ${path.relative(process.cwd(), RESULTS) || '.'}/<scenario>-<timestamp>.json.`,
    '',
  ].join('\n');
}

function scenarioUsage(s: Scenario): string {
  const flags = Object.entries(s.options).map(([name, o]) => {
    const left = o.type === 'string' ? `--${name} ${String(o.default ?? '')}`.trimEnd() : `--${name}`;
    return [left, o.description] as const;
  });
  const width = Math.max(...flags.map(([l]) => l.length));
  return [`Usage: node dist/bench/run.js ${s.name} [--flags]`, '', s.describe, '', ...flags.map(([l, d]) => `  ${l.padEnd(width)}  ${d}`), ''].join('\n');
}

function environment(): Record<string, unknown> {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    memoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
    commit: git(['rev-parse', 'HEAD']),
    dirty: (git(['status', '--porcelain']) ?? '') !== '',
  };
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return;
  }
  const scenario = SCENARIOS[name];
  if (!scenario) throw new Error(`unknown scenario "${name}"\n\n${usage()}`);
  const options = Object.fromEntries(
    Object.entries(scenario.options).map(([k, o]) => [k, o.default === undefined ? { type: o.type } : { type: o.type, default: o.default }]),
  ) as Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>;
  let values;
  try {
    values = parseArgs({ args: rest, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n\n${scenarioUsage(scenario)}`);
  }
  if (values['help']) {
    process.stdout.write(scenarioUsage(scenario));
    return;
  }

  const startedAt = new Date();
  const env = environment();
  const result = await scenario.run(values as Record<string, string | boolean | undefined>);
  const finishedAt = new Date();

  const wallSeconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
  const report = { scenario: scenario.name, describe: scenario.describe, startedAt, finishedAt, wallSeconds, environment: env, ...result };
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `${scenario.name}-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);

  const out = [
    '',
    ...result.tables.map((t) => `${formatTable(t)}\n`),
    ...(result.notes.length ? ['Notes:', ...result.notes.map((n) => `- ${n}`), ''] : []),
    `${scenario.name}: ${wallSeconds.toFixed(1)} s on ${env['cpus']} CPUs, node ${process.version}; wrote ${path.relative(process.cwd(), file)}`,
    ...(result.verdict ? [result.verdict] : []),
    '',
  ];
  process.stdout.write(out.join('\n'));
}

main(process.argv.slice(2)).then(
  // Exit explicitly: a stray socket or timer must not keep the runner alive. A scenario whose
  // checks failed sets process.exitCode = 1 after producing its report (e.g. caps).
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
