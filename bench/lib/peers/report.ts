/** The table of `shaper-bench peers`: rows = scenario/metric, columns = peers, then proxy/peer ratios. */
import { median, type Table } from '../scenario.js';
import type { CappedRun, DownloadRun, IperfRun, PingPongRun, RedisThroughRun } from './measure.js';
import type { PeerName } from './middles.js';

export type PeerRun =
  | { scenario: 'download'; peer: PeerName; round: number; result: DownloadRun }
  | { scenario: 'pingpong'; peer: PeerName; round: number; result: PingPongRun }
  | { scenario: 'capped'; peer: PeerName; round: number; result: CappedRun }
  | { scenario: 'iperf'; peer: PeerName; round: number; result: IperfRun }
  | { scenario: 'redis'; peer: PeerName; round: number; result: RedisThroughRun }
  | { scenario: 'shared'; peer: PeerName; round: number; result: CappedRun };

interface Row {
  label: string;
  value: (runs: PeerRun[], peer: PeerName) => number;
  digits: number;
  /** Ratios make no sense for a signed error. */
  ratio: boolean;
}

interface Results {
  download: DownloadRun;
  pingpong: PingPongRun;
  capped: CappedRun;
  iperf: IperfRun;
  redis: RedisThroughRun;
  shared: CappedRun;
}

function pick<S extends keyof Results>(runs: PeerRun[], scenario: S, peer: PeerName): Results[S][] {
  return runs.filter((r) => r.scenario === scenario && r.peer === peer).map((r) => r.result as Results[S]);
}

export interface TableParams {
  peers: PeerName[];
  /** the data plane each proxy row used (from its /status) */
  planes: Partial<Record<PeerName, string>>;
  redisClients: number;
  sharedMiB: number;
  rounds: number;
  connections: number;
  pingConnections: number;
  capKiB: number;
}

export function peersTable(runs: PeerRun[], p: TableParams): Table {
  const rows: Row[] = [
    { label: 'unshaped download MB/s (1 conn)', value: (r, peer) => median(pick(r, 'download', peer).map((x) => x.bytesPerSecond / 1e6)), digits: 0, ratio: true },
    { label: '  middle CPU-s per GB', value: (r, peer) => median(pick(r, 'download', peer).map((x) => x.middleCpuSeconds / ((x.bytesPerSecond * x.seconds) / 1e9))), digits: 2, ratio: true },
    { label: `ping-pong req/s (${p.pingConnections} conns)`, value: (r, peer) => median(pick(r, 'pingpong', peer).map((x) => x.rps)), digits: 0, ratio: true },
    { label: 'ping-pong p99 ms', value: (r, peer) => median(pick(r, 'pingpong', peer).map((x) => x.p99)), digits: 3, ratio: true },
    { label: `${p.connections} × ${p.capKiB} KiB/s: aggregate MB/s`, value: (r, peer) => median(pick(r, 'capped', peer).map((x) => x.rate / 1e6)), digits: 3, ratio: true },
    { label: '  error vs due %', value: (r, peer) => median(pick(r, 'capped', peer).map((x) => x.error * 100)), digits: 2, ratio: false },
    { label: '  Jain', value: (r, peer) => median(pick(r, 'capped', peer).map((x) => x.jain)), digits: 4, ratio: true },
    { label: '  middle CPU-s over window', value: (r, peer) => median(pick(r, 'capped', peer).map((x) => x.cpuSeconds)), digits: 2, ratio: true },
    { label: '  middle peak RSS MiB', value: (r, peer) => median(pick(r, 'capped', peer).map((x) => x.peakRssBytes / 2 ** 20)), digits: 1, ratio: true },
    { label: 'iperf3, 1 stream, Gbit/s', value: (r, peer) => median(pick(r, 'iperf', peer).map((x) => x.bitsPerSecond / 1e9)), digits: 2, ratio: true },
    { label: '  middle CPU-s per GB', value: (r, peer) => median(pick(r, 'iperf', peer).map((x) => x.middleCpuSeconds / ((x.bitsPerSecond / 8) * x.seconds / 1e9))), digits: 3, ratio: true },
    { label: `redis-benchmark GET, ${p.redisClients} clients: req/s`, value: (r, peer) => median(pick(r, 'redis', peer).map((x) => x.rps)), digits: 0, ratio: true },
    { label: '  p50 ms', value: (r, peer) => median(pick(r, 'redis', peer).map((x) => x.p50)), digits: 3, ratio: true },
    { label: '  p99 ms', value: (r, peer) => median(pick(r, 'redis', peer).map((x) => x.p99)), digits: 3, ratio: true },
    { label: '  middle CPU-s per 100k requests', value: (r, peer) => median(pick(r, 'redis', peer).map((x) => (x.middleCpuSeconds * 100_000) / x.requests)), digits: 2, ratio: true },
    { label: `${p.connections} sharing ${p.sharedMiB} MiB/s: aggregate MB/s`, value: (r, peer) => median(pick(r, 'shared', peer).map((x) => x.rate / 1e6)), digits: 3, ratio: true },
    { label: '  error vs due %', value: (r, peer) => median(pick(r, 'shared', peer).map((x) => x.error * 100)), digits: 2, ratio: false },
    { label: '  Jain', value: (r, peer) => median(pick(r, 'shared', peer).map((x) => x.jain)), digits: 4, ratio: true },
    { label: '  middle CPU-s over window', value: (r, peer) => median(pick(r, 'shared', peer).map((x) => x.cpuSeconds)), digits: 2, ratio: true },
    {
      label: 'peak RSS MiB, any scenario',
      value: (r, peer) => {
        const peaks = r.filter((x) => x.peer === peer).map((x) => ('peakRssBytes' in x.result ? x.result.peakRssBytes : NaN)).filter(Number.isFinite);
        return peaks.length ? Math.max(...peaks) / 2 ** 20 : NaN;
      },
      digits: 1,
      ratio: true,
    },
  ];
  const others = p.peers.filter((x) => x !== 'proxy');
  const showProxy = p.peers.includes('proxy');
  const fmt = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  return {
    title: `Peers (median of ${p.rounds} alternating round${p.rounds === 1 ? '' : 's'}; proxy/X > 1: proxy higher)`,
    columns: ['scenario / metric', ...p.peers, ...(showProxy ? others.map((o) => `proxy/${o}`) : [])],
    rows: [['data plane', ...p.peers.map((peer) => p.planes[peer] ?? (peer.startsWith('proxy') ? '?' : '–')), ...(showProxy ? others.map(() => '') : [])]].concat(rows.map((row) => {
      const values = p.peers.map((peer) => row.value(runs, peer));
      const proxy = row.value(runs, 'proxy');
      const ratios = showProxy
        ? others.map((o) => {
            const v = row.value(runs, o);
            return row.ratio && Number.isFinite(v) && Number.isFinite(proxy) && v !== 0 ? (proxy / v).toFixed(3) : '–';
          })
        : [];
      return [row.label, ...values.map((v) => fmt(v, row.digits)), ...ratios];
    })),
  };
}
