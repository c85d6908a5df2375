/**
 * shaper-proxy side by side with its peers, in one run: a plain Node pipe, nginx (stream module,
 * `proxy_download_rate`) and HAProxy (mode tcp) when they are on PATH. Scenarios:
 *   1. unshaped download, 1 connection: MB/s (and the middle's CPU per GB);
 *   2. Foo ping-pong over 8 connections: req/s and p99;
 *   3. 1000 connections × 64 KiB/s download after warm-up: aggregate vs due, Jain, the middle's
 *      CPU seconds over the window and its peak RSS.
 * Each measurement starts a fresh middle (so peak RSS is that scenario's); per round and scenario
 * the peers run one after another, each round starting at another peer; the table gives medians.
 */
import { ready, spawnNodeScript } from './lib/children.js';
import { capped, pingPong, unshapedDownload, type CappedRun } from './lib/peers/measure.js';
import {
  PEERS,
  detect,
  startHaproxy,
  startNginx,
  startPipe,
  startProxy,
  type Availability,
  type Backends,
  type Middle,
  type PeerName,
} from './lib/peers/middles.js';
import { peersTable, type PeerRun } from './lib/peers/report.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

const KiB = 1024;
type Which = 'download' | 'pingpong' | 'capped';
const SCENARIO_IDS: Record<string, Which> = { '1': 'download', '2': 'pingpong', '3': 'capped' };

async function start(peer: PeerName, avail: Availability, backends: Backends, cap: number): Promise<Middle> {
  switch (peer) {
    case 'proxy':
      return startProxy(backends, cap);
    case 'pipe':
      return startPipe(backends);
    case 'nginx':
      return startNginx(avail.nginx!, backends, cap);
    case 'haproxy':
      return startHaproxy(avail.haproxy!, backends, cap);
  }
}

