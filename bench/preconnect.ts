/**
 * Pre-dialed target connections (apps[].preconnect) against dialing per client: time from a
 * client's connect to its first byte back, through a target whose connect takes `--delay` ms. On
 * loopback a TCP connect takes microseconds, so the target is a TLS one (the proxy dials it with
 * targetTls) that starts its handshake `--delay` ms after the accept: the proxy's connect time is
 * that delay plus the handshake. The target echoes; each client connects, writes one byte and
 * times the echo. Clients come one at a time, `--gap` ms apart (a pool refills in about one
 * connect time), alternating between the two apps. The proxy runs as a child; the target and the
 * clients share the runner's loop.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { freePort, ROOT, startProxyProcess } from './lib/children.js';
import { percentile } from './lib/conns-client.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/tls');

/** A TLS echo target on loopback whose handshake starts `delayMs` after the TCP accept. */
async function delayedTlsTarget(delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const context = tls.createSecureContext({ cert: fs.readFileSync(path.join(FIXTURES, 'backend.pem')), key: fs.readFileSync(path.join(FIXTURES, 'backend-key.pem')) });
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    setTimeout(() => {
      const s = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
      s.on('error', () => {});
      s.pipe(s);
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** ms from connect() to the first byte echoed back (NaN: closed or 5 s without it). */
function firstByte(port: number): Promise<number> {
  return new Promise((resolve) => {
    const start = performance.now();
    const s = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => done(NaN), 5000);
    const done = (ms: number): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ms);
    };
    s.on('error', () => done(NaN));
    s.once('connect', () => s.write('x'));
    s.once('data', () => done(performance.now() - start));
  });
}

const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(2));

export const preconnect: Scenario = {
  name: 'preconnect',
  describe: 'client connect to first byte, with pre-dialed target connections (preconnect) and without, through a target with a slow connect',
  options: {
    delay: { type: 'string', default: '20', description: "ms the target's connect takes (its TLS handshake starts this late)" },
    clients: { type: 'string', default: '200', description: 'clients per app, one at a time' },
    gap: { type: 'string', default: '30', description: 'ms between clients' },
    count: { type: 'string', default: '4', description: 'preconnect.count' },
  },
  async run(args: Args): Promise<Result> {
    const delay = numberArg(args, 'delay');
    const clients = Math.floor(numberArg(args, 'clients'));
    const gap = numberArg(args, 'gap');
    const count = Math.floor(numberArg(args, 'count'));
    const target = await delayedTlsTarget(delay);
    const [plainPort, poolPort] = [await freePort(), await freePort()];
    const targetTls = { ca: path.join(FIXTURES, 'ca.pem'), rejectUnauthorized: true };
    const targets = [`127.0.0.1:${target.port}`];
    let proxy: Awaited<ReturnType<typeof startProxyProcess>> | undefined;
    try {
      proxy = await startProxyProcess(
        {
          bind: '127.0.0.1',
          admin: 'off',
          health: { interval: '1h' },
          drainTimeout: '0s',
          apps: [
            { name: 'per-client', ports: [plainPort], targets, targetTls },
            { name: 'pre-dialed', ports: [poolPort], targets, targetTls, preconnect: { count, maxIdle: '30s' } },
          ],
        },
        [plainPort, poolPort],
      );
      await sleep(delay * 5); // the pool's first dials
      const ms: Record<'per-client' | 'pre-dialed', number[]> = { 'per-client': [], 'pre-dialed': [] };
      for (let i = 0; i < clients; i++) {
        for (const [name, port] of i % 2 ? ([['pre-dialed', poolPort], ['per-client', plainPort]] as const) : ([['per-client', plainPort], ['pre-dialed', poolPort]] as const)) {
          ms[name].push(await firstByte(port));
          await sleep(gap);
        }
      }
      const rows = (['per-client', 'pre-dialed'] as const).map((name) => {
        const ok = ms[name].filter((x) => !Number.isNaN(x));
        return [name, f(percentile(ok, 50)), f(percentile(ok, 90)), f(percentile(ok, 99)), f(percentile(ok, 100)), String(ms[name].length - ok.length)];
      });
      return {
        params: { delayMs: delay, clients, gapMs: gap, count },
        tables: [
          {
            title: `client connect to first byte through the proxy, target connect ${delay} ms (TLS), ${clients} clients per app, ${gap} ms apart`,
            columns: ['app', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'failed'],
            rows,
          },
        ],
        notes: [
          'per-client: the proxy dials the target (connect + TLS handshake) after each client connects; pre-dialed: preconnect {count, maxIdle 30s} hands over a connection dialed ahead.',
          'A pre-dialed client that finds the pool empty (clients faster than a connect time) dials like per-client: that shows in the tail.',
        ],
        data: ms,
      };
    } finally {
      await proxy?.stop();
      await target.close();
    }
  },
};
