/**
 * shaper-bench plans: the plan features of issue 15 against their promises, one case per function
 * (`--cases quota,schedule`; a case is a function from the options to a row and its data, listed
 * in CASES):
 *
 * - quota: one customer downloads through a tier with a quota and a `then` tier; the quota switch
 *   must come within 1 % of the quota's bytes (the accounting's count when the switch happened,
 *   from the proxy's `quota` event), and after it the rate must be the `then` tier's within 2 %.
 * - schedule: a tier whose schedule window raises the customer cap begins 2 s into the run (the
 *   proxy's wall clock is set so that a window boundary, a full minute, comes then); the window
 *   must be in force within 100 ms of the boundary (the proxy's `window` event) and the client
 *   must see the new rate soon after.
 *
 * - peak (bench/lib/plans-peak.ts, the proxy in its own process): a peak rate holds within 2 %
 *   while the burst lasts, then the base rate within 2 %.
 *
 * For quota and schedule the proxy runs in this process (its wall clock is the only thing the
 * bench sets); the backend writes without end, the client counts what it reads with timestamps.
 * On a busy machine the figures are noisy: the rates come from the client's side of the loopback.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { subscribe, type QuotaEvent, type WindowEvent } from '../src/channels.js';
import { parseConfig } from '../src/config/load.js';
import { createProxy, type Proxy } from '../src/index.js';
import { silentLogger } from '../src/log.js';
import { peakCase } from './lib/plans-peak.js';
import { numberArg, sleep, type Args, type Result, type Scenario, type Table } from './lib/scenario.js';

const MB = 1_000_000;

interface Row {
  case: string;
  measure: string;
  expected: string;
  got: string;
  error: string;
  pass: boolean;
}

interface CaseOutcome {
  rows: Row[];
  data: Record<string, unknown>;
  notes: string[];
}

type Case = (args: Args) => Promise<CaseOutcome>;

/** A backend that writes as fast as it is read, until closed. */
async function endlessSource(): Promise<{ address: string; close(): Promise<void> }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    const pump = (): void => {
      while (!s.destroyed && s.write(chunk));
    };
    s.on('drain', pump);
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A downloading client: cumulative bytes with performance.now() timestamps. */
interface Download {
  times: number[];
  bytes: number[];
  total: number;
  socket: net.Socket;
}

function download(port: number): Promise<Download> {
  return new Promise((resolve, reject) => {
    const d: Download = { times: [], bytes: [], total: 0, socket: net.connect(port, '127.0.0.1') };
    d.socket.on('data', (b: Buffer) => {
      d.total += b.length;
      d.times.push(performance.now());
      d.bytes.push(d.total);
    });
    d.socket.once('connect', () => resolve(d));
    d.socket.once('error', reject);
  });
}

/** Bytes read by time `t` (the last sample at or before it). */
function bytesAt(d: Download, t: number): number {
  let lo = 0;
  let hi = d.times.length - 1;
  if (hi < 0 || d.times[0]! > t) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (d.times[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return d.bytes[lo]!;
}

const rateOver = (d: Download, from: number, to: number): number => ((bytesAt(d, to) - bytesAt(d, from)) / (to - from)) * 1000;

async function proxyOn(args: Args, raw: Record<string, unknown>, wall?: () => number): Promise<{ proxy: Proxy; port: number }> {
  const dataPlane = String(args['plane']);
  const config = parseConfig({ bind: '127.0.0.1', admin: false, dataPlane, log: { level: 'silent' }, health: { interval: '1h' }, drainTimeout: '0s', ...raw });
  const proxy = createProxy(config, { log: silentLogger(), ...(wall ? { wall } : {}) });
  await proxy.start();
  const port = proxy.listeners().find((l) => l.state === 'listening')!.boundPort!;
  return { proxy, port };
}

/**
 * Event-loop stalls from now on (the proxy, client and backend share this loop): a 5 ms ticker
 * records each gap over 25 ms as [its start, ms]. A stall longer than a bucket's burst costs the
 * shaped rate what it could not send meanwhile, so the notes name any in a judged window.
 */
function stallWatch(): { stop(): void; longestIn(from: number, to: number): number; all: [number, number][] } {
  const all: [number, number][] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last > 25) all.push([last, now - last]);
    last = now;
  }, 5);
  return {
    all,
    stop: () => clearInterval(timer),
    longestIn: (from, to) => Math.max(0, ...all.filter(([at, ms]) => at < to && at + ms > from).map(([, ms]) => ms)),
  };
}

const stallNote = (what: string, ms: number): string[] =>
  ms > 50 ? [`${what}: the event loop stalled ${ms.toFixed(0)} ms in the measured window (the machine's load): a token bucket cannot send what its burst does not hold meanwhile, so the rate there is low by about that share of the window.`] : [];

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
const mbps = (x: number): string => `${(x / MB).toFixed(3)} MB/s`;