export const peers: Scenario = {
  name: 'peers',
  describe: 'shaper-proxy vs a plain Node pipe, nginx (stream) and HAProxy when installed: throughput, ping-pong, 1000 capped connections',
  options: {
    rounds: { type: 'string', default: '3', description: 'alternating rounds; the table gives medians' },
    seconds: { type: 'string', default: '3', description: 'seconds per download and ping-pong run' },
    'cap-seconds': { type: 'string', default: '5', description: 'measuring window of the capped scenario (after warm-up)' },
    connections: { type: 'string', default: '1000', description: 'connections in the capped scenario' },
    cap: { type: 'string', default: '64', description: 'per-connection cap in KiB/s in the capped scenario' },
    'ping-connections': { type: 'string', default: '8', description: 'ping-pong connections' },
    scenarios: { type: 'string', default: '1,2,3', description: 'which scenarios: 1 download, 2 ping-pong, 3 capped' },
    peers: { type: 'string', default: PEERS.join(','), description: 'which peers (proxy, pipe, nginx, haproxy)' },
  },

  async run(args: Args): Promise<Result> {
    const rounds = numberArg(args, 'rounds');
    if (!Number.isInteger(rounds)) throw new Error(`--rounds: "${String(args['rounds'])}" is not a whole number`);
    const ms = numberArg(args, 'seconds') * 1000;
    const capMs = numberArg(args, 'cap-seconds') * 1000;
    const n = numberArg(args, 'connections');
    const capKiB = numberArg(args, 'cap');
    const cap = capKiB * KiB;
    const pingN = numberArg(args, 'ping-connections');
    const scenarios = String(args['scenarios'])
      .split(',')
      .map((s) => s.trim())
      .map((s) => {
        const w = SCENARIO_IDS[s];
        if (!w) throw new Error(`--scenarios: "${s}" is not 1, 2 or 3`);
        return w;
      });
    const wanted = String(args['peers'])
      .split(',')
      .map((s) => s.trim()) as PeerName[];
    for (const p of wanted) if (!PEERS.includes(p)) throw new Error(`--peers: "${p}" is not one of ${PEERS.join(', ')}`);

    const avail = detect(new Set(PEERS.filter((p) => !wanted.includes(p))));
    const notes = [...avail.notes];
    const active = wanted.filter((p) => (p === 'nginx' ? !!avail.nginx : p === 'haproxy' ? !!avail.haproxy : true));
    const canCap = (p: PeerName) => p !== 'pipe' && (p !== 'haproxy' || avail.haproxy!.bwlim);
    if (avail.nginx) {
      notes.push(
        `nginx ${avail.nginx.version}: stream module${avail.nginx.streamModule ? ` (${avail.nginx.streamModule})` : ' (built in)'}, worker_processes 1 and master_process off (one process, like the single-threaded proxy; CPU and RSS are that process), proxy_download_rate ${cap} for the capped scenario, 0 (unlimited) otherwise.`,
      );
    }
    if (avail.haproxy) {
      notes.push(
        avail.haproxy.bwlim
          ? `haproxy ${avail.haproxy.version}: mode tcp, nbthread 1, -db (one process); the cap is the bwlim-out filter (default-limit ${cap} default-period 1s, enabled by tcp-request content set-bandwidth-limit).`
          : `haproxy ${avail.haproxy.version}: mode tcp, nbthread 1, -db (one process); no bandwidth limitation filter in this version (bwlim needs 2.7+), so a per-connection TCP cap cannot be expressed: HAProxy runs the unshaped and ping-pong rows only.`,
      );
    }
    if (active.includes('pipe')) notes.push('pipe: bench/lib/plain-pipe.ts with TCP_NODELAY (as the proxy sets it); it has no cap, so no capped row.');
    if (active.includes('proxy')) {
      notes.push(`proxy: the real CLI, one app per route, admin off, log warn; capped: defaultTier with connection.down ${capKiB} KiB/s (rtt 50ms, as the shaping scenario's case 1).`);
    }

    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const runs: PeerRun[] = [];
    const errors: string[] = [];
    const configs: Partial<Record<PeerName, unknown>> = {};
    const backend = spawnNodeScript('backend', 'backend', ['source', 'foo']);
    try {
      const backends = await ready<Backends>(backend);
      for (let round = 0; round < rounds; round++) {
        const order = active.map((_, i) => active[(i + round) % active.length]!);
        for (const which of scenarios) {
          for (const peer of order) {
            if (which === 'capped' && !canCap(peer)) continue;
            let m: Middle | undefined;
            try {
              m = await start(peer, avail, backends, which === 'capped' ? cap : 0);
              if (which === 'capped') configs[peer] = m.config;
              else configs[peer] ??= m.config;
              const tag = `round ${round + 1}/${rounds}  ${which.padEnd(8)} ${peer.padEnd(7)}`;
              if (which === 'download') {
                const result = await unshapedDownload(m, ms);
                runs.push({ scenario: which, peer, round, result });
                progress(`${tag} ${(result.bytesPerSecond / 1e6).toFixed(0)} MB/s`);
              } else if (which === 'pingpong') {
                const result = await pingPong(m.foo, pingN, ms);
                runs.push({ scenario: which, peer, round, result });
                progress(`${tag} ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(3)} ms`);
              } else {
                const result: CappedRun = await capped(m, n, cap, capMs);
                runs.push({ scenario: which, peer, round, result });
                progress(
                  `${tag} ${(result.rate / 1e6).toFixed(3)} MB/s (${(result.error * 100).toFixed(2)}%), Jain ${result.jain.toFixed(4)}, ${result.cpuSeconds.toFixed(2)} CPU-s, ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
                );
              }
            } catch (err) {
              // One peer failing (a config this version refuses, say) must not lose the others' numbers.
              const msg = `${peer} ${which} round ${round + 1}: ${(err as Error).message}`;
              errors.push(msg.slice(0, 1500));
              progress(msg.slice(0, 500));
            } finally {
              await m?.stop();
            }
            // Let the closes settle (1000 capped connections hold much in socket buffers).
            await sleep(which === 'capped' ? 1000 : 200);
          }
        }
      }
    } finally {
      await backend.kill();
    }

    const table = peersTable(runs, { peers: active, rounds, connections: n, pingConnections: pingN, capKiB });
    return {
      params: { rounds, seconds: ms / 1000, capSeconds: capMs / 1000, connections: n, capBytesPerSecond: cap, pingConnections: pingN, scenarios, peers: active },
      tables: [table],
      notes: [
        ...notes,
        `Capped: due = ${n} × ${cap} B/s = ${((n * cap) / 1e6).toFixed(3)} MB/s; window of ${capMs / 1000} s after every connection got a byte plus 1 s warm-up.`,
        'Every measurement starts a fresh middle process; the client and backends are the same for all peers. On a machine with few CPUs the client, the middle and the backend compete for them, so absolute numbers are low and noisy: compare columns, not machines.',
        ...errors.map((e) => `error: ${e}`),
      ],
      data: { runs, configs, availability: { nginx: avail.nginx ?? null, haproxy: avail.haproxy ?? null } },
    };
  },
};
