/**
 * The native data plane alone against what users would put in its place: iperf3, one stream,
 * through (a) the native relay (bench/lib/native-relay.ts: a Node child that accepts, dials and
 * hands over, unshaped) on the child's event loop, (b) the same engine on a data-plane thread (a
 * worker's loop), (c) nginx stream (one worker), (d) HAProxy (one process), (e) shaper-proxy's
 * CLI as it is (the JavaScript data plane), (f) a plain Node pipe, and iperf3 straight to its server for reference. Gbit/s and the middle's CPU seconds
 * per GB (from /proc/PID/stat), medians over alternating rounds, each run on a fresh middle.
 * Scenario 2: many connections each capped (the peers bench's capped measurement): the native
 * relay with shaped flows under the proxy's Scheduler, against nginx's proxy_download_rate and
 * the proxy's JavaScript data plane.
 * Scenario 3: redis-benchmark GET, 50 clients, no pipelining, through each middle: req/s, p50, p99
 * and the middle's CPU.
 */
import { iperfPath, runIperfClient, startIperfServer } from './lib/iperf.js';
import { ready, spawnNodeScript, type Child } from './lib/children.js';
import { detect, startHaproxy, startNginx, startPipe, startProxy, type Backends, type Middle } from './lib/peers/middles.js';
import { capped, type CappedRun } from './lib/peers/measure.js';
import { cpuSeconds } from './lib/procstat.js';
import { median, numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';
import { loadNative } from '../src/native/load.js';
import { redisTools, runRedisBenchmark, startRedis, type RedisRun } from './lib/redis.js';

const MIDDLES = ['native', 'thread', 'nginx', 'haproxy', 'proxy', 'pipe', 'direct'] as const;
type MiddleName = (typeof MIDDLES)[number];

interface Started {
  port: number;
  child?: Child;
  stop(): Promise<void>;
}

interface Run {
  middle: MiddleName;
  round: number;
  gbps: number;
  cpuSecondsPerGB: number;
  cpuSeconds: number;
  bytes: number;
}

async function startNative(target: number, pipeSize: number, cap = 0, thread = false): Promise<Started> {
  const args = ['--pipe-size', String(pipeSize), '--cap', String(cap), ...(thread ? ['--thread'] : []), `127.0.0.1:${target}`];
  const child = spawnNodeScript('native-relay', 'native-relay', args);
  try {
    const p = await ready<{ ports: number[] }>(child);
    return { port: p.ports[0]!, child, stop: () => child.kill() };
  } catch (err) {
    await child.kill();
    throw err;
  }
}

export const relay: Scenario = {
  name: 'relay',
  describe: 'the native data plane alone vs nginx, HAProxy and a Node pipe: iperf3 single stream, Gbit/s and CPU-s per GB',
  options: {
    seconds: { type: 'string', default: '5', description: 'seconds per iperf3 run' },
    rounds: { type: 'string', default: '3', description: 'alternating rounds; the table gives medians' },
    middles: { type: 'string', default: MIDDLES.join(','), description: `which middles (${MIDDLES.join(', ')})` },
    reverse: { type: 'boolean', description: 'iperf3 -R: the server sends (the download direction)' },
    'pipe-size': { type: 'string', default: '0', description: "the native relay's pipe capacity in bytes (0: the kernel's 64 KiB)" },
    scenarios: { type: 'string', default: '1,2,3', description: '1: iperf3 single stream; 2: many capped connections; 3: redis-benchmark GET' },
    'redis-requests': { type: 'string', default: '200000', description: 'GET requests per redis-benchmark run (scenario 3, 50 clients)' },
    connections: { type: 'string', default: '1000', description: 'connections in scenario 2' },
    cap: { type: 'string', default: '64', description: 'per-connection cap in KiB/s in scenario 2' },
    'cap-seconds': { type: 'string', default: '5', description: 'measuring window of scenario 2 (after warm-up)' },
  },

  async run(args: Args): Promise<Result> {
    const seconds = numberArg(args, 'seconds');
    const rounds = numberArg(args, 'rounds');
    const reverse = args['reverse'] === true;
    const pipeSize = Number(args['pipe-size']);
    if (!Number.isInteger(pipeSize) || pipeSize < 0) throw new Error(`--pipe-size: "${String(args['pipe-size'])}" is not a whole number of bytes`);
    const wanted = String(args['middles']).split(',').map((s) => s.trim()) as MiddleName[];
    for (const m of wanted) if (!MIDDLES.includes(m)) throw new Error(`--middles: "${m}" is not one of ${MIDDLES.join(', ')}`);
    const scenarios = String(args['scenarios']).split(',').map((x) => x.trim());
    for (const x of scenarios) if (!['1', '2', '3'].includes(x)) throw new Error(`--scenarios: "${x}" is not 1, 2 or 3`);
    const bin = iperfPath();
    if (!bin && scenarios.includes('1')) throw new Error('iperf3 is not on PATH (Debian: iperf3); scenario 1 needs it');
    const avail = detect(new Set(wanted.includes('nginx') ? [] : ['nginx' as const]));
    const notes = [...avail.notes];
    const native = loadNative();
    const active = wanted.filter((m) =>
      m === 'nginx' ? !!avail.nginx : m === 'haproxy' ? !!avail.haproxy : m === 'native' || m === 'thread' ? native.addon !== null : true,
    );
    if (!native.addon && wanted.includes('native')) notes.push(`native: unavailable (${native.reason}), skipped.`);

    const runs: Run[] = [];
    const redisRuns: { middle: MiddleName; round: number; result: RedisRun; cpuSeconds: number }[] = [];
    const cappedRuns: { middle: string; round: number; result: CappedRun }[] = [];
    const errors: string[] = [];
    const iperf = scenarios.includes('1') ? await startIperfServer(bin!) : null;
    const backends: Backends = { source: iperf?.port ?? 0, foo: iperf?.port ?? 0 };
    try {
      for (let round = 0; round < (iperf ? rounds : 0); round++) {
        const order = active.map((_, i) => active[(i + round) % active.length]!);
        for (const middle of order) {
          let m: Started | undefined;
          try {
            m = await start(middle, avail, backends, pipeSize);
            const pid = m.child?.pid;
            const c0 = pid ? (cpuSeconds(pid) ?? NaN) : NaN;
            const r = await runIperfClient(bin!, m.port, seconds, reverse);
            const c1 = pid ? (cpuSeconds(pid) ?? NaN) : NaN;
            const bytes = (r.bitsPerSecondReceived * r.seconds) / 8;
            const cpu = c1 - c0;
            runs.push({ middle, round, gbps: r.bitsPerSecondReceived / 1e9, cpuSeconds: cpu, bytes, cpuSecondsPerGB: cpu / (bytes / 1e9) });
            process.stderr.write(`round ${round + 1}/${rounds}  ${middle.padEnd(8)} ${(r.bitsPerSecondReceived / 1e9).toFixed(2)} Gbit/s  ${pid ? `${(cpu / (bytes / 1e9)).toFixed(3)} CPU-s/GB` : ''}\n`);
          } catch (err) {
            errors.push(`${middle} round ${round + 1}: ${(err as Error).message}`.slice(0, 800));
          } finally {
            await m?.stop();
          }
          await sleep(300);
        }
      }
    } finally {
      await iperf?.child.kill();
    }
    const redis = scenarios.includes('3') ? redisTools() : undefined;
    if (scenarios.includes('3') && !redis) notes.push('Scenario 3 skipped: redis-server or redis-benchmark not on PATH (Debian: redis-server redis-tools).');
    if (redis) {
      const requests = numberArg(args, 'redis-requests');
      const server = await startRedis(redis.server);
      try {
        const b: Backends = { source: server.port, foo: server.port };
        for (let round = 0; round < rounds; round++) {
          for (const middle of active.map((_, i) => active[(i + round) % active.length]!)) {
            let m: Started | undefined;
            try {
              m = await start(middle, avail, b, pipeSize);
              const pid = m.child?.pid;
              const c0 = pid ? (cpuSeconds(pid) ?? NaN) : NaN;
              const result = await runRedisBenchmark(redis.benchmark, m.port, 50, requests);
              const cpu = (pid ? (cpuSeconds(pid) ?? NaN) : NaN) - c0;
              redisRuns.push({ middle, round, result, cpuSeconds: cpu });
              process.stderr.write(`round ${round + 1}/${rounds}  redis ${middle.padEnd(8)} ${result.rps.toFixed(0)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms\n`);
            } catch (err) {
              errors.push(`redis ${middle} round ${round + 1}: ${(err as Error).message}`.slice(0, 800));
            } finally {
              await m?.stop();
            }
            await sleep(300);
          }
        }
      } finally {
        await server.child.kill();
      }
      notes.push(`Scenario 3: redis-benchmark -c 50 -n ${requests} -t get (no pipelining) through each middle to one redis-server; CPU-s per 100k requests is the middle's.`);
    }
    if (scenarios.includes('2')) {
      const n = numberArg(args, 'connections');
      const cap = numberArg(args, 'cap') * 1024;
      const ms = numberArg(args, 'cap-seconds') * 1000;
      const backend = spawnNodeScript('backend', 'backend', ['source', 'foo']);
      try {
        const b = await ready<Backends>(backend);
        // The middles that can cap a connection's download.
        const cappers = active.filter((m) => m === 'native' || m === 'nginx' || m === 'proxy');
        for (let round = 0; round < rounds; round++) {
          for (const middle of cappers.map((_, i) => cappers[(i + round) % cappers.length]!)) {
            let m: Middle | undefined;
            try {
              m = await startCapper(middle, avail, b, cap, pipeSize);
              const result = await capped(m, n, cap, ms);
              cappedRuns.push({ middle, round, result });
              process.stderr.write(
                `round ${round + 1}/${rounds}  capped ${middle.padEnd(7)} ${(result.rate / 1e6).toFixed(3)} MB/s (${(result.error * 100).toFixed(2)}%), Jain ${result.jain.toFixed(4)}, ${result.cpuSeconds.toFixed(2)} CPU-s, ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB\n`,
              );
            } catch (err) {
              errors.push(`capped ${middle} round ${round + 1}: ${(err as Error).message}`.slice(0, 800));
            } finally {
              await m?.stop();
            }
            await sleep(1000);
          }
        }
      } finally {
        await backend.kill();
      }
      notes.push(`Scenario 2: ${n} connections × ${cap / 1024} KiB/s download; due ${((n * cap) / 1e6).toFixed(3)} MB/s; window ${ms / 1000} s after warm-up. native: shaped native flows (16 KiB read-ahead) under src/shaping/scheduler.ts, burst as a tier with rtt 50ms; proxy: the CLI (JavaScript data plane) with the same tier.`);
    }

    const rows = active.map((middle) => {
      const mine = runs.filter((r) => r.middle === middle);
      const gbps = mine.map((r) => r.gbps);
      const per = mine.map((r) => r.cpuSecondsPerGB).filter(Number.isFinite);
      return [
        middle,
        mine.length ? median(gbps).toFixed(2) : '-',
        mine.length ? `${Math.min(...gbps).toFixed(2)}–${Math.max(...gbps).toFixed(2)}` : '-',
        per.length ? median(per).toFixed(3) : '-',
        per.length ? `${Math.min(...per).toFixed(3)}–${Math.max(...per).toFixed(3)}` : '-',
        String(mine.length),
      ];
    });
    if (iperf && native.addon) notes.push(`native: the uv_poll engine on the child\'s event loop, splice socket -> pipe -> socket, unshaped, ${pipeSize ? `${pipeSize}-byte` : "the kernel's 64 KiB"} pipes. thread: the same engine on a worker thread's event loop (epoll there); the main thread accepts, dials and posts the descriptors; CPU is the whole process.`);
    if (avail.nginx) notes.push(`nginx ${avail.nginx.version}: stream, one worker, master_process off (bench/lib/peers/configs.ts).`);
    if (avail.haproxy) notes.push(`haproxy ${avail.haproxy.version}: mode tcp, nbthread 1, -db.`);
    if (active.includes('proxy')) notes.push('proxy: the shaper-proxy CLI as it is (JavaScript data plane), one app, admin off (bench/lib/peers/configs.ts).');
    if (iperf) notes.push('direct: iperf3 to its server without a middle (the ceiling of this machine); CPU-s/GB is the middle process only, not iperf3.');
    notes.push('The machine has few cores shared by iperf3 client, server and the middle: compare rows of one run, not runs of different days.');
    const cappedRows = [...new Set(cappedRuns.map((r) => r.middle))].map((middle) => {
      const mine = cappedRuns.filter((r) => r.middle === middle).map((r) => r.result);
      const med = (f: (r: CappedRun) => number) => median(mine.map(f));
      return [
        middle,
        (med((r) => r.rate) / 1e6).toFixed(3),
        `${(med((r) => r.error) * 100).toFixed(2)} %`,
        med((r) => r.jain).toFixed(4),
        med((r) => r.cpuSeconds).toFixed(2),
        (med((r) => r.peakRssBytes) / 2 ** 20).toFixed(0),
        String(mine.length),
      ];
    });
    const tables = [];
    if (rows.length && iperf) {
      tables.push({
        title: `1. iperf3, 1 stream${reverse ? ' (-R)' : ''}, ${seconds} s × ${rounds} rounds (medians)`,
        columns: ['middle', 'Gbit/s', 'range', 'CPU-s/GB', 'range', 'runs'],
        rows,
      });
    }
    const redisRows = active
      .map((middle) => [middle, redisRuns.filter((r) => r.middle === middle)] as const)
      .filter(([, mine]) => mine.length > 0)
      .map(([middle, mine]) => {
        const per = mine.map((r) => (r.cpuSeconds / Number(args['redis-requests'])) * 1e5).filter(Number.isFinite);
        return [
          middle,
          median(mine.map((r) => r.result.rps)).toFixed(0),
          median(mine.map((r) => r.result.p50)).toFixed(3),
          median(mine.map((r) => r.result.p99)).toFixed(3),
          per.length ? median(per).toFixed(3) : '-',
          String(mine.length),
        ];
      });
    if (redisRows.length) {
      tables.push({
        title: '3. redis-benchmark GET, 50 clients, no pipelining (medians)',
        columns: ['middle', 'req/s', 'p50 ms', 'p99 ms', 'CPU-s/100k req', 'runs'],
        rows: redisRows,
      });
    }
    if (cappedRows.length) {
      tables.push({
        title: `2. ${args['connections']} connections × ${args['cap']} KiB/s (medians)`,
        columns: ['middle', 'MB/s', 'error', 'Jain', 'CPU-s', 'peak RSS MiB', 'runs'],
        rows: cappedRows,
      });
    }
    return {
      params: { seconds, rounds, reverse, pipeSize, scenarios, middles: active },
      tables,
      notes: [...notes, ...errors.map((e) => `error: ${e}`)],
      data: { runs, capped: cappedRuns, redis: redisRuns },
    };
  },
};

/** A middle for the capped scenario, in the shape the peers bench measures. */
async function startCapper(middle: string, avail: ReturnType<typeof detect>, b: Backends, cap: number, pipeSize: number): Promise<Middle> {
  if (middle === 'nginx') return startNginx(avail.nginx!, b, cap);
  if (middle === 'proxy') return startProxy(b, cap);
  const s = await startNative(b.source, pipeSize, cap);
  // The peers bench's Middle names its peer from a fixed list; this one only reports its label.
  return { peer: 'native' as Middle['peer'], child: s.child!, source: s.port, foo: s.port, config: { cap }, stop: s.stop };
}

async function start(middle: MiddleName, avail: ReturnType<typeof detect>, backends: Backends, pipeSize: number): Promise<Started> {
  switch (middle) {
    case 'native':
      return startNative(backends.source, pipeSize);
    case 'thread':
      return startNative(backends.source, pipeSize, 0, true);
    case 'nginx': {
      const m = await startNginx(avail.nginx!, backends, 0);
      return { port: m.source, child: m.child, stop: () => m.stop() };
    }
    case 'haproxy': {
      const m = await startHaproxy(avail.haproxy!, backends, 0);
      return { port: m.source, child: m.child, stop: () => m.stop() };
    }
    case 'proxy': {
      const m = await startProxy(backends, 0);
      return { port: m.source, child: m.child, stop: () => m.stop() };
    }
    case 'pipe': {
      const m = await startPipe(backends);
      return { port: m.source, child: m.child, stop: () => m.stop() };
    }
    case 'direct':
      return { port: backends.source, stop: async () => {} };
  }
}
