/**
 * The load scenario's flags -> what the engine needs: targets from the proxy's config file
 * (every app port, or the named apps / ports), the payload, the schedule and the limits.
 */
import fs from 'node:fs';
import { loadConfigFile } from '../../../src/config/load.js';
import { listArg, numberArg, type Args, type OptionSpec } from '../scenario.js';
import { MODES, type Mode } from './connection.js';
import type { EngineOptions, Target } from './engine.js';
import { parseShape, type Shape } from './schedule.js';

export const LOAD_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', description: 'the proxy config file; targets every app port (or --apps / --ports)' },
  apps: { type: 'string', description: 'only these apps, e.g. web,api' },
  ports: { type: 'string', description: 'only these ports, e.g. 5001,5002 (works without --config)' },
  host: { type: 'string', default: '127.0.0.1', description: 'address to connect to (loopback only)' },
  sources: { type: 'string', description: 'local addresses to spread connections over, e.g. 127.0.0.2,127.0.0.3 (different customers)' },
  mode: { type: 'string', default: 'ping-pong', description: `${MODES.join(' | ')}` },
  connections: { type: 'string', default: '1', description: 'connections per port (the peak when --shape-of connections)' },
  duration: { type: 'string', default: '5', description: 'seconds per measurement (every run stops by itself)' },
  messages: { type: 'string', default: '0', description: 'messages per connection, then it closes (0: until the duration ends)' },
  size: { type: 'string', default: '64', description: 'payload bytes (upload: bytes per write)' },
  message: { type: 'string', description: 'payload text instead of --size bytes' },
  'message-file': {
    type: 'string',
    description: 'messages from a file, one a line (its line ending not sent, blank lines skipped); each connection sends them in turn from the first line, over and over',
  },
  burst: { type: 'string', default: '10', description: 'burst mode: messages per burst' },
  delay: { type: 'string', default: '100', description: 'delay mode: ms between sends' },
  shape: { type: 'string', default: 'constant', description: 'constant | step | sine | saw' },
  'shape-of': { type: 'string', default: 'connections', description: 'connections | rate: what the shape drives' },
  'max-rps': { type: 'string', default: '100', description: 'peak messages/s per port when --shape-of rate' },
  min: { type: 'string', default: '1', description: 'floor of sine and saw shapes' },
  step: { type: 'string', default: '1', description: 'step shape: start and increment' },
  'step-every': { type: 'string', default: '1', description: 'step shape: seconds per step' },
  period: { type: 'string', default: '5', description: 'sine and saw: seconds per cycle' },
  sweep: { type: 'string', description: 'connection counts, one measurement each, e.g. 1,10,100' },
  timeout: { type: 'string', default: '5', description: 'seconds a connect or a reply may take before it counts as an error' },
  drain: { type: 'boolean', default: false, description: 'at the end wait for in-flight replies (bounded by --drain-timeout) instead of stopping at once' },
  'drain-timeout': { type: 'string', default: '2', description: 'seconds to wait when draining' },
  interval: { type: 'string', default: '0.5', description: 'seconds between rate samples (over-time chart)' },
  report: { type: 'string', description: 'write FILE.json and FILE.html (SVG charts); FILE may end in .json or .html' },
  progress: { type: 'boolean', default: false, description: 'show the progress bar even when stdout is not a terminal' },
};

export const MAX_SWEEP_STEPS = 12;
export const MAX_DURATION_S = 600;

