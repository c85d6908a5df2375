/**
 * sources: what distinct client addresses cost the proxy once their connections are gone. Through
 * a `defaultTier` every source address is a customer of its own (with its admission limits);
 * `--sources` addresses (127.1.x.y) each open one connection, echo a line and close it,
 * `--parallel` at a time. The proxy's RSS is read after the 1,000th and after the last source,
 * and again after `--settle` seconds (the housekeeping forgets customers without connections
 * each second); /stats tells how many customers it still holds. The target: RSS growth
 * from the 1,000th to the 6,000th source at most 15 MB.
 */
import net from 'node:net';
import { freePort, ready, spawnNodeScript, startProxyProcess } from './lib/children.js';
import { peakRssBytes, rssBytes } from './lib/procstat.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

const MB = 1024 * 1024;
const log = (s: string) => process.stderr.write(`sources: ${s}\n`);

/** The i-th source address: 127.1.0.1, 127.1.0.2, ... 127.1.0.254, 127.1.1.1, ... */
export function sourceAddress(i: number): string {
  return `127.1.${Math.floor(i / 254) % 256}.${(i % 254) + 1}`;
}

/** One connection from `localAddress`: a line out, the same line back, then both sides close. */
function visit(port: number, localAddress: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    let got = '';
    s.setEncoding('latin1');
    s.on('connect', () => s.write('ping\n'));
    s.on('data', (d: string) => {
      got += d;
      if (got === 'ping\n') s.end();
    });
    s.on('close', () => (got === 'ping\n' ? resolve() : reject(new Error(`${localAddress}: got ${JSON.stringify(got)}`))));
    s.on('error', reject);
  });
}

async function customers(adminPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/stats`);
  const stats = (await res.json()) as { customers?: unknown[] };
  return stats.customers?.length ?? 0;
}

export const sources: Scenario = {
  name: 'sources',
  describe: 'memory after many distinct client addresses come and go through a defaultTier (customers of closed connections are forgotten)',
  options: {
    sources: { type: 'string', default: '6000', description: 'distinct source addresses, one connection each' },
    parallel: { type: 'string', default: '16', description: 'connections open at once' },
    mark: { type: 'string', default: '1000', description: 'the RSS baseline is read after this many sources' },
    settle: { type: 'string', default: '3', description: 'seconds to wait after the last source before the final reading' },
    unshaped: { type: 'boolean', default: false, description: 'no defaultTier: what the connections cost without any customer (a baseline)' },
  },
  async run(args: Args): Promise<Result> {
    const total = numberArg(args, 'sources');
    const parallel = numberArg(args, 'parallel');
    const mark = Math.min(numberArg(args, 'mark'), total);
    const settle = numberArg(args, 'settle');
    const backend = spawnNodeScript('sources-backend', 'backend', ['echo']);
    const { echo } = await ready<{ echo: number }>(backend);
    const [port, adminPort] = [await freePort(), await freePort()];
    const config = {
      apps: [{ name: 'web', ports: [port], targets: [`127.0.0.1:${echo}`] }],
      bind: '127.0.0.1',
      admin: { listen: `127.0.0.1:${adminPort}` },
      health: { interval: '1h' },
      log: { level: 'warn' },
      drainTimeout: '0s',
      tiers: { free: { connection: { down: '10MiB/s', up: '10MiB/s' }, customer: { down: '20MiB/s' }, maxConnections: 4 } },
      ...(args['unshaped'] ? {} : { defaultTier: 'free' }),
    };
    const proxy = await startProxyProcess(config, [port, adminPort]);
    const pid = proxy.child.pid!;
    try {
      let next = 0;
      let atMark = 0;
      let customersAtMark = 0;
      const every: { sources: number; rss: number }[] = [];
      const started = Date.now();
      const worker = async (): Promise<void> => {
        while (next < total) {
          const i = next++;
          await visit(port, sourceAddress(i));
          if ((i + 1) % 1000 === 0) every.push({ sources: i + 1, rss: rssBytes(pid)! });
          if (i + 1 === mark) {
            atMark = rssBytes(pid)!;
            customersAtMark = await customers(adminPort);
          }
        }
      };
      await Promise.all(Array.from({ length: parallel }, worker));
      const seconds = (Date.now() - started) / 1000;
      const atEnd = rssBytes(pid)!;
      const customersAtEnd = await customers(adminPort);
      await sleep(settle * 1000);
      const settled = rssBytes(pid)!;
      const customersSettled = await customers(adminPort);
      const peak = peakRssBytes(pid)!;
      const growth = atEnd - atMark;
      log(`${total} sources in ${seconds.toFixed(1)} s`);
      const f1 = (b: number) => (b / MB).toFixed(1);
      return {
        params: { sources: total, parallel, mark, settle, unshaped: Boolean(args['unshaped']) },
        tables: [
          {
            title: args['unshaped'] ? `${total} sources, one connection each, unshaped (no defaultTier)` : `${total} sources, one connection each, through defaultTier "free" (maxConnections 4)`,
            columns: ['', `after source ${mark}`, `after source ${total}`, `${settle} s later`],
            rows: [
              ['proxy RSS (MB)', f1(atMark), f1(atEnd), f1(settled)],
              ['customers held (/stats)', String(customersAtMark), String(customersAtEnd), String(customersSettled)],
            ],
          },
        ],
        notes: [
          `RSS (MB) every 1000 sources: ${every.map((e) => f1(e.rss)).join(', ')}`,
          `RSS growth from source ${mark} to ${total}: ${f1(growth)} MB (${((growth / Math.max(1, total - mark)) / 1024).toFixed(2)} KB per source; target: at most 15 MB); peak RSS ${f1(peak)} MB`,
          `${(total / seconds).toFixed(0)} sources per second`,
        ],
        data: { total, parallel, mark, seconds, rss: { atMark, atEnd, settled, peak, growth, every }, customers: { atMark: customersAtMark, atEnd: customersAtEnd, settled: customersSettled } },
      };
    } finally {
      await proxy.stop();
      await backend.kill();
    }
  },
};
