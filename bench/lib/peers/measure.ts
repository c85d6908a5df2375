/**
 * The three measurements of `shaper-bench peers`, each against one middle (see middles.ts):
 * unshaped download, Foo ping-pong, and many connections each capped.
 */
import net from 'node:net';
import { LatencyHistogram } from '../../../src/observe/histogram.js';
import { download } from '../client.js';
import { diff, jain, openDownloaders, sum } from '../downloaders.js';
import { cpuSeconds, peakRssBytes } from '../procstat.js';
import { runIperfClient } from '../iperf.js';
import { runRedisBenchmark } from '../redis.js';
import { sleep } from '../scenario.js';
import type { Middle } from './middles.js';

export interface DownloadRun {
  bytesPerSecond: number;
  seconds: number;
  /** CPU seconds of the middle process during the run. */
  middleCpuSeconds: number;
}

export async function unshapedDownload(m: Middle, ms: number): Promise<DownloadRun> {
  const c0 = cpuSeconds(m.child.pid) ?? NaN;
  const d = await download(m.source, 1, ms);
  const c1 = cpuSeconds(m.child.pid) ?? NaN;
  return { bytesPerSecond: d.bytesPerSecond, seconds: d.seconds, middleCpuSeconds: c1 - c0 };
}

export interface PingPongRun {
  rps: number;
  p50: number;
  p99: number;
}

/** `n` connections, each with one "REQ seq ping" outstanding at a time, for `ms`. */
export async function pingPong(port: number, n: number, ms: number): Promise<PingPongRun> {
  const hist = new LatencyHistogram();
  let done = 0;
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  const t0 = performance.now();
  const end = t0 + ms;
  try {
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            let seq = 0;
            let sentAt = 0;
            let carry = '';
            const send = () => {
              if (performance.now() >= end) {
                resolve();
                return;
              }
              seq++;
              sentAt = performance.now();
              s.write(`REQ ${seq} ping\n`);
            };
            s.setEncoding('latin1');
            s.on('error', reject);
            s.on('close', () => resolve());
            s.on('data', (d: string) => {
              carry += d;
              if (!carry.endsWith('\n')) return;
              carry = '';
              hist.record(performance.now() - sentAt);
              done++;
              send();
            });
            send();
          }),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { rps: done / seconds, p50: hist.at(50), p99: hist.at(99) };
  } finally {
    hist.destroy();
    for (const s of sockets) s.destroy();
  }
}

export interface CappedRun {
  connections: number;
  seconds: number;
  /** Aggregate bytes per second over the window. */
  rate: number;
  due: number;
  /** rate / due - 1 */
  error: number;
  jain: number;
  /** CPU seconds of the middle process over the window. */
  cpuSeconds: number;
  /** Its peak RSS (VmHWM) at the end of the window. */
  peakRssBytes: number;
  minRate: number;
  maxRate: number;
}

/**
 * `n` connections downloading through a middle capped at `cap` per connection: once every
 * connection has received a byte and `warmMs` of warm-up have passed, the window of `ms`.
 */
export async function capped(m: Middle, n: number, cap: number, ms: number, warmMs = 1000): Promise<CappedRun> {
  const conns = await openDownloaders(m.source, n);
  try {
    const end = performance.now() + 15_000;
    while (conns.bytes.some((b) => b === 0)) {
      if (performance.now() > end) throw new Error(`${m.peer}: some of ${n} connections never received a byte`);
      await sleep(50);
    }
    await sleep(warmMs);
    const b0 = conns.snapshot();
    const c0 = cpuSeconds(m.child.pid) ?? NaN;
    const t0 = performance.now();
    await sleep(ms);
    const b1 = conns.snapshot();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = (cpuSeconds(m.child.pid) ?? NaN) - c0;
    const rss = peakRssBytes(m.child.pid) ?? NaN;
    const per = diff(b1, b0);
    const rate = sum(per) / seconds;
    const due = n * cap;
    return {
      connections: n,
      seconds,
      rate,
      due,
      error: rate / due - 1,
      jain: jain(per),
      cpuSeconds: cpu,
      peakRssBytes: rss,
      minRate: Math.min(...per) / seconds,
      maxRate: Math.max(...per) / seconds,
    };
  } finally {
    conns.close();
  }
}

export interface IperfRun {
  bitsPerSecond: number;
  seconds: number;
  /** CPU seconds of the middle process during the run */
  middleCpuSeconds: number;
  peakRssBytes: number;
}

/** One iperf3 stream through the middle (its `source` route leads to the iperf3 server). */
export async function iperfThrough(bin: string, m: Middle, seconds: number): Promise<IperfRun> {
  const c0 = cpuSeconds(m.child.pid) ?? NaN;
  const r = await runIperfClient(bin, m.source, seconds);
  const c1 = cpuSeconds(m.child.pid) ?? NaN;
  return { bitsPerSecond: r.bitsPerSecondReceived, seconds: r.seconds, middleCpuSeconds: c1 - c0, peakRssBytes: peakRssBytes(m.child.pid) ?? NaN };
}

export interface RedisThroughRun {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  middleCpuSeconds: number;
  peakRssBytes: number;
}

/** redis-benchmark GET, `clients` connections, no pipelining, through the middle (its `source` route leads to redis-server). */
export async function redisThrough(bin: string, m: Middle, clients: number, requests: number): Promise<RedisThroughRun> {
  const c0 = cpuSeconds(m.child.pid) ?? NaN;
  const r = await runRedisBenchmark(bin, m.source, clients, requests);
  const c1 = cpuSeconds(m.child.pid) ?? NaN;
  return { ...r, requests, middleCpuSeconds: c1 - c0, peakRssBytes: peakRssBytes(m.child.pid) ?? NaN };
}
