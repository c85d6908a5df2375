/**
 * shaper-bench admission: fleet-wide admission (a customer's maxConnections over several
 * instances) on our ADMIT/RELEASE Lua (src/cluster/) against bottleneck's ioredis clustering,
 * both on a real redis-server:
 *   1. latency of one admission (admit + release, one at a time), p50 / p99
 *   2. Redis commands per admitted-and-released connection (INFO commandstats)
 *   3. two instances racing for maxConnections slots: admitted must equal the limit exactly
 *   4. an instance crashes holding half the slots: how long until the other can use them all
 */
import { createRequire } from 'node:module';
import type BottleneckType from 'bottleneck';
import { Redis } from 'ioredis';
import { FleetAdmission } from '../src/cluster/admission.js';
import { RedisLink } from '../src/cluster/link.js';
import type { TierConfig } from '../src/config/types.js';
import { silentLogger } from '../src/log.js';
import { freePort, spawnChild, waitForPort, which, type Child } from './lib/children.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

const Bottleneck = createRequire(import.meta.url)('bottleneck') as typeof BottleneckType;

/** admit() resolves to a release, or null when refused. */
interface Engine {
  name: string;
  admit(): Promise<(() => void) | null>;
  /** the process dies: no release, no more heartbeats */
  crash(): Promise<void>;
  close(): Promise<void>;
}

const MEMBER_TIMEOUT = 1000;

async function luaEngine(url: string, instance: string, max: number): Promise<Engine> {
  const link = new RedisLink(url, 1000, silentLogger());
  await link.open();
  const keys = { members: 'bench:members', admission: (c: string) => `bench:admission:${c}`, rate: (c: string) => `bench:rate:${c}` };
  const held = { count: 0, inflight: 0 };
  // The fleet's heartbeat, reduced to what admission reads: this instance is alive.
  const beat = async () => void (await link.run((r) => r.time().then(([s, us]) => r.hset(keys.members, instance, Number(s) * 1000 + Math.floor(Number(us) / 1000)))));
  await beat();
  const timer = setInterval(() => void beat(), 200);
  const gate = new FleetAdmission('acme', { maxConnections: max } as TierConfig, {
    link,
    instance,
    memberTimeout: MEMBER_TIMEOUT,
    keys,
    held: () => held,
    fallbackShare: () => 0.5,
    now: () => Date.now(),
  });
  return {
    name: 'shaper Lua',
    admit: () => gate.admit(),
    async crash() {
      clearInterval(timer);
      await link.close();
    },
    async close() {
      clearInterval(timer);
      await link.close();
    },
  };
}

