/**
 * The cost of observability: the proxy with latency histograms and Foo analysis on vs off
 * (config `observe`), alternating rounds, each proxy in its own process:
 *   - unshaped bulk download through a tcp app (per-connection latency hooks only);
 *   - Foo ping-pong (REQ -> ACK, one outstanding per connection) through a foo app (the
 *     analyser parses every message both ways and records each request's latency).
 */
import { freePort, ready, spawnNodeScript, startProxyProcess } from './lib/children.js';
import { download } from './lib/client.js';
import { pingPong } from './lib/peers/measure.js';
import { median, numberArg, type Args, type Result, type Scenario } from './lib/scenario.js';

async function startProxy(on: boolean, targets: { source: number; foo: number }) {
  const bulk = await freePort();
  const fooPort = await freePort();
  const config = {
    apps: [
      { name: 'bulk', ports: [bulk], targets: [`127.0.0.1:${targets.source}`] },
      { name: 'foo', ports: [fooPort], targets: [`127.0.0.1:${targets.foo}`], protocol: 'foo' },
    ],
    bind: '127.0.0.1',
    admin: 'off',
    health: { interval: '1h' },
    log: { level: 'warn' },
    drainTimeout: '0s',
    observe: { latency: on, foo: on },
  };
  const { stop } = await startProxyProcess(config, [bulk, fooPort]);
  return { bulk, foo: fooPort, stop };
}

export const observe: Scenario = {
  name: 'observe',
  describe: 'the cost of latency histograms and Foo analysis: throughput and Foo ping-pong with observe on vs off',
  options: {
    rounds: { type: 'string', default: '3', description: 'alternating rounds of off/on' },
    seconds: { type: 'string', default: '3', description: 'seconds per measurement' },
    connections: { type: 'string', default: '8', description: 'ping-pong connections' },
  },
  async run(args: Args): Promise<Result> {
    const rounds = numberArg(args, 'rounds');
    const ms = numberArg(args, 'seconds') * 1000;
    const n = numberArg(args, 'connections');
    const backend = spawnNodeScript('backend', 'backend', ['source', 'foo']);
    const runs: { on: boolean; mbs: number; rps: number; p50: number; p99: number }[] = [];
    try {
      const targets = await ready<{ source: number; foo: number }>(backend);
      for (let r = 0; r < rounds; r++) {
        for (const on of [false, true]) {
          const proxy = await startProxy(on, targets);
          try {
            const d = await download(proxy.bulk, 1, ms);
            const p = await pingPong(proxy.foo, n, ms);
            runs.push({ on, mbs: d.bytesPerSecond / 1e6, ...p });
          } finally {
            await proxy.stop();
          }
        }
      }
    } finally {
      await backend.kill();
    }
    const med = (on: boolean, k: 'mbs' | 'rps' | 'p50' | 'p99') => median(runs.filter((x) => x.on === on).map((x) => x[k]));
    const f = (x: number, d = 1) => x.toFixed(d);
    const rows = [
      ['bulk download MB/s (tcp app)', f(med(false, 'mbs'), 0), f(med(true, 'mbs'), 0), f(med(true, 'mbs') / med(false, 'mbs'), 3)],
      [`Foo ping-pong req/s (${n} conns)`, f(med(false, 'rps'), 0), f(med(true, 'rps'), 0), f(med(true, 'rps') / med(false, 'rps'), 3)],
      ['Foo ping-pong p50 ms', f(med(false, 'p50'), 3), f(med(true, 'p50'), 3), f(med(true, 'p50') / med(false, 'p50'), 3)],
      ['Foo ping-pong p99 ms', f(med(false, 'p99'), 3), f(med(true, 'p99'), 3), f(med(true, 'p99') / med(false, 'p99'), 3)],
    ];
    return {
      params: { rounds, seconds: ms / 1000, connections: n },
      tables: [{ title: `Observability on vs off (median of ${rounds} alternating rounds)`, columns: ['measure', 'off', 'on', 'on/off'], rows }],
      notes: ['Target: on is at most 5 % slower (throughput and req/s ratios ≥ 0.95).'],
      data: runs,
    };
  },
};