export type LoadPlan = Omit<EngineOptions, 'onSample' | 'connections'> & {
  connections: Shape;
  sweep?: number[];
  shapeOf: 'connections' | 'rate';
  progress: boolean;
  report?: string;
};

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** A number >= 0 (numberArg wants > 0). */
function countArg(args: Args, name: string): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name}: "${String(args[name])}" is not a whole number >= 0`);
  return v;
}

export async function resolveTargets(args: Args): Promise<Target[]> {
  const host = String(args['host'] ?? '127.0.0.1');
  if (!LOOPBACK.test(host)) throw new Error(`--host: "${host}" is not a loopback address; the load tester only targets this machine (use 127.0.0.1)`);
  const onlyPorts = args['ports'] ? listArg(args, 'ports') : undefined;
  if (!args['config']) {
    if (!onlyPorts) throw new Error('load: give --config FILE (the proxy config) or --ports 5001,5002');
    return onlyPorts.map((port) => ({ app: `port ${port}`, host, port }));
  }
  const config = await loadConfigFile(String(args['config']));
  const apps = args['apps'] ? String(args['apps']).split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  for (const a of apps ?? []) {
    if (!config.apps.some((x) => x.name === a)) {
      throw new Error(`--apps: no app "${a}" in ${String(args['config'])} (apps: ${config.apps.map((x) => x.name).join(', ')})`);
    }
  }
  const targets = config.apps
    .filter((a) => !apps || apps.includes(a.name))
    .flatMap((a) => a.ports.map((port) => ({ app: a.name, host, port })))
    .filter((t) => !onlyPorts || onlyPorts.includes(t.port));
  for (const p of onlyPorts ?? []) {
    if (!targets.some((t) => t.port === p)) throw new Error(`--ports: ${p} is not a port of ${apps ? `apps ${apps.join(',')}` : 'any app'} in ${String(args['config'])}`);
  }
  if (targets.some((t) => t.port === 0)) throw new Error('load: an app listens on port 0 (a free port picked at start); name its ports with --ports');
  if (targets.length === 0) throw new Error('load: no ports to target');
  return targets;
}

/** A message file's lines as messages: split on \n, a \r before it dropped, blank lines skipped; bytes as written. */
export function messagesOfFile(file: string): Buffer[] {
  let text: Buffer;
  try {
    text = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`--message-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const lines: Buffer[] = [];
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf(0x0a, start);
    if (end < 0) end = text.length;
    const line = text.subarray(start, end > start && text[end - 1] === 0x0d ? end - 1 : end);
    if (line.length > 0) lines.push(line);
    start = end + 1;
  }
  if (lines.length === 0) throw new Error(`--message-file: ${file} has no message (one message a line, blank lines skipped)`);
  return lines;
}

/** The messages a connection sends in turn: the file's lines, --message, or --size bytes of a-z. */
export function payloadsOf(args: Args): Buffer[] {
  if (args['message-file'] !== undefined && args['message'] !== undefined) throw new Error('give --message or --message-file, not both');
  if (args['message-file'] !== undefined) return messagesOfFile(String(args['message-file']));
  if (args['message'] !== undefined) {
    const b = Buffer.from(String(args['message']));
    if (b.length === 0) throw new Error('--message: empty');
    return [b];
  }
  const size = numberArg(args, 'size');
  const b = Buffer.alloc(Math.floor(size));
  for (let i = 0; i < b.length; i++) b[i] = 97 + (i % 26);
  return [b];
}

export async function planOf(args: Args): Promise<LoadPlan> {
  const mode = String(args['mode']) as Mode;
  if (!(MODES as readonly string[]).includes(mode)) throw new Error(`--mode: "${mode}" is not one of ${MODES.join(', ')}`);
  const shapeOf = String(args['shape-of'] ?? 'connections');
  if (shapeOf !== 'connections' && shapeOf !== 'rate') throw new Error(`--shape-of: "${shapeOf}" is not connections or rate`);
  const duration = numberArg(args, 'duration');
  if (duration > MAX_DURATION_S) throw new Error(`--duration: at most ${MAX_DURATION_S} s`);
  const shapeName = parseShape(String(args['shape']));
  const base = {
    min: Number(args['min'] ?? 1),
    step: numberArg(args, 'step'),
    stepEvery: numberArg(args, 'step-every'),
    period: numberArg(args, 'period'),
  };
  if (!(base.min >= 0)) throw new Error(`--min: "${String(args['min'])}" is not a number >= 0`);
  const connections = numberArg(args, 'connections');
  const conn: Shape =
    shapeOf === 'connections' ? { shape: shapeName, max: connections, ...base } : { shape: 'constant', max: connections, ...base };
  const rate: Shape | undefined = shapeOf === 'rate' ? { shape: shapeName, max: numberArg(args, 'max-rps'), ...base } : undefined;
  const sweep = args['sweep'] ? listArg(args, 'sweep') : undefined;
  if (sweep && sweep.length > MAX_SWEEP_STEPS) throw new Error(`--sweep: at most ${MAX_SWEEP_STEPS} steps`);
  const sources = args['sources'] ? String(args['sources']).split(',').map((s) => s.trim()).filter(Boolean) : [];
  for (const s of sources) if (!LOOPBACK.test(s)) throw new Error(`--sources: "${s}" is not a loopback address`);
  return {
    targets: await resolveTargets(args),
    mode,
    payloads: payloadsOf(args),
    connections: conn,
    rate,
    shapeOf,
    messages: countArg(args, 'messages'),
    burst: Math.floor(numberArg(args, 'burst')),
    delayMs: numberArg(args, 'delay'),
    durationMs: duration * 1000,
    timeoutMs: numberArg(args, 'timeout') * 1000,
    drain: args['drain'] === true,
    drainTimeoutMs: numberArg(args, 'drain-timeout') * 1000,
    sources,
    sampleMs: numberArg(args, 'interval') * 1000,
    sweep,
    progress: args['progress'] === true || process.stdout.isTTY === true,
    report: args['report'] ? String(args['report']) : undefined,
  };
}