async function bottleneckEngine(url: string, max: number): Promise<Engine> {
  const u = new URL(url);
  // As a proxy would use it: one job per connection, refused at once when no slot is free.
  const limiter = new Bottleneck({
    id: 'bench-acme',
    datastore: 'ioredis',
    clientOptions: { host: u.hostname, port: Number(u.port) },
    maxConcurrent: max,
    highWater: 0,
    strategy: Bottleneck.strategy.OVERFLOW,
  });
  limiter.on('error', () => {});
  await limiter.ready();
  return {
    name: 'bottleneck ioredis',
    admit: () =>
      new Promise((resolve) => {
        let release!: () => void;
        const done = new Promise<void>((r) => (release = r));
        limiter
          .schedule(() => {
            resolve(release);
            return done;
          })
          .catch(() => resolve(null));
      }),
    async crash() {
      limiter.disconnect(false);
    },
    async close() {
      await limiter.disconnect(false);
    },
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function commandsProcessed(r: Redis): Promise<number> {
  return Number(/^total_commands_processed:(\d+)/m.exec(await r.info('stats'))?.[1] ?? NaN);
}

export const admission: Scenario = {
  name: 'admission',
  describe: 'fleet-wide admission on our Lua vs bottleneck\'s ioredis clustering: latency, Redis commands, exact limit under a race, recovery from a crashed instance',
  options: {
    rounds: { type: 'string', default: '2000', description: 'sequential admissions for the latency figures' },
    max: { type: 'string', default: '50', description: 'maxConnections for the race and the crash' },
    'crash-wait': { type: 'string', default: '15', description: 'seconds to wait for a crashed instance\'s slots to come back' },
  },
  async run(args: Args): Promise<Result> {
    const rounds = numberArg(args, 'rounds');
    const max = numberArg(args, 'max');
    const crashWait = numberArg(args, 'crash-wait');
    const bin = which('redis-server');
    if (!bin) throw new Error('redis-server is not installed (Debian: apt-get install redis-server)');
    const children: Child[] = [];
    const rows: string[][] = [];
    const data: Record<string, unknown>[] = [];
    try {
      const makers: [string, (url: string, instance: string) => Promise<Engine>][] = [
        ['shaper Lua', (url, instance) => luaEngine(url, instance, max)],
        ['bottleneck ioredis', (url) => bottleneckEngine(url, max)],
      ];
      for (const [name, make] of makers) {
        // a fresh Redis per engine, so neither sees the other's keys or load
        const port = await freePort();
        const redis = spawnChild('redis-server', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
        children.push(redis);
        await waitForPort(port, redis);
        const url = `redis://127.0.0.1:${port}`;
        const probe = new Redis(port, '127.0.0.1');

        // 1 + 2: sequential latency and commands
        const a = await make(url, 'a');
        const b = await make(url, 'b');
        const lat: number[] = [];
        const c0 = await commandsProcessed(probe);
        for (let i = 0; i < rounds; i++) {
          const t = performance.now();
          const release = await a.admit();
          lat.push(performance.now() - t);
          if (!release) throw new Error(`${name}: a lone admission was refused`);
          release();
        }
        await sleep(300);
        const perConn = ((await commandsProcessed(probe)) - c0 - 1) / rounds;
        lat.sort((x, y) => x - y);

        // 3: the race
        const attempts = await Promise.all(Array.from({ length: max * 2 }, (_, i) => (i % 2 ? a : b).admit()));
        const admitted = attempts.filter(Boolean).length;
        // 4: a holds its slots and crashes; b keeps trying to fill the limit
        const heldByA = attempts.filter((r, i) => r && i % 2 === 1).length;
        attempts.forEach((r, i) => i % 2 === 0 && r?.());
        await sleep(100);
        await a.crash();
        const crashedAt = performance.now();
        let recoveredMs: number | null = null;
        const mine: (() => void)[] = [];
        while (performance.now() - crashedAt < crashWait * 1000) {
          const r = await b.admit();
          if (r) mine.push(r);
          if (mine.length >= max) {
            recoveredMs = performance.now() - crashedAt;
            break;
          }
          if (!r) await sleep(50);
        }
        mine.forEach((r) => r());
        await b.close();
        probe.disconnect();
        rows.push([
          name,
          `${quantile(lat, 0.5).toFixed(3)} ms`,
          `${quantile(lat, 0.99).toFixed(3)} ms`,
          perConn.toFixed(1),
          `${admitted} of ${max}`,
          recoveredMs === null ? `not within ${crashWait} s (${mine.length} of ${max}; ${heldByA} held by the dead one)` : `${(recoveredMs / 1000).toFixed(2)} s`,
        ]);
        data.push({ engine: name, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), commandsPerConnection: perConn, raceAdmitted: admitted, max, heldByCrashed: heldByA, recoveredMs });
      }
    } finally {
      for (const c of children) await c.kill();
    }
    return {
      params: { rounds, max, crashWait },
      tables: [
        {
          title: `Fleet-wide admission: maxConnections ${max}, two instances, loopback redis-server`,
          columns: ['engine', 'admit p50', 'admit p99', 'Redis commands per connection', 'race: admitted', 'crashed instance\'s slots back'],
          rows,
        },
      ],
      notes: [
        'Latency: one admit, from the call to the verdict, with nothing else running; the release is not timed.',
        'Commands: every command Redis executed (inside scripts too, plus its heartbeats and pub/sub) per admitted and released connection.',
        `Crash: the instance holding half the slots stops without releasing them; shaper's instance counts stop counting ${MEMBER_TIMEOUT} ms after its last heartbeat (cluster.memberTimeout), bottleneck frees a running job only when its expiration passes, and a connection has no sensible expiration.`,
      ],
      data,
    };
  },
};
