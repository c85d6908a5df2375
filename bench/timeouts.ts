/**
 * How soon the proxy closes what it should close, timings the test suite does not assert:
 *   - idle: connections that send one byte and go quiet are closed between idleTimeout and
 *     idleTimeout + two sweep periods (one sweep timer, every idleTimeout / 4 between 10 ms and
 *     1 s); clients that send a byte every idleTimeout / 2 stay open;
 *   - reset: a backend that sends 200 kB and resets: the client is closed within --reset-target ms
 *     of the reset, unshaped and behind a 1 MB/s connection cap. Behind the cap the proxy learns of
 *     the reset only once it reads again, so there the clock starts when the bytes sent before the
 *     reset were due at the cap (first byte + (200 kB - burst) / rate), if that is later.
 * The proxy runs as a child; the sink backend too. The resetting backend and the clients share the
 * runner's loop (each reset is one event, the clients only wait), so the times include its turns.
 */
import net from 'node:net';
import { burstFor } from '../src/shaping/shaper.js';
import { freePort, ready, spawnNodeScript, startProxyProcess } from './lib/children.js';
import { percentile } from './lib/conns-client.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

/** The proxy's idle sweep period for a timeout (src/index.ts #syncIdleSweep). */
export const sweepMs = (idleTimeoutMs: number) => Math.min(1000, Math.max(10, Math.floor(idleTimeoutMs / 4)));

function quantiles(xs: number[]): { min: number; p50: number; p99: number; max: number } {
  return { min: percentile(xs, 0), p50: percentile(xs, 50), p99: percentile(xs, 99), max: percentile(xs, 100) };
}

/** One byte at `port`, then quiet: ms from that byte to the close (or NaN if still open after `limitMs`). */
function idleClient(port: number, limitMs: number): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let sentAt = 0;
    const limit = setTimeout(() => {
      s.destroy();
      resolve(NaN);
    }, limitMs);
    s.on('error', () => {});
    s.resume();
    s.once('connect', () => {
      s.write('x');
      sentAt = performance.now();
    });
    s.once('close', () => {
      clearTimeout(limit);
      resolve(performance.now() - sentAt);
    });
  });
}

/** A byte every `everyMs` for `forMs`: whether the proxy left it open. */
async function steadyClient(port: number, everyMs: number, forMs: number): Promise<boolean> {
  const s = net.connect({ port, host: '127.0.0.1' });
  let closed = false;
  s.on('error', () => {});
  s.once('close', () => (closed = true));
  s.resume();
  const end = performance.now() + forMs;
  while (!closed && performance.now() < end) {
    s.write('x');
    await sleep(everyMs);
  }
  s.destroy();
  return !closed;
}

const RESET_AFTER = 200_000;

/** A backend that sends RESET_AFTER bytes and resets 20 ms after the write; `resets` gets each reset's time. */
async function resettingBackend(resets: number[]): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.write(Buffer.alloc(RESET_AFTER, 7), () =>
      setTimeout(() => {
        resets.push(performance.now());
        s.resetAndDestroy();
      }, 20),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * Connects and reads until the close: ms from the reset (or, behind a cap of `rate`, from when the
 * bytes sent before it were due, if later) to the close.
 */
async function resetTrial(port: number, resets: number[], rate: number): Promise<number> {
  const before = resets.length;
  let firstByteAt = NaN;
  const closedAt = await new Promise<number>((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.once('data', () => (firstByteAt = performance.now()));
    s.resume();
    s.once('close', () => resolve(performance.now()));
  });
  if (resets.length === before) return NaN;
  const due = Number.isFinite(rate) ? firstByteAt + ((RESET_AFTER - burstFor(rate, 50)) / rate) * 1000 : -Infinity;
  return closedAt - Math.max(resets[before]!, due);
}

const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(1));

