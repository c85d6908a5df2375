/**
 * shaper-bench fleet: one customer capped fleet-wide, across three proxy instances sharing it
 * through a real redis-server.
 *   1. 100 connections split 10/20/70 over instances a, b, c download for --seconds: the fleet's
 *      total against the cap, and Jain's index across all 100 connections.
 *   2. c's connections go away (it goes idle): how long until a and b together move the whole cap
 *      (bytes: a 250 ms window at ≥ 97 % of the cap; shares: /status of a and b summing to 1).
 *   3. a tier change through a's admin API: how long until every other instance serves it.
 * Everything runs on loopback: redis-server, the source backend and the proxies as children.
 */
import { ready, spawnChild, spawnNodeScript, freePort, startProxyProcess, waitForPort, which, type Child, type ProxyProcess } from './lib/children.js';
import { diff, jain, openDownloaders, sum, type Downloaders } from './lib/downloaders.js';
import { listArg, numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';
import { parseRate } from '../src/config/units.js';
import { Redis } from 'ioredis';

/** Redis's own counters: commands processed and CPU seconds used, for sizing. */
async function redisLoad(redis: Redis): Promise<{ commands: number; cpu: number; memory: number }> {
  const info = await redis.info();
  const num = (key: string) => Number(new RegExp(`^${key}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return { commands: num('total_commands_processed'), cpu: num('used_cpu_sys') + num('used_cpu_user'), memory: num('used_memory') };
}

const MiB = 1024 * 1024;
const NAMES = ['a', 'b', 'c', 'd', 'e'];

interface Instance {
  name: string;
  port: number;
  admin: number;
  proxy: ProxyProcess;
}

interface StatusShare {
  scope: string;
  share: number;
  demand: number;
  fleetDemand: number;
}

async function status(admin: number): Promise<{ members: { live: boolean }[]; shares: StatusShare[] }> {
  const res = await fetch(`http://127.0.0.1:${admin}/status`);
  return ((await res.json()) as { cluster: { members: { live: boolean }[]; shares: StatusShare[] } }).cluster;
}

const mbs = (x: number) => `${(x / MiB).toFixed(3)} MiB/s`;
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`;

export const fleet: Scenario = {
  name: 'fleet',
  describe: 'a customer cap shared by 3 instances through Redis: total vs cap, Jain over 100 connections split 10/20/70, idle instance\'s share taken over',
  options: {
    cap: { type: 'string', default: '10MiB/s', description: 'the fleet-wide down cap' },
    level: { type: 'string', default: 'customer', description: 'which cap is shared: customer (one customer), tier (a tier total, a customer per instance) or global' },
    split: { type: 'string', default: '10,20,70', description: 'connections per instance (one instance per number)' },
    seconds: { type: 'string', default: '10', description: 'measured window of phase 1' },
    warmup: { type: 'string', default: '2', description: 'seconds after every connection flows, before the window' },
    rebalance: { type: 'string', default: '200ms', description: 'cluster.rebalanceInterval of the instances' },
    tolerance: { type: 'string', default: '0.03', description: 'allowed |total / cap - 1|' },
    'jain-min': { type: 'string', default: '0.95', description: 'lowest passing Jain index across all connections' },
    held: { type: 'string', default: '', description: 'a connection cap for the first instance only (e.g. 40KiB/s): its connections are held below their fair share, the others share the rest' },
    'takeover-max': { type: 'string', default: '1', description: 'seconds the busy instances may take to use the whole cap' },
  },
  async run(args: Args): Promise<Result> {
    const cap = parseRate(String(args['cap']));
    const split = listArg(args, 'split');
    const seconds = numberArg(args, 'seconds');
    const warmup = numberArg(args, 'warmup');
    const tolerance = numberArg(args, 'tolerance');
    const jainMin = numberArg(args, 'jain-min');
    const held = args['held'] ? parseRate(String(args['held'])) : undefined;
    const takeoverMax = numberArg(args, 'takeover-max');
    if (split.length < 2 || split.length > NAMES.length) throw new Error(`--split: from 2 to ${NAMES.length} instances`);
    const level = String(args['level']);
    if (!['customer', 'tier', 'global'].includes(level)) throw new Error(`--level: "${level}" is not customer, tier or global`);
    const scope = level === 'customer' ? 'customer:acme:down' : level === 'tier' ? 'tier:plan:down' : 'global:down';
    const redisBin = which('redis-server');
    if (!redisBin) throw new Error('redis-server is not installed (Debian: apt-get install redis-server)');

    const children: Child[] = [];
    const proxies: ProxyProcess[] = [];
    const conns: Downloaders[] = [];
    const closers: (() => Promise<void>)[] = [];
    try {
      const redisPort = await freePort();
      const redis = spawnChild('redis-server', redisBin, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      children.push(redis);
      await waitForPort(redisPort, redis);
      const probe = new Redis(redisPort, '127.0.0.1', { lazyConnect: true });
      await probe.connect();
      closers.push(async () => void probe.disconnect());
      const backend = spawnNodeScript('backend', 'backend', ['source']);
      children.push(backend);
      const target = `127.0.0.1:${(await ready<{ source: number }>(backend)).source}`;

      const instances: Instance[] = [];
      for (const name of NAMES.slice(0, split.length)) {
        const port = await freePort();
        const admin = await freePort();
        const proxy = await startProxyProcess(
          {
            bind: '127.0.0.1',
            admin: { listen: `127.0.0.1:${admin}` },
            observe: { latency: false, foo: false },
            apps: [{ name: 'web', ports: [port], targets: [target] }],
            // tier: each instance's clients are a customer of their own, so only the tier total is shared
            tiers: {
              plan: {
                ...(level === 'customer' ? { customer: { down: cap } } : level === 'tier' ? { total: { down: cap } } : {}),
                ...(held !== undefined && instances.length === 0 ? { connection: { down: held } } : {}),
              },
            },
            ...(level === 'global' ? { global: { down: cap } } : {}),
            customers: [{ id: level === 'tier' ? `acme-${name}` : 'acme', tier: 'plan', match: {} }],
            cluster: { redis: `redis://127.0.0.1:${redisPort}`, instance: name, rebalanceInterval: String(args['rebalance']) },
          },
          [port, admin],
        );
        proxies.push(proxy);
        instances.push({ name, port, admin, proxy });
      }
      const t0 = performance.now();
      while ((await status(instances[0]!.admin)).members.filter((m) => m.live).length < instances.length) {
        if (performance.now() - t0 > 10_000) throw new Error('the instances did not all join the fleet within 10 s');
        await sleep(100);
      }

      // ---- phase 1: the split ------------------------------------------------------------------
      for (const [i, inst] of instances.entries()) conns.push(await openDownloaders(inst.port, split[i]!));
      const flowing = performance.now();
      while (conns.some((c) => c.bytes.some((b) => b === 0))) {
        if (performance.now() - flowing > 15_000) throw new Error('some connections never received a byte');
        await sleep(50);
      }
      await sleep(warmup * 1000);
      const load0 = await redisLoad(probe);
      const before = conns.map((c) => c.snapshot());
      const start = performance.now();
      await sleep(seconds * 1000);
      const after = conns.map((c) => c.snapshot());
      const elapsed = (performance.now() - start) / 1000;
      const load1 = await redisLoad(probe);
      const redisUse = { commandsPerSecond: (load1.commands - load0.commands) / elapsed, cpuPercent: ((load1.cpu - load0.cpu) / elapsed) * 100, memoryBytes: load1.memory };
      const per = conns.map((_, i) => diff(after[i]!, before[i]!));
      const all = new Float64Array(per.flatMap((p) => [...p]));
      // With --held, fairness is among the connections free to take any share (the first instance's are held).
      const free = held === undefined ? all : new Float64Array(per.slice(1).flatMap((p) => [...p]));
      const total = sum(all) / elapsed;
      const error = total / cap - 1;
      const fairness = jain(free);
      const shares1 = await Promise.all(instances.map((inst) => status(inst.admin)));

      // ---- phase 2: the biggest instance goes idle ----------------------------------------------
      const idle = split.indexOf(Math.max(...split));
      const busy = instances.map((_, i) => i).filter((i) => i !== idle);
      const busyBytes = () => busy.reduce((s, i) => s + sum(conns[i]!.bytes), 0);
      const series: [number, number][] = [];
      const idleAt = performance.now();
      conns[idle]!.close();
      let sharesAt: number | null = null;
      const pollShares = (async () => {
        while (performance.now() - idleAt < 3000) {
          const views = await Promise.all(busy.map((i) => status(instances[i]!.admin)));
          const s = views.reduce((acc, v) => acc + (v.shares.find((x) => x.scope === scope)?.share ?? 0), 0);
          if (s >= 0.999) {
            sharesAt = performance.now() - idleAt;
            return;
          }
          await sleep(20);
        }
      })();
      while (performance.now() - idleAt < 3000) {
        series.push([performance.now() - idleAt, busyBytes()]);
        await sleep(10);
      }
      await pollShares;
      const WINDOW = 250;
      let takeoverMs: number | null = null;
      for (let i = 0; i < series.length && takeoverMs === null; i++) {
        const j = series.findIndex(([t]) => t >= series[i]![0] + WINDOW);
        if (j < 0) break;
        const rate = ((series[j]![1] - series[i]![1]) * 1000) / (series[j]![0] - series[i]![0]);
        if (rate >= 0.97 * cap) takeoverMs = series[j]![0];
      }
      const tailFrom = series.findIndex(([t]) => t >= 1000);
      const last = series[series.length - 1]!;
      const tailRate = ((last[1] - series[tailFrom]![1]) * 1000) / (last[0] - series[tailFrom]![0]);

      // ---- phase 3: an admin change on one instance, seen by the others ------------------------------
      const propagation: number[] = [];
      for (let round = 0; round < 10; round++) {
        // Only the connection cap changes, far above a connection's share: the traffic stays as it was.
        const down = round % 2 === 0 ? Math.round(cap * 0.9) : cap;
        const shared = level === 'customer' ? { customer: { down: cap } } : level === 'tier' ? { total: { down: cap } } : {};
        const at = performance.now();
        const put = await fetch(`http://127.0.0.1:${instances[0]!.admin}/tiers/plan`, { method: 'PUT', body: JSON.stringify({ ...shared, connection: { down } }) });
        if (!put.ok) throw new Error(`PUT /tiers/plan: ${put.status} ${await put.text()}`);
        const seen = await Promise.all(
          instances.slice(1).map(async (inst) => {
            for (;;) {
              const tier = (await (await fetch(`http://127.0.0.1:${inst.admin}/tiers/plan`)).json()) as { connection: { down: number } };
              if (tier.connection.down === down) return performance.now() - at;
              if (performance.now() - at > 5000) return Infinity;
              await sleep(2);
            }
          }),
        );
        propagation.push(Math.max(...seen));
      }
      const worstPropagation = Math.max(...propagation);
      const medianPropagation = [...propagation].sort((x, y) => x - y)[propagation.length >> 1]!;

      const rows = instances.map((inst, i) => {
        const bytes = sum(per[i]!) / elapsed;
        const view = shares1[i]!.shares.find((s) => s.scope === scope);
        return [inst.name, String(split[i]), mbs(bytes), `${((bytes / total) * 100).toFixed(1)}%`, view ? view.share.toFixed(3) : '-', mbs(bytes / split[i]!)];
      });
      const pass1 = Math.abs(error) <= tolerance && fairness >= jainMin;
      const pass2 = takeoverMs !== null && takeoverMs <= takeoverMax * 1000 && Math.abs(tailRate / cap - 1) <= tolerance;
      const pass3 = worstPropagation <= 1000;
      if (!pass1 || !pass2 || !pass3) process.exitCode = 1;
      return {
        params: { level, held, cap, split, seconds, warmup, rebalance: args['rebalance'], tolerance, jainMin, takeoverMax },
        tables: [
          {
            title: `Phase 1: ${sum(split)} connections over ${instances.length} instances, ${level} cap ${mbs(cap)} fleet-wide, ${elapsed.toFixed(1)} s`,
            columns: ['instance', 'connections', 'rate', 'of total', 'share (/status)', 'per connection'],
            rows,
          },
          {
            title: 'Verdict',
            columns: ['check', 'target', 'measured', ''],
            rows: [
              ['fleet total', `${mbs(cap)} ±${(tolerance * 100).toFixed(0)}%`, `${mbs(total)} (${pct(error)})`, Math.abs(error) <= tolerance ? 'PASS' : 'FAIL'],
              [held === undefined ? 'Jain, all connections' : 'Jain, connections not held', `≥ ${jainMin}`, fairness.toFixed(4), fairness >= jainMin ? 'PASS' : 'FAIL'],
              ...(held === undefined
                ? []
                : [[`${instances[0]!.name}'s connections, held at ${mbs(held)}`, 'their cap', `${mbs(sum(per[0]!) / elapsed / split[0]!)} each`, '']]),
              [
                `instance ${instances[idle]!.name} idle: others at ≥ 97% of cap`,
                `≤ ${takeoverMax} s`,
                takeoverMs === null ? 'never (3 s)' : `${(takeoverMs / 1000).toFixed(2)} s (shares summed to 1 after ${sharesAt === null ? 'never' : `${((sharesAt as number) / 1000).toFixed(2)} s`})`,
                takeoverMs !== null && takeoverMs <= takeoverMax * 1000 ? 'PASS' : 'FAIL',
              ],
              ['then, 1–3 s after', `${mbs(cap)} ±${(tolerance * 100).toFixed(0)}%`, `${mbs(tailRate)} (${pct(tailRate / cap - 1)})`, Math.abs(tailRate / cap - 1) <= tolerance ? 'PASS' : 'FAIL'],
              ['tier change on a, seen by all others (10 PUTs)', '≤ 1 s', `median ${medianPropagation.toFixed(1)} ms, worst ${worstPropagation.toFixed(1)} ms`, pass3 ? 'PASS' : 'FAIL'],
            ],
          },
        ],
        notes: [
          `redis-server ${redisBin}, rebalanceInterval ${String(args['rebalance'])}; the bench, Redis, the source backend and ${instances.length} proxies share this machine's cores.`,
          `Redis during phase 1: ${redisUse.commandsPerSecond.toFixed(0)} commands/s (the bench's own INFO calls included), ${redisUse.cpuPercent.toFixed(1)}% of a core, ${(redisUse.memoryBytes / MiB).toFixed(2)} MiB used.`,
          'The takeover time counts from the moment the idle instance\'s clients close: its proxy sees the closes, its next heartbeat reports no demand, and the others\' next heartbeats raise their shares.',
        ],
        data: {
          total,
          error,
          redis: redisUse,
          jain: fairness,
          perInstance: instances.map((inst, i) => ({ name: inst.name, connections: split[i], rate: sum(per[i]!) / elapsed, shares: shares1[i]!.shares })),
          perConnection: [...all].map((b) => b / elapsed),
          takeoverMs,
          sharesTakeoverMs: sharesAt,
          tailRate,
          propagationMs: propagation,
          series,
        },
      };
    } finally {
      for (const c of conns) c.close();
      for (const p of proxies) await p.stop();
      for (const close of closers) await close();
      for (const c of children) await c.kill();
    }
  },
};
