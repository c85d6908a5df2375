/**
 * Unshaped throughput on loopback: a direct connection to the backend, a plain Node pipe (the
 * baseline a user would write), and shaper-proxy with an app that has no shaping. The proxy (the
 * real CLI), the pipe and the backends each run in their own process; the client runs here.
 * Runs alternate between the three paths, round after round, each round starting at another
 * path, so drift (CPU clock, noisy neighbours) hits them alike; the report gives medians.
 */
import os from 'node:os';
import { download, upload } from './lib/client.js';
import { ready, spawnNodeScript, type Child } from './lib/children.js';
import { iperfPath, runIperfClient, startIperfServer, type IperfServer } from './lib/iperf.js';
import { cpuSeconds, machineBusySeconds, peakRssBytes, tcpMemory } from './lib/procstat.js';
import { startProxyChild, type ProxyChild } from './lib/proxy-child.js';
import { listArg, numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';
import {
  DIRECTIONS,
  mb,
  MODES,
  notes,
  summarise,
  tables,
  type Direction,
  type IperfRun,
  type Mode,
  type Processes,
  type Run,
} from './lib/throughput-report.js';

interface Setup {
  backend: Child;
  pipe: Child;
  proxy: ProxyChild;
  iperf?: IperfServer;
  /** mode -> direction -> the port the client dials */
  ports: Record<Mode, Record<Direction, number>>;
  iperfPorts?: Record<Mode, number>;
}

/** Starts the backends, the pipe and the proxy (and iperf3's server); on failure stops what started. */
async function setUp(iperfBin: string | undefined, pipeNoDelay: boolean): Promise<Setup> {
  const started: (() => Promise<void>)[] = [];
  try {
    const iperf = iperfBin ? await startIperfServer(iperfBin) : undefined;
    if (iperf) started.push(() => iperf.child.kill());
    const backend = spawnNodeScript('backend', 'backend', ['sink', 'source']);
    started.push(() => backend.kill());
    const b = await ready<{ sink: number; source: number }>(backend);
    const targets = [`127.0.0.1:${b.sink}`, `127.0.0.1:${b.source}`, ...(iperf ? [`127.0.0.1:${iperf.port}`] : [])];

    const pipe = spawnNodeScript('plain-pipe', 'plain-pipe', [...(pipeNoDelay ? ['--no-delay'] : []), ...targets]);
    started.push(() => pipe.kill());
    const p = await ready<{ ports: number[] }>(pipe);

    const apps: Record<string, string> = { sink: targets[0]!, source: targets[1]! };
    if (iperf) apps['iperf'] = targets[2]!;
    const proxy = await startProxyChild(apps, { probe: ['sink', 'source'] });
    started.push(() => proxy.stop());

    return {
      backend,
      pipe,
      proxy,
      ...(iperf ? { iperf, iperfPorts: { direct: iperf.port, pipe: p.ports[2]!, proxy: proxy.ports['iperf']! } } : {}),
      ports: {
        direct: { up: b.sink, down: b.source },
        pipe: { up: p.ports[0]!, down: p.ports[1]! },
        proxy: { up: proxy.ports['sink']!, down: proxy.ports['source']! },
      },
    };
  } catch (err) {
    await Promise.all(started.map((stop) => stop()));
    throw err;
  }
}

async function tearDown(s: Setup): Promise<void> {
  await Promise.all([s.proxy.stop(), s.pipe.kill(), s.backend.kill(), s.iperf?.child.kill()]);
}

/** One run: the client's measurement plus what the processes (and everything else) spent meanwhile. */
async function measure(s: Setup, mode: Mode, direction: Direction, connections: number, ms: number): Promise<Omit<Run, 'round'>> {
  const middle = mode === 'pipe' ? s.pipe : mode === 'proxy' ? s.proxy.child : undefined;
  const before = { middle: middle && cpuSeconds(middle.pid), backend: cpuSeconds(s.backend.pid), machine: machineBusySeconds() };
  const tcpBefore = tcpMemory();
  const port = s.ports[mode][direction];
  const m = direction === 'up' ? await upload(port, connections, ms) : await download(port, connections, ms);
  const after = { middle: middle && cpuSeconds(middle.pid), backend: cpuSeconds(s.backend.pid), machine: machineBusySeconds() };
  const tcpAfter = tcpMemory();
  const tcp = tcpBefore && tcpAfter && tcpAfter.pages > tcpBefore.pages ? tcpAfter : (tcpBefore ?? tcpAfter);
  await sleep(150); // let the closes settle before the next run

  const delta = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? b - a : undefined);
  const middleCpuSeconds = delta(before.middle, after.middle);
  const backendCpuSeconds = delta(before.backend, after.backend);
  const machine = delta(before.machine, after.machine);
  const ours = m.clientCpuSeconds + (middleCpuSeconds ?? 0) + (backendCpuSeconds ?? NaN);
  const otherLoad = machine === undefined ? NaN : Math.max(0, machine - ours) / (m.seconds * os.cpus().length);
  return {
    ...m,
    mode,
    direction,
    connections,
    ...(middleCpuSeconds !== undefined ? { middleCpuSeconds } : {}),
    ...(backendCpuSeconds !== undefined ? { backendCpuSeconds } : {}),
    ...(Number.isNaN(otherLoad) ? {} : { otherLoad }),
    ...(tcp ? { tcpMemory: tcp } : {}),
  };
}

