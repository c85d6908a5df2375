/**
 * conns: what ten thousand open connections cost the proxy. The proxy (a child, its descriptor
 * limit raised to the hard limit) holds `--connections` connections, `--active` of them
 * downloading at `--rate` each, the rest idle; per kind (shaped: the active ones through a tier and
 * the scheduler; unshaped: a paced backend piped straight through; all-shaped: the idle ones in the
 * tier too) it reports RSS before, at the peak and after, the growth per connection, heap vs
 * external from the proxy's /metrics, and new-connection latency (connect to first echoed byte)
 * with none vs all of them open.
 */
import { spawnNodeScript, ready, freePort, startProxyProcess } from './lib/children.js';
import { holdConnections, percentile, probeLatency } from './lib/conns-client.js';
import { fdLimits, openFds, peakRssBytes, rssBytes } from './lib/procstat.js';
import { proxyMemory, type ProxyMemory } from './lib/proxy-memory.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

type Kind = 'shaped' | 'unshaped' | 'all-shaped';
const KINDS: readonly Kind[] = ['shaped', 'unshaped', 'all-shaped'];

interface KindResult {
  kind: Kind;
  connections: number;
  active: number;
  rssBaseline: number;
  rssOpen: number;
  rssPeak: number;
  rssAfterClose: number;
  fdsOpen: number | undefined;
  memBaseline: ProxyMemory;
  memOpen: ProxyMemory;
  perConnection: { rss: number; peakRss: number; heapUsed: number; external: number };
  latencyIdle: { p50: number; p99: number; max: number };
  latencyOpen: { p50: number; p99: number; max: number };
  /** bytes/s each active connection received while the probes ran (median of them), against --rate */
  activeRate: number;
  lost: number;
  openSeconds: number;
}

const KB = 1024;
const MB = 1024 * 1024;
const log = (s: string) => process.stderr.write(`conns: ${s}\n`);

function summary(ms: number[]): { p50: number; p99: number; max: number } {
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms) };
}

/** How many connections fit: the proxy needs two descriptors each (see descriptorBudget), this process one. */
export function connectionsThatFit(wanted: number, proxyHard: number, selfSoft: number): number {
  const proxyBudget = Math.floor((proxyHard - 64 - Math.max(16, Math.ceil(proxyHard / 100))) / 2);
  return Math.max(1, Math.min(wanted, proxyBudget, selfSoft - 256));
}

async function runKind(kind: Kind, n: number, active: number, rate: number, probes: number, parallel: number, settle: number): Promise<KindResult> {
  const backend = spawnNodeScript('conns-backend', 'backend', ['echo', 'paced', 'source', '--rate', String(rate)], { fdLimit: 'hard' });
  const ports = await ready<{ echo: number; paced: number; source: number }>(backend);
  const [idlePort, activePort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    apps: [
      { name: 'idle', ports: [idlePort], targets: [`127.0.0.1:${ports.echo}`] },
      kind === 'unshaped'
        ? { name: 'active', ports: [activePort], targets: [`127.0.0.1:${ports.paced}`] }
        : { name: 'active', ports: [activePort], targets: [`127.0.0.1:${ports.source}`] },
    ],
    bind: '127.0.0.1',
    admin: { listen: `127.0.0.1:${adminPort}` },
    health: { interval: '1h' },
    log: { level: 'warn' },
    drainTimeout: '0s',
    ...(kind === 'unshaped'
      ? {}
      : {
          tiers: { capped: { connection: { down: rate, up: rate } } },
          // all-shaped: the idle ones in the tier too (each then owns its shaping flows and read buffer)
          customers: [{ id: 'downloads', tier: 'capped', match: { apps: kind === 'all-shaped' ? ['active', 'idle'] : ['active'] } }],
        }),
  };
  const proxy = await startProxyProcess(config, [adminPort, idlePort, activePort], 'warn', { fdLimit: 'hard' });
  const pid = proxy.child.pid;
  // --settle 0 (the tests): every wait short too.
  const pause = (ms: number) => sleep(settle > 0 ? ms : Math.min(ms, 200));
  try {
    await pause(1000);
    const latencyIdleMs = await probeLatency(idlePort, probes);
    await pause(500);
    const memBaseline = await proxyMemory(adminPort);
    const rssBaseline = rssBytes(pid)!;
    log(`${kind}: baseline RSS ${(rssBaseline / MB).toFixed(1)} MB; opening ${active} active + ${n - active} idle connections`);
    const t0 = performance.now();
    const downloads = await holdConnections(activePort, active, { handshake: false, parallel, sources: 1 });
    const idle = await holdConnections(idlePort, n - active, { handshake: true, parallel, sources: 8 });
    const openSeconds = (performance.now() - t0) / 1000;
    log(`${kind}: ${n} open after ${openSeconds.toFixed(1)} s; settling ${settle} s, then ${probes} probes`);
    // Long enough for V8's memory reducer to collect what opening them left behind, so the
    // figures are what the open connections hold, not garbage not yet collected.
    await sleep(settle * 1000);
    const before = downloads.bytes.slice();
    const p0 = performance.now();
    const latencyOpenMs = await probeLatency(idlePort, probes);
    await sleep(Math.max(0, (settle > 0 ? 2000 : 600) - (performance.now() - p0)));
    const seconds = (performance.now() - p0) / 1000;
    const rates = [...downloads.bytes].map((b, i) => (b - before[i]!) / seconds).sort((a, b) => a - b);
    const memOpen = await proxyMemory(adminPort);
    const rssOpen = rssBytes(pid)!;
    const rssPeak = peakRssBytes(pid)!;
    const fdsOpen = openFds(pid);
    const lost = downloads.lost + idle.lost;
    downloads.close();
    idle.close();
    await pause(3000);
    const rssAfterClose = rssBytes(pid)!;
    return {
      kind,
      connections: n,
      active,
      rssBaseline,
      rssOpen,
      rssPeak,
      rssAfterClose,
      fdsOpen,
      memBaseline,
      memOpen,
      perConnection: {
        rss: (rssOpen - rssBaseline) / n,
        peakRss: (rssPeak - rssBaseline) / n,
        heapUsed: (memOpen.heapUsed - memBaseline.heapUsed) / n,
        external: (memOpen.external - memBaseline.external) / n,
      },
      latencyIdle: summary(latencyIdleMs),
      latencyOpen: summary(latencyOpenMs),
      activeRate: rates[rates.length >> 1] ?? 0,
      lost,
      openSeconds,
    };
  } finally {
    await proxy.stop();
    await backend.kill();
  }
}

