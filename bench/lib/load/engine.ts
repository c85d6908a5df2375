/**
 * Runs one load measurement: keeps each target port at its scheduled connection count, paces
 * messages when the rate is shaped, samples rates over time, stops by itself (duration, or every
 * connection's quota done), then drains or stops at once and counts what was dropped.
 */
import { LoadConnection, type Mode } from './connection.js';
import { Pacer } from './pacer.js';
import { connectionsAt, rateAt, type Shape } from './schedule.js';
import { LoadStats, type StatsSummary } from './stats.js';

export interface Target {
  app: string;
  host: string;
  port: number;
}

export interface EngineOptions {
  targets: Target[];
  mode: Mode;
  /** the messages each connection sends in turn */
  payloads: Buffer[];
  /** connections per port: the shape when shapeOf is connections, else constant */
  connections: Shape;
  /** messages per second per port when shapeOf is rate */
  rate?: Shape;
  messages: number;
  burst: number;
  delayMs: number;
  durationMs: number;
  timeoutMs: number;
  drain: boolean;
  drainTimeoutMs: number;
  /** local addresses to spread connections over (round robin) */
  sources: string[];
  sampleMs: number;
  /** called at every sample, e.g. for a progress bar */
  onSample?: (s: Sample, total: LoadStats) => void;
}

export interface Sample {
  /** seconds since the start */
  t: number;
  targetConnections: number;
  connections: number;
  /** target message rate (rate shape), else undefined */
  targetRate?: number;
  requestsPerSecond: number;
  bytesPerSecond: number;
}

export interface PortResult extends StatsSummary {
  app: string;
  port: number;
}

export interface Measurement {
  seconds: number;
  /** seconds spent draining (or 0) */
  drainSeconds: number;
  connections: number;
  total: StatsSummary;
  ports: PortResult[];
  samples: Sample[];
  cpu: { userMs: number; systemMs: number; percentOfCore: number };
}

const TICK_MS = 20;
/** at most this many connects in flight per port, so a 1000-connection step does not SYN-flood */
const CONNECTS_IN_FLIGHT = 64;
const RETRY_AFTER_FAILURE_MS = 200;

interface PortState {
  target: Target;
  stats: LoadStats;
  pacer: Pacer;
  live: Set<LoadConnection>;
  finished: number;
  retryAt: number;
  opened: number;
}