/** Round r starts at another path, so no path always runs right after the same one. */
const rotated = (r: number): Mode[] => MODES.map((_, i) => MODES[(i + r) % MODES.length]!);

export const throughput: Scenario = {
  name: 'throughput',
  describe: 'unshaped throughput: direct vs plain Node pipe vs shaper-proxy, upload and download (+ iperf3 if installed)',
  options: {
    duration: { type: 'string', default: '5', description: 'seconds per run' },
    connections: { type: 'string', default: '1', description: 'parallel connections per run; a list like 1,4 runs each' },
    rounds: { type: 'string', default: '2', description: 'rounds of direct/pipe/proxy runs; the report gives medians' },
    warmup: { type: 'string', default: '0.5', description: 'seconds of warm-up per path and direction, not counted (0: none)' },
    'pipe-no-delay': { type: 'boolean', default: false, description: "set TCP_NODELAY on the plain pipe's sockets, as the proxy does" },
    'skip-iperf': { type: 'boolean', default: false, description: 'do not run iperf3 even when it is installed' },
  },

  async run(args: Args): Promise<Result> {
    const seconds = numberArg(args, 'duration');
    const connectionList = listArg(args, 'connections');
    const rounds = numberArg(args, 'rounds');
    const warmup = Number(args['warmup']);
    const pipeNoDelay = args['pipe-no-delay'] === true;
    if (!Number.isInteger(rounds)) throw new Error(`--rounds: "${String(args['rounds'])}" is not a whole number`);
    if (!(warmup >= 0)) throw new Error(`--warmup: "${String(args['warmup'])}" is not a number of seconds`);
    const iperfBin = args['skip-iperf'] ? undefined : iperfPath();
    const progress = (line: string) => process.stderr.write(`${line}\n`);

    const s = await setUp(iperfBin, pipeNoDelay);
    const runs: Run[] = [];
    const iperfRuns: IperfRun[] = [];
    const iperfErrors: string[] = [];
    let processes: Processes;
    let proxyLogged: string;
    try {
      if (warmup > 0) {
        const n = Math.max(...connectionList);
        for (const mode of MODES) for (const direction of DIRECTIONS) await measure(s, mode, direction, n, warmup * 1000);
      }
      for (let round = 0; round < rounds; round++) {
        for (const connections of connectionList) {
          for (const direction of DIRECTIONS) {
            for (const mode of rotated(round)) {
              const run = { round, ...(await measure(s, mode, direction, connections, seconds * 1000)) };
              runs.push(run);
              progress(`round ${round + 1}/${rounds}  ${direction.padEnd(4)} x${connections}  ${mode.padEnd(6)} ${mb(run.bytesPerSecond).padStart(6)} MB/s`);
            }
          }
        }
      }
      if (iperfBin && s.iperfPorts) {
        for (const mode of MODES) {
          try {
            const r = await runIperfClient(iperfBin, s.iperfPorts[mode], seconds);
            iperfRuns.push({ mode, bitsPerSecond: r.bitsPerSecondReceived, seconds: r.seconds });
            progress(`iperf3 ${mode.padEnd(6)} ${(r.bitsPerSecondReceived / 1e9).toFixed(2)} Gbit/s`);
          } catch (err) {
            // The bench client's numbers are the main result: keep them when iperf3 fails.
            iperfErrors.push(`iperf3 ${mode}: ${(err as Error).message}`);
          }
          await sleep(150);
        }
      }
      const pids = { proxy: s.proxy.child.pid, pipe: s.pipe.pid, backend: s.backend.pid };
      processes = {
        cpuSeconds: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)])),
        peakRssBytes: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, peakRssBytes(pid)])),
      };
      proxyLogged = (s.proxy.child.stdout + s.proxy.child.stderr).trim();
    } finally {
      await tearDown(s);
    }

    const summary = summarise(runs, connectionList);
    const extraNotes: string[] = [];
    extraNotes.push(...iperfErrors);
    if (!iperfBin) {
      extraNotes.push(
        args['skip-iperf']
          ? 'iperf3: skipped (--skip-iperf).'
          : 'iperf3: not on PATH, skipped (Debian package iperf3; the bench does not install it); all numbers come from the bench client.',
      );
    }
    if (proxyLogged) extraNotes.push(`the proxy logged (level warn):\n${proxyLogged.slice(0, 2000)}`);
    return {
      params: { durationSeconds: seconds, connections: connectionList, rounds, warmupSeconds: warmup, pipeNoDelay, iperf3: iperfBin ?? null },
      tables: tables(runs, summary, iperfRuns, processes, { rounds, seconds }),
      notes: [...notes(runs, summary), ...extraNotes],
      data: { summary, runs, iperf3: iperfRuns, processes, proxyConfig: s.proxy.config },
    };
  },
};