export const conns: Scenario = {
  name: 'conns',
  describe: '10,000 concurrent connections (100 downloading, the rest idle): proxy RSS per connection, heap vs external, new-connection latency at 0 vs 10k open',
  options: {
    connections: { type: 'string', default: '10000', description: 'connections held open at once (capped by the descriptor limits; see the notes)' },
    active: { type: 'string', default: '100', description: 'of them downloading' },
    rate: { type: 'string', default: '262144', description: 'bytes/s per downloading connection (the tier cap when shaped, the backend pace when unshaped)' },
    kinds: { type: 'string', default: 'shaped,unshaped,all-shaped', description: 'shaped: the active ones through a tier; unshaped: a paced backend; all-shaped: the idle ones through the tier too' },
    probes: { type: 'string', default: '200', description: 'new-connection latency probes, at 0 and at N open' },
    parallel: { type: 'string', default: '200', description: 'connects in flight while opening' },
    settle: { type: 'string', default: '10', description: 'seconds to wait once all are open before measuring' },
  },
  async run(args: Args): Promise<Result> {
    const wanted = numberArg(args, 'connections');
    const rate = numberArg(args, 'rate');
    const probes = numberArg(args, 'probes');
    const parallel = numberArg(args, 'parallel');
    const settle = Number(args['settle']);
    if (!(settle >= 0)) throw new Error(`--settle: "${String(args['settle'])}" is not a number of seconds`);
    const kinds = String(args['kinds']).split(',') as Kind[];
    if (kinds.some((k) => !KINDS.includes(k))) throw new Error(`--kinds: "${String(args['kinds'])}" is not a list of ${KINDS.join(', ')}`);
    const self = fdLimits() ?? { soft: Infinity, hard: Infinity };
    const n = connectionsThatFit(wanted, self.hard, self.soft);
    const active = Math.min(numberArg(args, 'active'), n);
    const notes: string[] = [];
    if (n < wanted) {
      notes.push(
        `${n} connections, not ${wanted}: the hard descriptor limit is ${self.hard} (ulimit -Hn; raising it needs CAP_SYS_RESOURCE) and the proxy needs two per connection plus its spare; this process's soft limit is ${self.soft}.`,
      );
    }
    const results: KindResult[] = [];
    for (const kind of kinds) results.push(await runKind(kind, n, active, rate, probes, parallel, settle));
    notes.push(
      'RSS is the proxy process only: the kernel\'s socket buffers are not in it. Per connection = (RSS with all open - baseline) / connections; peak uses VmHWM. heap/external from the proxy\'s /metrics.',
      'Latency is connect() to the first echoed byte of a new connection, one probe at a time; on a shared 2-CPU machine it is noisy.',
    );
    const f1 = (v: number) => v.toFixed(1);
    const row = (label: string, cell: (r: KindResult) => string) => [label, ...results.map(cell)];
    return {
      params: { connections: n, wanted, active, rate, kinds, probes, parallel, settle, fdLimits: self },
      tables: [
        {
          title: `conns: ${n} connections through the proxy, ${active} downloading at ${rate} B/s`,
          columns: ['', ...results.map((r) => r.kind)],
          rows: [
            row('RSS baseline (MB)', (r) => f1(r.rssBaseline / MB)),
            row('RSS all open (MB)', (r) => f1(r.rssOpen / MB)),
            row('RSS peak (MB)', (r) => f1(r.rssPeak / MB)),
            row('RSS after close (MB)', (r) => f1(r.rssAfterClose / MB)),
            row('RSS / connection (KB)', (r) => f1(r.perConnection.rss / KB)),
            row('peak RSS / connection (KB)', (r) => f1(r.perConnection.peakRss / KB)),
            row('heap used / connection (KB)', (r) => f1(r.perConnection.heapUsed / KB)),
            row('external / connection (KB)', (r) => f1(r.perConnection.external / KB)),
            row('heap used baseline -> open (MB)', (r) => `${f1(r.memBaseline.heapUsed / MB)} -> ${f1(r.memOpen.heapUsed / MB)}`),
            row('proxy fds open', (r) => String(r.fdsOpen ?? '?')),
            row('new conn p50 / p99, 0 open (ms)', (r) => `${r.latencyIdle.p50.toFixed(2)} / ${r.latencyIdle.p99.toFixed(2)}`),
            row(`new conn p50 / p99, ${n} open (ms)`, (r) => `${r.latencyOpen.p50.toFixed(2)} / ${r.latencyOpen.p99.toFixed(2)}`),
            row('active rate, median (KB/s)', (r) => f1(r.activeRate / KB)),
            row('opening took (s)', (r) => f1(r.openSeconds)),
            row('connections lost', (r) => String(r.lost)),
          ],
        },
      ],
      notes,
      data: results,
    };
  },
};