export const timeouts: Scenario = {
  name: 'timeouts',
  describe: 'how soon idle connections (idleTimeout) and connections whose backend resets are closed, against targets',
  options: {
    'idle-timeout': { type: 'string', default: '200', description: 'the app idleTimeout, ms' },
    connections: { type: 'string', default: '50', description: 'idle clients (and as many steady ones), all at once' },
    trials: { type: 'string', default: '20', description: 'backend resets per kind (unshaped, shaped)' },
    'reset-target': { type: 'string', default: '100', description: 'ms from a backend reset to the client close, at most' },
  },
  async run(args: Args): Promise<Result> {
    const idleMs = numberArg(args, 'idle-timeout');
    const n = Math.floor(numberArg(args, 'connections'));
    const trials = Math.floor(numberArg(args, 'trials'));
    const resetTarget = numberArg(args, 'reset-target');
    const resets: number[] = [];
    const sink = spawnNodeScript('backend', 'backend', ['sink']);
    const resetter = await resettingBackend(resets);
    let proxy: Awaited<ReturnType<typeof startProxyProcess>> | undefined;
    try {
      const { sink: sinkPort } = await ready<{ sink: number }>(sink);
      const [idlePort, resetPort, shapedPort] = [await freePort(), await freePort(), await freePort()];
      proxy = await startProxyProcess(
        {
          bind: '127.0.0.1',
          admin: 'off',
          health: { interval: '1h' },
          drainTimeout: '0s',
          apps: [
            { name: 'idle', ports: [idlePort], targets: [`127.0.0.1:${sinkPort}`], idleTimeout: `${idleMs}ms` },
            { name: 'reset', ports: [resetPort], targets: [`127.0.0.1:${resetter.port}`] },
            { name: 'reset-shaped', ports: [shapedPort], targets: [`127.0.0.1:${resetter.port}`] },
          ],
          tiers: { slow: { connection: { down: '1MB/s', up: '1MB/s' }, rtt: '50ms' } },
          customers: [{ id: 'shaped', tier: 'slow', match: { apps: ['reset-shaped'] } }],
        },
        [idlePort, resetPort, shapedPort],
      );
      resets.length = 0;

      const sweep = sweepMs(idleMs);
      const latest = idleMs + 2 * sweep + 50;
      const [idle, steady] = await Promise.all([
        Promise.all(Array.from({ length: n }, () => idleClient(idlePort, latest * 4))),
        Promise.all(Array.from({ length: n }, () => steadyClient(idlePort, idleMs / 2, idleMs * 4))),
      ]);
      const idleQ = quantiles(idle.filter((x) => !Number.isNaN(x)));
      const stillOpen = idle.filter((x) => Number.isNaN(x)).length;
      const early = idle.filter((x) => x < idleMs).length;
      const late = idle.filter((x) => x > latest).length;
      const steadyClosed = steady.filter((open) => !open).length;

      const resetRows: { kind: string; q: ReturnType<typeof quantiles>; over: number }[] = [];
      for (const [kind, port, rate] of [['unshaped', resetPort, Infinity], ['shaped 1 MB/s', shapedPort, 1_000_000]] as const) {
        const ms: number[] = [];
        for (let i = 0; i < trials; i++) ms.push(await resetTrial(port, resets, rate));
        resetRows.push({ kind, q: quantiles(ms), over: ms.filter((x) => !(x <= resetTarget)).length });
      }

      const idlePass = stillOpen === 0 && early === 0 && late === 0 && steadyClosed === 0;
      if (!idlePass || resetRows.some((r) => r.over > 0)) process.exitCode = 1;
      return {
        params: { idleTimeoutMs: idleMs, sweepMs: sweep, connections: n, trials, resetTargetMs: resetTarget },
        tables: [
          {
            title: `idle: ${n} idle + ${n} steady clients, idleTimeout ${idleMs} ms (sweep every ${sweep} ms); target: closed after ${idleMs}-${latest} ms`,
            columns: ['min ms', 'p50 ms', 'p99 ms', 'max ms', 'early', 'late', 'never', 'steady closed', 'verdict'],
            rows: [[f(idleQ.min), f(idleQ.p50), f(idleQ.p99), f(idleQ.max), String(early), String(late), String(stillOpen), String(steadyClosed), idlePass ? 'PASS' : 'FAIL']],
          },
          {
            title: `backend reset after 200 kB: ms from the reset (shaped: or the bytes' due time) to the client close (${trials} each); target ≤ ${resetTarget} ms`,
            columns: ['kind', 'min ms', 'p50 ms', 'p99 ms', 'max ms', 'over', 'verdict'],
            rows: resetRows.map((r) => [r.kind, f(r.q.min), f(r.q.p50), f(r.q.p99), f(r.q.max), String(r.over), r.over === 0 ? 'PASS' : 'FAIL']),
          },
        ],
        notes: [
          `idle: ${latest} ms = idleTimeout + 2 sweep periods (the sweep that notices the last byte, then the one past the timeout) + 50 ms of scheduling slack; early = closed before idleTimeout.`,
          'steady clients send a byte every idleTimeout / 2 for 4 × idleTimeout: none may be closed.',
          'reset, shaped: below 0 means the close came before the bytes sent before the reset were due at the cap.',
        ],
        data: { idle, steadyClosed, resets: resetRows },
      };
    } finally {
      await proxy?.stop();
      await resetter.close();
      await sink.kill();
    }
  },
};
