/**
 * shaper-proxy side by side with its peers, in one run: the proxy on its native data plane
 * (`proxy`, dataPlane auto: the splice relay where built) and on the JavaScript one (`proxy-js`),
 * a plain Node pipe, nginx (stream module, `proxy_download_rate`) and HAProxy (mode tcp) when they
 * are on PATH. Scenarios:
 *   1. unshaped download, 1 connection: MB/s (and the middle's CPU per GB);
 *   2. Foo ping-pong over 8 connections: req/s and p99;
 *   3. 1000 connections × 64 KiB/s download after warm-up: aggregate vs due, Jain, the middle's
 *      CPU seconds over the window and its peak RSS;
 *   4. iperf3, one stream, through each middle: Gbit/s and the middle's CPU seconds per GB;
 *   5. redis-benchmark GET, 50 clients, no pipelining, to one redis-server: req/s, p50, p99;
 *   6. 1000 connections sharing one 10 MiB/s customer cap (the proxy only: the peers cannot share
 *      a cap across connections): aggregate vs due, Jain, CPU.
 * Each measurement starts a fresh middle (so peak RSS is that scenario's); per round and scenario
 * the peers run one after another, each round starting at another peer; the table gives medians.
 */
import { ready, spawnNodeScript } from './lib/children.js';
import { capped, iperfThrough, pingPong, redisThrough, unshapedDownload, type CappedRun } from './lib/peers/measure.js';
import { iperfPath, startIperfServer, type IperfServer } from './lib/iperf.js';
import { redisTools, startRedis } from './lib/redis.js';
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
type Which = 'download' | 'pingpong' | 'capped' | 'iperf' | 'redis' | 'shared';
const SCENARIO_IDS: Record<string, Which> = { '1': 'download', '2': 'pingpong', '3': 'capped', '4': 'iperf', '5': 'redis', '6': 'shared' };