/** The quota switch: where it happens, and the rate after it. */
const quota: Case = async (args) => {
  const quotaBytes = numberArg(args, 'quota-mb') * MB;
  const fast = numberArg(args, 'rate') * MB;
  const slow = numberArg(args, 'then-rate') * MB;
  const source = await endlessSource();
  const { proxy, port } = await proxyOn(args, {
    apps: [{ name: 'bench', ports: [0], targets: [source.address] }],
    accounting: { period: 'month', timezone: 'UTC' },
    tiers: {
      plan: { customer: { down: `${fast / MB}MB/s` }, quota: { bytes: quotaBytes, direction: 'down', then: 'slow' } },
      slow: { customer: { down: `${slow / MB}MB/s` } },
    },
    defaultTier: 'plan',
  });
  let switched: { at: number; event: QuotaEvent } | undefined;
  const unsubscribe = subscribe(proxy, { quota: (event) => void (switched ??= { at: performance.now(), event }) });
  const stalls = stallWatch();
  try {
    const d = await download(port);
    const deadline = performance.now() + (quotaBytes / fast) * 1000 * 3 + 5000;
    while (!switched && performance.now() < deadline) await sleep(20);
    if (!switched) throw new Error('no quota switch happened');
    const settle = numberArg(args, 'settle') * 1000;
    const window = numberArg(args, 'window') * 1000;
    await sleep(settle + window + 100);
    d.socket.destroy();
    const used = switched.event.used;
    const over = (used - quotaBytes) / quotaBytes;
    const after = rateOver(d, switched.at + settle, switched.at + settle + window);
    const before = rateOver(d, switched.at - 1500, switched.at - 500);
    const rateError = (after - slow) / slow;
    return {
      rows: [
        { case: 'quota', measure: 'bytes counted at the switch', expected: `${quotaBytes} (+1 %)`, got: String(used), error: pct(over), pass: over >= 0 && over <= 0.01 },
        { case: 'quota', measure: `rate before the switch`, expected: mbps(fast), got: mbps(before), error: pct((before - fast) / fast), pass: true },
        { case: 'quota', measure: `rate after the switch (${settle / 1000}-${(settle + window) / 1000} s)`, expected: mbps(slow), got: mbps(after), error: pct(rateError), pass: Math.abs(rateError) <= 0.02 },
      ],
      data: { quotaBytes, fast, slow, used, clientBytesAtSwitch: bytesAt(d, switched.at), rateBefore: before, rateAfter: after, settle, window, stalls: stalls.all },
      notes: [
        'quota: "bytes counted at the switch" is the accounting\'s count of the customer\'s bytes when the proxy moved it to "then" (its quota event); the client\'s own count then lags by what is in flight.',
        `quota: the rate after the switch leaves out the first ${settle / 1000} s (the "then" tier's bucket starts full).`,
        ...stallNote('quota, rate after the switch', stalls.longestIn(switched.at + settle, switched.at + settle + window)),
      ],
    };
  } finally {
    stalls.stop();
    unsubscribe();
    await proxy.shutdown(0);
    await source.close();
  }
};

