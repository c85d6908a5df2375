/** Turns the throughput scenario's runs into medians, ratios, tables and notes. */
import os from 'node:os';
import type { Measurement } from './client.js';
import type { TcpMemory } from './procstat.js';
import { median, type Table } from './scenario.js';

export const MODES = ['direct', 'pipe', 'proxy'] as const;
export type Mode = (typeof MODES)[number];
export const DIRECTIONS = ['up', 'down'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** The target: the proxy moves at least this share of what the plain pipe moves. */
export const TARGET_VS_PIPE = 0.95;
/** Runs during which other processes took more than this share of the machine are left out of the medians. */
export const DISTURBED_LOAD = 0.1;

export interface Run extends Measurement {
  round: number;
  mode: Mode;
  direction: Direction;
  connections: number;
  /** CPU seconds of the pipe or proxy process during the run (none for direct). */
  middleCpuSeconds?: number;
  backendCpuSeconds?: number;
  /** Share of the machine's CPU that processes outside the bench used during the run (0..1). */
  otherLoad?: number;
  /** The most TCP memory in use at the start or end of the run, and the kernel's limits. */
  tcpMemory?: TcpMemory;
}

export interface IperfRun {
  mode: Mode;
  bitsPerSecond: number;
  seconds: number;
}

export interface Processes {
  cpuSeconds: Record<string, number | undefined>;
  peakRssBytes: Record<string, number | undefined>;
}

const tcpMemoryHigh = (r: Run) => r.tcpMemory !== undefined && r.tcpMemory.pages > r.tcpMemory.low;
const isDisturbed = (r: Run) => (r.otherLoad ?? 0) > DISTURBED_LOAD || tcpMemoryHigh(r);
const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
export const mb = (bytesPerSecond: number) => (bytesPerSecond / 1e6).toFixed(0);
const fmtRatio = (r: number) => (Number.isFinite(r) ? r.toFixed(3) : '-');
const fmtPercent = (share: number | undefined) => (share === undefined || Number.isNaN(share) ? '-' : `${(share * 100).toFixed(0)}%`);
const fmtSeconds = (s: number | undefined) => (s === undefined || Number.isNaN(s) ? '-' : s.toFixed(2));
const fmtMiB = (bytes: number | undefined) => (bytes === undefined ? '-' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

/**
 * 'met' when the medians reach the target; 'within noise' when they do not but the proxy's best
 * round reaches it against the pipe's worst; else 'MISSED' (with one round there is no telling).
 */
function verdict(proxy: number, pipe: number, proxyBest: number, pipeWorst: number, rounds: number): string {
  if (ratio(proxy, pipe) >= TARGET_VS_PIPE) return 'met';
  if (rounds < 2) return 'missed? (1 round)';
  return ratio(proxyBest, pipeWorst) >= TARGET_VS_PIPE ? 'within noise' : 'MISSED';
}

export interface SummaryRow {
  direction: Direction;
  connections: number;
  /** Median over the undisturbed rounds (all rounds when every one was disturbed). */
  bytesPerSecond: Record<Mode, number>;
  /** Over the rounds the median is taken from; `disturbed`: every round was, so all are used. */
  spread: Record<Mode, { min: number; max: number; rounds: number; disturbed: boolean }>;
  proxyVsPipe: number;
  proxyVsDirect: number;
  pipeVsDirect: number;
  cpuSecondsPerGB: { pipe: number; proxy: number };
  /** The widest (max - min) / median of the pipe's and the proxy's rounds: how far to trust proxy/pipe. */
  noise: number;
  verdict: string;
}

export function summarise(runs: Run[], connectionList: number[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const connections of connectionList) {
    for (const direction of DIRECTIONS) {
      const of = (mode: Mode) => {
        const all = runs.filter((r) => r.mode === mode && r.direction === direction && r.connections === connections);
        const quiet = all.filter((r) => !isDisturbed(r));
        return quiet.length > 0 ? quiet : all;
      };
      const rate = (mode: Mode) => median(of(mode).map((r) => r.bytesPerSecond));
      const spreadOf = (mode: Mode) => {
        const v = of(mode).map((r) => r.bytesPerSecond);
        return { min: Math.min(...v), max: Math.max(...v), rounds: v.length, disturbed: of(mode).some(isDisturbed) };
      };
      const cpuPerGB = (mode: Mode) => median(of(mode).map((r) => ((r.middleCpuSeconds ?? NaN) / r.bytes) * 1e9));
      const bytesPerSecond = { direct: rate('direct'), pipe: rate('pipe'), proxy: rate('proxy') };
      const spread = { direct: spreadOf('direct'), pipe: spreadOf('pipe'), proxy: spreadOf('proxy') };
      const rounds = Math.min(spread.pipe.rounds, spread.proxy.rounds);
      const { direct, pipe, proxy } = bytesPerSecond;
      rows.push({
        direction,
        connections,
        bytesPerSecond,
        spread,
        proxyVsPipe: ratio(proxy, pipe),
        proxyVsDirect: ratio(proxy, direct),
        pipeVsDirect: ratio(pipe, direct),
        cpuSecondsPerGB: { pipe: cpuPerGB('pipe'), proxy: cpuPerGB('proxy') },
        noise: rounds < 2 ? NaN : Math.max((spread.pipe.max - spread.pipe.min) / pipe, (spread.proxy.max - spread.proxy.min) / proxy),
        verdict:
          verdict(proxy, pipe, spread.proxy.max, spread.pipe.min, rounds) +
          (spread.pipe.disturbed || spread.proxy.disturbed ? ' (disturbed runs)' : ''),
      });
    }
  }
  return rows;
}

export function tables(runs: Run[], summary: SummaryRow[], iperf: IperfRun[], processes: Processes, p: { rounds: number; seconds: number }): Table[] {
  const out: Table[] = [
    {
      title:
        'Runs: MB/s; CPU seconds the client, the middle process (pipe or proxy) and the backend used during the run; ' +
        'other load: share of the machine that other processes used meanwhile; TCP mem: what all TCP sockets held, ' +
        'as a share of the kernel\'s pressure threshold (tcp_mem)',
      columns: ['round', 'dir', 'conns', 'path', 'MB/s', 'client CPU', 'middle CPU', 'backend CPU', 'other load', 'TCP mem'],
      rows: runs.map((r) => [
        String(r.round + 1),
        r.direction,
        String(r.connections),
        r.mode,
        mb(r.bytesPerSecond),
        fmtSeconds(r.clientCpuSeconds),
        fmtSeconds(r.middleCpuSeconds),
        fmtSeconds(r.backendCpuSeconds),
        fmtPercent(r.otherLoad),
        r.tcpMemory ? fmtPercent(r.tcpMemory.pages / r.tcpMemory.pressure) : '-',
      ]),
    },
    {
      title:
        `Throughput: median of ${p.rounds} round(s) of ${p.seconds} s, undisturbed rounds only; MB = 10^6 bytes; ` +
        `target proxy/pipe >= ${TARGET_VS_PIPE}; noise: widest (max - min) / median of the pipe's and the proxy's rounds`,
      columns: ['dir', 'conns', 'direct MB/s', 'pipe MB/s', 'proxy MB/s', 'proxy/pipe', 'proxy/direct', 'pipe/direct'],
      rows: [],
    },
    {
      title: 'Cost in the middle process (median CPU seconds per GB moved) and the verdict',
      columns: ['dir', 'conns', 'pipe CPU s/GB', 'proxy CPU s/GB', 'noise', 'target'],
      rows: [],
    },
    {
      title: 'Processes over the whole bench (warm-up and iperf3 included)',
      columns: ['process', 'CPU seconds', 'peak RSS (VmHWM)'],
      rows: ['proxy', 'pipe', 'backend'].map((name) => [name, fmtSeconds(processes.cpuSeconds[name]), fmtMiB(processes.peakRssBytes[name])]),
    },
  ];
  for (const r of summary) {
    const { direct, pipe, proxy } = r.bytesPerSecond;
    const key = [r.direction, String(r.connections)];
    out[1]!.rows.push([...key, mb(direct), mb(pipe), mb(proxy), fmtRatio(r.proxyVsPipe), fmtRatio(r.proxyVsDirect), fmtRatio(r.pipeVsDirect)]);
    out[2]!.rows.push([...key, fmtSeconds(r.cpuSecondsPerGB.pipe), fmtSeconds(r.cpuSecondsPerGB.proxy), fmtPercent(r.noise), r.verdict]);
  }
  if (iperf.length > 0) {
    const g = (mode: Mode) => iperf.find((r) => r.mode === mode)?.bitsPerSecond ?? NaN;
    out.push({
      title: `iperf3 -c (client -> server), ${p.seconds} s each, Gbit/s received`,
      columns: ['direct', 'pipe', 'proxy', 'proxy/pipe', 'proxy/direct'],
      rows: [[...MODES.map((m) => (g(m) / 1e9).toFixed(2)), fmtRatio(ratio(g('proxy'), g('pipe'))), fmtRatio(ratio(g('proxy'), g('direct')))]],
    });
  }
  return out;
}

export function notes(runs: Run[], summary: SummaryRow[]): string[] {
  const out: string[] = [];
  const cpus = os.cpus().length;
  if (cpus <= 3) {
    out.push(
      `this machine has ${cpus} CPUs: through the pipe or the proxy three busy processes (client, middle, backend) share ` +
        'them, direct only two, so pipe/direct and proxy/direct mostly show CPU contention; proxy/pipe is the like-for-like ratio.',
    );
  }
  const disturbed = runs.filter(isDisturbed).length;
  if (disturbed > 0) {
    out.push(
      `${disturbed} of ${runs.length} runs were disturbed (other processes took over ${DISTURBED_LOAD * 100}% of the machine, ` +
        'see "other load", or TCP memory was above tcp_mem\'s low mark, see "TCP mem"): they are left out of the medians ' +
        'unless every round of a cell was disturbed. Rerun on a quiet machine before trusting small differences.',
    );
  }
  const pressured = runs.filter(tcpMemoryHigh);
  if (pressured.length > 0) {
    const worst = pressured.reduce((a, b) => (b.tcpMemory!.pages > a.tcpMemory!.pages ? b : a)).tcpMemory!;
    out.push(
      `TCP memory: up to ${worst.pages} pages in ${worst.sockets} sockets against tcp_mem ${worst.low}/${worst.pressure}: ` +
        'another program holds a lot of data in socket buffers (a shaping bench with many throttled connections?); ' +
        'under that pressure loopback throughput collapses while the CPUs idle.',
    );
  }
  for (const r of summary) {
    if (r.verdict === 'met') continue;
    out.push(`proxy/pipe ${fmtRatio(r.proxyVsPipe)} < ${TARGET_VS_PIPE} for ${r.direction} x${r.connections} (${r.verdict}): see the runs table.`);
  }
  return out;
}
