/**
 * What connection tracing costs: many short echo connections (connect, send 32 bytes, read them
 * back, close) through three proxies in one run, each a child with the same app: tracing off (no
 * `tracing` key: the OpenTelemetry modules are never loaded), on at `--sample` (10 %), and on at
 * 100 %; with `--baseline CLI`, a fourth: another build's cli.js (the code before tracing) with
 * no `tracing`, to show what the off path costs against it. The traced proxies export OTLP/HTTP JSON to a receiver in the runner, which counts the
 * connection spans it gets (the check that tracing was really on). Rounds alternate the order of
 * the proxies, so drift hits all alike; the summary gives medians of connections per second.
 */
import http from 'node:http';
import net from 'node:net';
import { freePort, ready, spawnNodeScript, startProxyProcess, type ProxyProcess } from './lib/children.js';
import { median, numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

const PAYLOAD = Buffer.alloc(32, 0x61);

/** One short connection: connect, write, read the echo, end; resolves when the socket closed. */
function oneConnection(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let got = 0;
    s.on('error', () => resolve(false));
    s.once('connect', () => s.write(PAYLOAD));
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= PAYLOAD.length) s.end();
    });
    s.on('close', () => resolve(got === PAYLOAD.length));
  });
}

/** `parallel` loops of short connections for `seconds`: connections per second and failures. */
async function drive(port: number, parallel: number, seconds: number): Promise<{ perSecond: number; failed: number }> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      if (await oneConnection(port)) done++;
      else failed++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: parallel }, loop));
  return { perSecond: done / ((performance.now() - started) / 1000), failed };
}

/** An OTLP/HTTP receiver that counts the connection spans of what it is sent. */
async function countingReceiver(): Promise<{ url: string; spans: () => number; close(): Promise<void> }> {
  let spans = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      spans += Buffer.concat(chunks).toString('utf8').split('"name":"connection"').length - 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1/traces`,
    spans: () => spans,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export const tracing: Scenario = {
  name: 'tracing',
  describe: 'short echo connections per second through the proxy with tracing off, on at --sample (10 %) and on at 100 % (OTLP/HTTP to a local receiver)',
  options: {
    duration: { type: 'string', default: '3', description: 'seconds per run' },
    rounds: { type: 'string', default: '3', description: 'rounds of off / sampled / all, each round in another order' },
    parallel: { type: 'string', default: '8', description: 'connections in flight at once' },
    sample: { type: 'string', default: '0.1', description: 'tracing.sample of the sampled proxy' },
    baseline: { type: 'string', description: "another build's dist/src/cli.js (e.g. the commit before tracing) run with tracing off, as a fourth proxy" },
  },
  async run(args: Args): Promise<Result> {
    const seconds = numberArg(args, 'duration');
    const rounds = Math.floor(numberArg(args, 'rounds'));
    const parallel = Math.floor(numberArg(args, 'parallel'));
    const sample = numberArg(args, 'sample');
    const receiver = await countingReceiver();
    const backend = spawnNodeScript('echo-backend', 'backend', ['echo']);
    const proxies: ProxyProcess[] = [];
    try {
      const { echo } = await ready<{ echo: number }>(backend);
      const baseline = typeof args['baseline'] === 'string' ? args['baseline'] : undefined;
      const variants: { name: string; tracing: { otlp: string; sample: number } | null; cli?: string }[] = [
        ...(baseline ? [{ name: 'off, baseline build', tracing: null, cli: baseline }] : []),
        { name: 'off', tracing: null },
        { name: `on, sample ${sample}`, tracing: { otlp: receiver.url, sample } },
        { name: 'on, sample 1', tracing: { otlp: receiver.url, sample: 1 } },
      ];
      const ports: number[] = [];
      for (const v of variants) {
        const port = await freePort();
        ports.push(port);
        const config = { bind: '127.0.0.1', admin: 'off', health: { interval: '1h' }, drainTimeout: '0s', apps: [{ name: 'echo', ports: [port], targets: [`127.0.0.1:${echo}`] }], ...(v.tracing ? { tracing: v.tracing } : {}) };
        proxies.push(await startProxyProcess(config, [port], 'warn', v.cli ? { cli: v.cli } : {}));
      }
      for (const port of ports) await drive(port, parallel, 0.5); // warm-up, not counted
      const runs: { variant: string; round: number; perSecond: number; failed: number }[] = [];
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < variants.length; k++) {
          const i = (k + r) % variants.length;
          const run = await drive(ports[i]!, parallel, seconds);
          await sleep(300); // the last closes settle before the next proxy's run
          runs.push({ variant: variants[i]!.name, round: r, ...run });
          process.stderr.write(`tracing: round ${r + 1} ${variants[i]!.name}: ${run.perSecond.toFixed(0)} conn/s\n`);
        }
      }
      for (const p of proxies.splice(0)) await p.stop(); // stopping flushes the last spans
      const off = median(runs.filter((x) => x.variant === 'off').map((x) => x.perSecond));
      const rows = variants.map((v) => {
        const mine = runs.filter((x) => x.variant === v.name);
        const m = median(mine.map((x) => x.perSecond));
        // Paired within each round: drift between rounds (other load on the machine) cancels out.
        const paired = median(mine.map((x) => x.perSecond / runs.find((o) => o.variant === 'off' && o.round === x.round)!.perSecond));
        return [v.name, m.toFixed(0), `${((m / off) * 100).toFixed(1)} %`, `${(paired * 100).toFixed(1)} %`, mine.map((x) => x.perSecond.toFixed(0)).join(' / '), String(mine.reduce((a, x) => a + x.failed, 0))];
      });
      return {
        params: { seconds, rounds, parallel, sample, baseline },
        tables: [
          {
            title: `short echo connections (32 bytes each way) through the proxy, ${parallel} in flight, ${seconds} s runs, ${rounds} rounds`,
            columns: ['tracing', 'conn/s (median)', 'vs off', 'vs off, same round (median)', 'rounds', 'failed'],
            rows,
          },
        ],
        notes: [
          `connection spans the receiver got in all: ${receiver.spans()} (the sampled proxy traces about ${sample * 100} % of its connections, the other all of them).`,
          'Client, echo backend and the proxies share the machine: on 2 CPUs the figures move 10 % or more from run to run; compare within one run, best paired within a round.',
        ],
        data: { runs, connectionSpans: receiver.spans() },
      };
    } finally {
      for (const p of proxies) await p.stop();
      await backend.kill();
      await receiver.close();
    }
  },
};