/** A schedule window's boundary: when the window is in force, and when the client sees its rate. */
const schedule: Case = async (args) => {
  const base = numberArg(args, 'rate') * MB;
  const evening = numberArg(args, 'window-rate') * MB;
  const leadMs = 2000;
  // The proxy's wall clock runs ahead so that a full minute (a window's start) comes leadMs from now.
  const nowWall = Date.now();
  const boundaryWall = Math.ceil((nowWall + 60_000) / 60_000) * 60_000;
  const offset = boundaryWall - (nowWall + leadMs);
  const boundaryPerf = performance.now() + (boundaryWall - offset - Date.now());
  const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
  const source = await endlessSource();
  const { proxy, port } = await proxyOn(
    args,
    {
      apps: [{ name: 'bench', ports: [0], targets: [source.address] }],
      accounting: { period: 'day', timezone: 'UTC' },
      tiers: {
        business: {
          customer: { down: `${base / MB}MB/s` },
          schedule: [{ days: 'daily', from: hhmm(boundaryWall), to: hhmm(boundaryWall + 10 * 60_000), customer: { down: `${evening / MB}MB/s` } }],
        },
      },
      defaultTier: 'business',
    },
    () => Date.now() + offset,
  );
  let began: { at: number; event: WindowEvent } | undefined;
  const unsubscribe = subscribe(proxy, { window: (event) => void (began ??= { at: performance.now(), event }) });
  const stalls = stallWatch();
  try {
    const d = await download(port);
    await sleep(Math.max(0, boundaryPerf - performance.now()) + 2500);
    d.socket.destroy();
    if (!began) throw new Error('the window did not begin');
    const applied = began.at - boundaryPerf;
    // The client sees the new rate: the first 50 ms after the boundary that moves more than the midpoint.
    const mid = (base + evening) / 2;
    let seen = NaN;
    for (let t = boundaryPerf; t < boundaryPerf + 1500; t += 5) {
      if (rateOver(d, t, t + 50) > mid) {
        seen = t + 50 - boundaryPerf;
        break;
      }
    }
    const before = rateOver(d, boundaryPerf - 1200, boundaryPerf - 200);
    const after = rateOver(d, boundaryPerf + 1000, boundaryPerf + 2000);
    return {
      rows: [
        { case: 'schedule', measure: 'window in force after the boundary', expected: '<= 100 ms', got: `${applied.toFixed(1)} ms`, error: '', pass: applied >= -1 && applied <= 100 },
        { case: 'schedule', measure: 'client sees the window\'s rate (50 ms window)', expected: '<= 100 ms', got: `${seen.toFixed(0)} ms`, error: '', pass: seen <= 100 },
        { case: 'schedule', measure: 'rate before the window', expected: mbps(base), got: mbps(before), error: pct((before - base) / base), pass: true },
        { case: 'schedule', measure: 'rate in the window (1-2 s)', expected: mbps(evening), got: mbps(after), error: pct((after - evening) / evening), pass: Math.abs(after - evening) / evening <= 0.02 },
      ],
      data: { base, evening, appliedMs: applied, clientSeesMs: seen, rateBefore: before, rateAfter: after, boundary: new Date(boundaryWall).toISOString(), wallOffsetMs: offset, stalls: stalls.all },
      notes: [
        'schedule: "client sees" is the end of a 50 ms measuring window that begins at or after the boundary, so it is never below 50 ms; client, proxy and backend share one event loop here, so a busy machine delays it most.',
        'schedule: the proxy\'s wall clock is shifted so that a window boundary (a full minute) comes 2 s into the run; "in force" is when the proxy applied the window (its window event), "client sees" the end of the first 50 ms after the boundary whose rate is past the midpoint of the two caps.',
        ...stallNote('schedule, client sees the window\'s rate', stalls.longestIn(boundaryPerf, boundaryPerf + 100)),
        ...stallNote('schedule, rate before the window', stalls.longestIn(boundaryPerf - 1200, boundaryPerf - 200)),
        ...stallNote('schedule, rate in the window', stalls.longestIn(boundaryPerf + 1000, boundaryPerf + 2000)),
      ],
    };
  } finally {
    stalls.stop();
    unsubscribe();
    await proxy.shutdown(0);
    await source.close();
  }
};

/** The peak rate: its own module, the proxy in its own process; one row. */
const peak: Case = async () => {
  const r = await peakCase();
  return { rows: [{ case: 'peak', measure: r.case, expected: r.target, got: r.measured, error: '', pass: r.pass }], data: r.data, notes: [] };
};

/** The cases, in the order they run; another plan feature adds its function here. */
const CASES: Record<string, Case> = { quota, schedule, peak };

export const plans: Scenario = {
  name: 'plans',
  describe: 'plan features: the quota switch (within 1 % of the quota, then the "then" rate within 2 %), a schedule boundary (within 100 ms), a peak rate (within 2 %, then the base rate)',
  options: {
    cases: { type: 'string', default: Object.keys(CASES).join(','), description: `cases to run (${Object.keys(CASES).join(', ')})` },
    plane: { type: 'string', default: 'auto', description: 'quota, schedule: the proxy\'s dataPlane: auto (native where built), native or js' },
    rate: { type: 'string', default: '8', description: 'the plan\'s customer rate, MB/s (schedule: outside the window)' },
    'quota-mb': { type: 'string', default: '20', description: 'quota, MB (down)' },
    'then-rate': { type: 'string', default: '2', description: 'the "then" tier\'s customer rate, MB/s' },
    'window-rate': { type: 'string', default: '16', description: 'schedule: the customer rate inside the window, MB/s' },
    settle: { type: 'string', default: '1', description: 'quota: s after the switch before the rate is measured' },
    window: { type: 'string', default: '4', description: 'quota: s the rate after the switch is measured over' },
  },
  async run(args: Args): Promise<Result> {
    const names = String(args['cases']).split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = names.filter((n) => !CASES[n]);
    if (unknown.length) throw new Error(`--cases: ${unknown.join(', ')} (cases: ${Object.keys(CASES).join(', ')})`);
    const rows: Row[] = [];
    const data: Record<string, unknown> = {};
    const notes: string[] = [];
    for (const name of names) {
      process.stderr.write(`plans: ${name}…\n`);
      const out = await CASES[name]!(args);
      rows.push(...out.rows);
      data[name] = out.data;
      notes.push(...out.notes);
    }
    const failed = rows.filter((r) => !r.pass).length;
    if (failed > 0) {
      process.exitCode = 1;
      notes.unshift(`${failed} measurement(s) FAILED: exit code 1`);
    }
    const table: Table = {
      title: 'plans',
      columns: ['case', 'measure', 'expected', 'got', 'error', 'verdict'],
      rows: rows.map((r) => [r.case, r.measure, r.expected, r.got, r.error, r.pass ? 'PASS' : 'FAIL']),
    };
    return { params: { ...args }, tables: [table], notes, data };
  },
};
