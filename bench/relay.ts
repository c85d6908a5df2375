/**
 * The native data plane alone against what users would put in its place: iperf3, one stream,
 * through (a) the native relay (bench/lib/native-relay.ts: a Node child that accepts, dials and
 * hands over, unshaped), (b) nginx stream (one worker), (c) HAProxy (one process), (d) a plain
 * Node pipe, and iperf3 straight to its server for reference. Gbit/s and the middle's CPU seconds
 * per GB (from /proc/PID/stat), medians over alternating rounds, each run on a fresh middle.
 */
import { iperfPath, runIperfClient, startIperfServer } from './lib/iperf.js';
import { ready, spawnNodeScript, type Child } from './lib/children.js';
import { detect, startHaproxy, startNginx, startPipe, type Backends } from './lib/peers/middles.js';
import { cpuSeconds } from './lib/procstat.js';
import { median, numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';
import { loadNative } from '../src/native/load.js';

const MIDDLES = ['native', 'nginx', 'haproxy', 'pipe', 'direct'] as const;
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

async function startNative(target: number, pipeSize: number): Promise<Started> {
  const child = spawnNodeScript('native-relay', 'native-relay', ['--pipe-size', String(pipeSize), `127.0.0.1:${target}`]);
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
  },

  async run(args: Args): Promise<Result> {
    const seconds = numberArg(args, 'seconds');
    const rounds = numberArg(args, 'rounds');
    const reverse = args['reverse'] === true;
    const pipeSize = Number(args['pipe-size']);
    if (!Number.isInteger(pipeSize) || pipeSize < 0) throw new Error(`--pipe-size: "${String(args['pipe-size'])}" is not a whole number of bytes`);
    const wanted = String(args['middles']).split(',').map((s) => s.trim()) as MiddleName[];
    for (const m of wanted) if (!MIDDLES.includes(m)) throw new Error(`--middles: "${m}" is not one of ${MIDDLES.join(', ')}`);
    const bin = iperfPath();
    if (!bin) throw new Error('iperf3 is not on PATH (Debian: iperf3); this scenario needs it');
    const avail = detect(new Set(wanted.includes('nginx') ? [] : ['nginx' as const]));
    const notes = [...avail.notes];
    const native = loadNative();
    const active = wanted.filter((m) =>
      m === 'nginx' ? !!avail.nginx : m === 'haproxy' ? !!avail.haproxy : m === 'native' ? native.addon !== null : true,
    );
    if (!native.addon && wanted.includes('native')) notes.push(`native: unavailable (${native.reason}), skipped.`);

    const iperf = await startIperfServer(bin);
    const backends: Backends = { source: iperf.port, foo: iperf.port };
    const runs: Run[] = [];
    const errors: string[] = [];
    try {
      for (let round = 0; round < rounds; round++) {
        const order = active.map((_, i) => active[(i + round) % active.length]!);
        for (const middle of order) {
          let m: Started | undefined;
          try {
            m = await start(middle, avail, backends, pipeSize);
            const pid = m.child?.pid;
            const c0 = pid ? (cpuSeconds(pid) ?? NaN) : NaN;
            const r = await runIperfClient(bin, m.port, seconds, reverse);
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
      await iperf.child.kill();
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
    if (native.addon) notes.push(`native: the uv_poll engine on the child\'s event loop, splice socket -> pipe -> socket, unshaped, ${pipeSize ? `${pipeSize}-byte` : "the kernel's 64 KiB"} pipes.`);
    if (avail.nginx) notes.push(`nginx ${avail.nginx.version}: stream, one worker, master_process off (bench/lib/peers/configs.ts).`);
    if (avail.haproxy) notes.push(`haproxy ${avail.haproxy.version}: mode tcp, nbthread 1, -db.`);
    notes.push('direct: iperf3 to its server without a middle (the ceiling of this machine); CPU-s/GB is the middle process only, not iperf3.');
    notes.push('The machine has few cores shared by iperf3 client, server and the middle: compare rows of one run, not runs of different days.');
    return {
      params: { seconds, rounds, reverse, pipeSize, middles: active },
      tables: [
        {
          title: `iperf3, 1 stream${reverse ? ' (-R)' : ''}, ${seconds} s × ${rounds} rounds (medians)`,
          columns: ['middle', 'Gbit/s', 'range', 'CPU-s/GB', 'range', 'runs'],
          rows,
        },
      ],
      notes: [...notes, ...errors.map((e) => `error: ${e}`)],
      data: { runs },
    };
  },
};

async function start(middle: MiddleName, avail: ReturnType<typeof detect>, backends: Backends, pipeSize: number): Promise<Started> {
  switch (middle) {
    case 'native':
      return startNative(backends.source, pipeSize);
    case 'nginx': {
      const m = await startNginx(avail.nginx!, backends, 0);
      return { port: m.source, child: m.child, stop: () => m.stop() };
    }
    case 'haproxy': {
      const m = await startHaproxy(avail.haproxy!, backends, 0);
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
