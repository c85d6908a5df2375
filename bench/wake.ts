/**
 * Wake-on-connect: an app whose target is down and whose `wake` hook (a POST to the runner) starts
 * it `--boot` ms later. Each round, `--clients` clients connect at once and each sends its own bytes
 * and half-closes while held; the target (a collect backend in the runner: it answers the sha256 and
 * length of what it got) comes up, and every client must get exactly its own answer. Reported per
 * round: ms from the first client's connect to the first and the last client served, the clients
 * the proxy held (its /status), hooks run, and clients lost or answered wrong. The proxy runs as a
 * child; the target, the hook server and the clients share the runner's loop.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { freePort, startProxyProcess } from './lib/children.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

/** A collect target on `port`: "<sha256> <bytes>\n" after each client's FIN. */
async function collectTarget(port: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const hash = crypto.createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => {
      hash.update(d);
      n += d.length;
    });
    s.on('end', () => s.end(`${hash.digest('hex')} ${n}\n`));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One client: its bytes, then the answer; ms from `t0` to the answer, or NaN when it was wrong or missing. */
function client(port: number, bytes: Buffer, t0: number): Promise<number> {
  const want = `${crypto.createHash('sha256').update(bytes).digest('hex')} ${bytes.length}\n`;
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    s.on('error', () => {});
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.once('close', () => resolve(got === want ? performance.now() - t0 : NaN));
    s.once('end', () => s.destroy());
    s.end(bytes);
  });
}

export const wake: Scenario = {
  name: 'wake',
  describe: 'wake-on-connect: time from the first client to served, clients held, none lost, for a target that boots on the wake hook',
  options: {
    clients: { type: 'string', default: '50', description: 'clients per round, all at once' },
    boot: { type: 'string', default: '300', description: 'ms from the hook to the target listening' },
    rounds: { type: 'string', default: '3', description: 'wakes (the target is stopped between them)' },
    bytes: { type: 'string', default: '65536', description: 'bytes each client sends while held' },
  },
  async run(args: Args): Promise<Result> {
    const n = Math.floor(numberArg(args, 'clients'));
    const boot = numberArg(args, 'boot');
    const rounds = Math.floor(numberArg(args, 'rounds'));
    const size = Math.floor(numberArg(args, 'bytes'));
    const [targetPort, appPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    let target: { close(): Promise<void> } | null = null;
    let hooks = 0;
    const hook = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hooks++;
        res.end();
        setTimeout(() => void collectTarget(targetPort).then((t) => (target = t)), boot);
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(hook.address() as net.AddressInfo).port}/wake`;
    let proxy: Awaited<ReturnType<typeof startProxyProcess>> | undefined;
    try {
      proxy = await startProxyProcess(
        {
          bind: '127.0.0.1',
          admin: { listen: `127.0.0.1:${adminPort}` },
          health: { interval: '1h' },
          drainTimeout: '0s',
          apps: [{ name: 'lazy', ports: [appPort], targets: [`127.0.0.1:${targetPort}`], wake: { url, timeout: '30s' } }],
        },
        [appPort],
      );
      const rows: string[][] = [];
      const data: unknown[] = [];
      const wakeStatus = async (): Promise<{ clientsHeld: number; state: string }> =>
        ((await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as { apps: { wake: { clientsHeld: number; state: string } }[] }).apps[0]!.wake;
      const heldSoFar = async (): Promise<number> => (await wakeStatus()).clientsHeld;
      // The runner's start-up port check was a client too: let the wake it started finish, then stop the target.
      while ((await wakeStatus()).state === 'waking') await sleep(50);
      await sleep(boot + 50);
      await (target as { close(): Promise<void> } | null)?.close();
      target = null;
      for (let r = 0; r < rounds; r++) {
        const hooksBefore = hooks;
        const heldBefore = await heldSoFar();
        const t0 = performance.now();
        const ms = await Promise.all(Array.from({ length: n }, (_, i) => client(appPort, crypto.randomBytes(size + i), t0)));
        const served = ms.filter((x) => !Number.isNaN(x));
        const held = (await heldSoFar()) - heldBefore;
        rows.push([String(r + 1), (Math.min(...served) || NaN).toFixed(1), Math.max(...served).toFixed(1), String(held), String(hooks - hooksBefore), String(n - served.length)]);
        data.push({ ms, held, hooks: hooks - hooksBefore });
        await (target as { close(): Promise<void> } | null)?.close();
        target = null;
        await sleep(50);
      }
      return {
        params: { clients: n, bootMs: boot, rounds, bytes: size },
        tables: [
          {
            title: `wake: ${n} clients at once per round, target boots ${boot} ms after the hook; ms from the first client's connect`,
            columns: ['round', 'first served ms', 'last served ms', 'held', 'hooks', 'lost'],
            rows,
          },
        ],
        notes: [
          `served = the client got exactly the sha256 and length of the ${size}+ bytes it sent while held; lost = any other outcome.`,
          `the floor is the boot time (${boot} ms) plus up to one probe period (100 ms).`,
          'held: clients the proxy held this round (/status wake.clientsHeld); the runner\'s start-up port check wakes the app once before round 1 (not counted).',
        ],
        data,
      };
    } finally {
      await proxy?.stop();
      await (target as { close(): Promise<void> } | null)?.close();
      await new Promise<void>((r) => hook.close(() => r()));
    }
  },
};