export async function runLoad(o: EngineOptions): Promise<Measurement> {
  const ports: PortState[] = o.targets.map((target) => ({
    target,
    stats: new LoadStats(),
    pacer: new Pacer(o.rate !== undefined && o.mode !== 'download'),
    live: new Set(),
    finished: 0,
    retryAt: 0,
    opened: 0,
  }));
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const samples: Sample[] = [];
  let lastSample = start;
  let lastAnswered = 0;
  let lastBytes = 0;
  let lastTick = start;
  let sourceIndex = 0;

  const total = () => {
    const t = new LoadStats();
    for (const p of ports) t.add(p.stats);
    return t;
  };
  const liveCount = () => ports.reduce((a, p) => a + p.live.size, 0);

  const open = (p: PortState) => {
    const source = o.sources.length ? o.sources[sourceIndex++ % o.sources.length] : undefined;
    const c = new LoadConnection(
      { host: p.target.host, port: p.target.port, localAddress: source, mode: o.mode, payloads: o.payloads, messages: o.messages, burst: o.burst, delayMs: o.delayMs },
      p.stats,
      p.pacer,
    );
    p.opened++;
    p.live.add(c);
    void c.closed.then(() => {
      p.live.delete(c);
      if (c.finished) p.finished++;
      if (c.failed) p.retryAt = performance.now() + RETRY_AFTER_FAILURE_MS;
    });
  };

  const adjust = (p: PortState, now: number, t: number) => {
    const want = connectionsAt(o.connections, t);
    // a connection that finished its quota keeps its place: `--messages N` means N per connection
    const have = p.live.size + (o.messages > 0 ? p.finished : 0);
    if (have < want && now >= p.retryAt) {
      let connecting = 0;
      for (const c of p.live) if (c.state === 'connecting') connecting++;
      for (let i = have; i < want && connecting < CONNECTS_IN_FLIGHT; i++, connecting++) open(p);
    } else if (have > want) {
      let surplus = have - want;
      for (const c of [...p.live].reverse()) {
        if (surplus-- <= 0) break;
        c.stop();
      }
    }
    for (const c of p.live) {
      if (c.state === 'connecting' && now - c.startedAt > o.timeoutMs) c.fail('connect-timeout');
      else if (c.oldestWait(now) > o.timeoutMs) c.fail('timeout');
    }
  };

  const sample = (now: number, t: number) => {
    let answered = 0;
    let bytes = 0;
    for (const p of ports) {
      answered += p.stats.answered;
      bytes += p.stats.bytesSent + p.stats.bytesReceived;
    }
    const dt = (now - lastSample) / 1000;
    const s: Sample = {
      t: Math.round(t * 1000) / 1000,
      targetConnections: connectionsAt(o.connections, t) * ports.length,
      connections: liveCount(),
      targetRate: o.rate ? rateAt(o.rate, t) * ports.length : undefined,
      requestsPerSecond: dt > 0 ? (answered - lastAnswered) / dt : 0,
      bytesPerSecond: dt > 0 ? (bytes - lastBytes) / dt : 0,
    };
    samples.push(s);
    lastSample = now;
    lastAnswered = answered;
    lastBytes = bytes;
    if (o.onSample) {
      const tt = total();
      o.onSample(s, tt);
      tt.destroy();
    }
  };

  const quotaDone = () =>
    o.messages > 0 && o.connections.shape === 'constant' && ports.every((p) => p.live.size === 0 && p.finished >= connectionsAt(o.connections, 0));

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const t = (now - start) / 1000;
      if (o.rate) for (const p of ports) p.pacer.refill(rateAt(o.rate, t), (now - lastTick) / 1000);
      lastTick = now;
      if (now - lastSample >= o.sampleMs) sample(now, t);
      if (now - start >= o.durationMs || quotaDone()) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (const p of ports) adjust(p, now, t);
    };
    const timer = setInterval(tick, TICK_MS);
    tick();
  });

  const stoppedAt = performance.now();
  if (stoppedAt - lastSample > o.sampleMs / 4) sample(stoppedAt, (stoppedAt - start) / 1000);
  const all = ports.flatMap((p) => [...p.live]);
  for (const p of ports) p.pacer.close();
  if (o.drain) {
    for (const c of all) c.stop();
    // timeouts still apply while draining; the drain itself is bounded too
    const drained = Promise.all(all.map((c) => c.closed));
    const deadline = new Promise<void>((r) => setTimeout(r, o.drainTimeoutMs).unref());
    const watchdog = setInterval(() => {
      const now = performance.now();
      for (const c of all) if (c.oldestWait(now) > o.timeoutMs) c.fail('timeout');
    }, TICK_MS * 5);
    await Promise.race([drained, deadline]);
    clearInterval(watchdog);
  }
  const drainSeconds = o.drain ? (performance.now() - stoppedAt) / 1000 : 0;
  for (const c of all) c.destroy();
  await Promise.all(all.map((c) => c.closed));

  const cpu = process.cpuUsage(cpu0);
  const seconds = (stoppedAt - start) / 1000;
  const wall = (performance.now() - start) / 1000;
  const t = total();
  const result: Measurement = {
    seconds,
    drainSeconds,
    connections: o.connections.max,
    total: t.summarize(seconds),
    ports: ports.map((p) => ({ app: p.target.app, port: p.target.port, ...p.stats.summarize(seconds) })),
    samples,
    cpu: {
      userMs: Math.round(cpu.user / 1000),
      systemMs: Math.round(cpu.system / 1000),
      percentOfCore: Math.round(((cpu.user + cpu.system) / 1000 / (wall * 1000)) * 1000) / 10,
    },
  };
  t.destroy();
  for (const p of ports) p.stats.destroy();
  return result;
}