async function start(peer: PeerName, avail: Availability, backends: Backends, cap: number, shared = 0): Promise<Middle> {
  switch (peer) {
    case 'proxy':
      return startProxy(backends, cap, 'auto', shared);
    case 'proxy-js':
      return startProxy(backends, cap, 'js', shared);
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
    'cap-seconds': { type: 'string', default: '8', description: 'measuring window of the capped and shared scenarios (after warm-up)' },
    'cap-warmup': { type: 'string', default: '3', description: 'seconds of warm-up after every connection got a byte, before the window (the steady state, not start-up)' },
    connections: { type: 'string', default: '1000', description: 'connections in the capped scenario' },
    cap: { type: 'string', default: '64', description: 'per-connection cap in KiB/s in the capped scenario' },
    'ping-connections': { type: 'string', default: '8', description: 'ping-pong connections' },
    scenarios: { type: 'string', default: '1,2,3,4,5,6', description: 'which scenarios: 1 download, 2 ping-pong, 3 capped, 4 iperf3, 5 redis-benchmark, 6 shared cap' },
    peers: { type: 'string', default: PEERS.join(','), description: 'which peers (proxy, proxy-js, pipe, nginx, haproxy)' },
    'redis-requests': { type: 'string', default: '200000', description: 'GET requests per redis-benchmark run (scenario 5, 50 clients)' },
    shared: { type: 'string', default: '10', description: 'the shared customer cap in MiB/s (scenario 6)' },
  },

  async run(args: Args): Promise<Result> {
    const rounds = numberArg(args, 'rounds');
    if (!Number.isInteger(rounds)) throw new Error(`--rounds: "${String(args['rounds'])}" is not a whole number`);
    const ms = numberArg(args, 'seconds') * 1000;
    const capMs = numberArg(args, 'cap-seconds') * 1000;
    const warmMs = numberArg(args, 'cap-warmup') * 1000;
    const n = numberArg(args, 'connections');
    const capKiB = numberArg(args, 'cap');
    const cap = capKiB * KiB;
    const pingN = numberArg(args, 'ping-connections');
    const scenarios = String(args['scenarios'])
      .split(',')
      .map((s) => s.trim())
      .map((s) => {
        const w = SCENARIO_IDS[s];
        if (!w) throw new Error(`--scenarios: "${s}" is not one of 1-6`);
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
    const canShare = (p: PeerName) => p === 'proxy' || p === 'proxy-js';
    const redisRequests = numberArg(args, 'redis-requests');
    const sharedBytes = numberArg(args, 'shared') * KiB * KiB;
    const iperfBin = scenarios.includes('iperf') ? iperfPath() : undefined;
    if (scenarios.includes('iperf') && !iperfBin) notes.push('Scenario 4 skipped: iperf3 not on PATH (Debian: iperf3).');
    const redis = scenarios.includes('redis') ? redisTools() : undefined;
    if (scenarios.includes('redis') && !redis) notes.push('Scenario 5 skipped: redis-server or redis-benchmark not on PATH (Debian: redis-server redis-tools).');
    const planes: Partial<Record<PeerName, string>> = {};
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
    if (active.includes('proxy') || active.includes('proxy-js')) {
      notes.push(`proxy: the real CLI, one app per route, log warn, dataPlane "auto" (proxy: the native relay when built, as its /status says in the "data plane" row) or "js" (proxy-js); capped: defaultTier with connection.down ${capKiB} KiB/s (rtt 50ms, as the shaping scenario's case 1); shared: one customer for every connection with customer.down ${numberArg(args, 'shared')} MiB/s.`);
    }

    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const runs: PeerRun[] = [];
    const errors: string[] = [];
    const configs: Partial<Record<PeerName, unknown>> = {};
    const backend = spawnNodeScript('backend', 'backend', ['source', 'foo']);
    let iperf: IperfServer | undefined;
    let redisServer: Awaited<ReturnType<typeof startRedis>> | undefined;
    try {
      const backends = await ready<Backends>(backend);
      if (iperfBin) iperf = await startIperfServer(iperfBin);
      if (redis) redisServer = await startRedis(redis.server);
      // Scenarios 4 and 5 route a middle's `source` (and `foo`) to iperf3's or redis' server.
      const backendsFor = (which: Which): Backends | undefined =>
        which === 'iperf' ? (iperf ? { source: iperf.port, foo: iperf.port } : undefined)
        : which === 'redis' ? (redisServer ? { source: redisServer.port, foo: redisServer.port } : undefined)
        : backends;
      for (let round = 0; round < rounds; round++) {
        const order = active.map((_, i) => active[(i + round) % active.length]!);
        for (const which of scenarios) {
          for (const peer of order) {
            if (which === 'capped' && !canCap(peer)) continue;
            if (which === 'shared' && !canShare(peer)) continue;
            const through = backendsFor(which);
            if (!through) continue;
            let m: Middle | undefined;
            try {
              m = await start(peer, avail, through, which === 'capped' ? cap : 0, which === 'shared' ? sharedBytes : 0);
              if (m.dataPlane) planes[peer] = m.dataPlane;
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
              } else if (which === 'iperf') {
                const result = await iperfThrough(iperfBin!, m, ms / 1000);
                runs.push({ scenario: which, peer, round, result });
                progress(`${tag} ${(result.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, ${(result.middleCpuSeconds / ((result.bitsPerSecond / 8) * result.seconds / 1e9)).toFixed(3)} CPU-s/GB`);
              } else if (which === 'redis') {
                const result = await redisThrough(redis!.benchmark, m, 50, redisRequests);
                runs.push({ scenario: which, peer, round, result });
                progress(`${tag} ${result.rps.toFixed(0)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms`);
              } else if (which === 'shared') {
                const result: CappedRun = await capped(m, n, sharedBytes / n, capMs, warmMs);
                runs.push({ scenario: which, peer, round, result });
                progress(`${tag} ${(result.rate / 1e6).toFixed(3)} MB/s (${(result.error * 100).toFixed(2)}%), Jain ${result.jain.toFixed(4)}, ${result.cpuSeconds.toFixed(2)} CPU-s, ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
              } else {
                const result: CappedRun = await capped(m, n, cap, capMs, warmMs);
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
            await sleep(which === 'capped' || which === 'shared' ? 1000 : 200);
          }
        }
      }
    } finally {
      await backend.kill();
      await iperf?.child.kill();
      await redisServer?.child.kill();
    }

    const table = peersTable(runs, { peers: active, planes, rounds, connections: n, pingConnections: pingN, capKiB, redisClients: 50, sharedMiB: sharedBytes / KiB / KiB });
    return {
      params: { rounds, seconds: ms / 1000, capSeconds: capMs / 1000, capWarmupSeconds: warmMs / 1000, connections: n, capBytesPerSecond: cap, pingConnections: pingN, scenarios, peers: active },
      tables: [table],
      notes: [
        ...notes,
        `Capped: due = ${n} × ${cap} B/s = ${((n * cap) / 1e6).toFixed(3)} MB/s; window of ${capMs / 1000} s after every connection got a byte plus ${warmMs / 1000} s warm-up (the same for every peer).`,
        'Every measurement starts a fresh middle process; the client and backends are the same for all peers. On a machine with few CPUs the client, the middle and the backend compete for them, so absolute numbers are low and noisy: compare columns, not machines.',
        ...errors.map((e) => `error: ${e}`),
      ],
      data: { runs, configs, availability: { nginx: avail.nginx ?? null, haproxy: avail.haproxy ?? null } },
    };
  },
};
