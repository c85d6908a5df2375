/**
 * soak: one proxy child under mixed traffic for `--minutes` (default 10; not for CI): short
 * request/response connections, long shaped downloads, unshaped bulk downloads, Foo sessions and
 * connections that reset, plus a SIGHUP reload every `--reload` seconds alternating between two
 * configs (the tier's rate differs, and is checked through the admin API after each reload).
 * Every `--sample` seconds it samples the proxy's RSS, heap, open descriptors and active handles;
 * at the end it prints the samples, the growth after warm-up (least-squares slope over the last
 * 80 % of samples) and every error, and writes the samples as an SVG chart beside the JSON.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, ready, RESULTS_DIR, spawnNodeScript, startProxyProcess } from './lib/children.js';
import { openFds, rssBytes } from './lib/procstat.js';
import { proxyMemory } from './lib/proxy-memory.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';
import { download, fooSession, loop, requestResponse, reset, type Counts, type Loop } from './lib/soak-traffic.js';
import { lineChart } from './lib/svg.js';

export interface Sample {
  /** seconds since the traffic started */
  t: number;
  rssKB: number;
  heapUsedKB: number;
  externalKB: number;
  fds: number;
  handles: number;
  connections: number;
}

export interface Growth {
  rssKBPerMin: number;
  heapKBPerMin: number;
  fdsPerMin: number;
  handlesPerMin: number;
}

/** Least-squares slope of y over x. */
export function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** Growth per minute over the samples after warm-up (the first 20 %). */
export function growthAfterWarmup(samples: Sample[]): Growth {
  const after = samples.slice(Math.floor(samples.length * 0.2));
  const per = (key: keyof Sample) => slope(after.map((s) => [s.t / 60, s[key]]));
  return { rssKBPerMin: per('rssKB'), heapKBPerMin: per('heapUsedKB'), fdsPerMin: per('fds'), handlesPerMin: per('handles') };
}

const log = (s: string) => process.stderr.write(`soak: ${s}\n`);

function proxyConfig(ports: Record<string, number>, backends: Record<string, number>, adminPort: number, variant: 0 | 1, rate: number): unknown {
  return {
    apps: [
      { name: 'rr', ports: [ports['rr']], targets: [`127.0.0.1:${backends['echo']}`] },
      { name: 'shaped', ports: [ports['shaped']], targets: [`127.0.0.1:${backends['source']}`] },
      { name: 'bulk', ports: [ports['bulk']], targets: [`127.0.0.1:${backends['source']}`] },
      { name: 'foo', ports: [ports['foo']], targets: [`127.0.0.1:${backends['foo']}`], protocol: 'foo' },
    ],
    bind: '127.0.0.1',
    admin: { listen: `127.0.0.1:${adminPort}` },
    health: { interval: variant === 0 ? '2s' : '3s' },
    log: { level: 'warn' },
    drainTimeout: '0s',
    tiers: { capped: { connection: { down: variant === 0 ? rate : Math.round(rate * 1.5) }, customer: { down: rate * 16 } } },
    customers: [{ id: 'downloads', tier: 'capped', match: { apps: ['shaped'] } }],
  };
}

export const soak: Scenario = {
  name: 'soak',
  describe: 'N minutes of mixed traffic (request/response, shaped and unshaped downloads, Foo, resets) with a SIGHUP reload every 10 s: RSS, heap, fds and handles over time, growth after warm-up, errors',
  options: {
    minutes: { type: 'string', default: '10', description: 'how long the traffic runs' },
    sample: { type: 'string', default: '5', description: 'seconds between samples of the proxy' },
    reload: { type: 'string', default: '10', description: 'seconds between SIGHUP reloads (alternating two configs)' },
    rate: { type: 'string', default: '262144', description: 'bytes/s of a shaped download (config A; B is 1.5x)' },
    'download-bytes': { type: 'string', default: '4194304', description: 'bytes per download (shaped and bulk)' },
    'out-dir': { type: 'string', default: RESULTS_DIR, description: 'where the SVG chart goes' },
  },
  async run(args: Args): Promise<Result> {
    const minutes = numberArg(args, 'minutes');
    const sampleS = numberArg(args, 'sample');
    const reloadS = numberArg(args, 'reload');
    const rate = numberArg(args, 'rate');
    const downloadBytes = numberArg(args, 'download-bytes');
    const outDir = String(args['out-dir']);

    const backend = spawnNodeScript('soak-backend', 'backend', ['echo', 'source', 'foo', '--bytes', String(downloadBytes)]);
    const backends = await ready<Record<string, number>>(backend);
    const ports: Record<string, number> = {};
    for (const app of ['rr', 'shaped', 'bulk', 'foo']) ports[app] = await freePort();
    const adminPort = await freePort();
    const proxy = await startProxyProcess(proxyConfig(ports, backends, adminPort, 0, rate), [adminPort, ...Object.values(ports)], 'warn', { fdLimit: 'hard' });
    const pid = proxy.child.pid;
    const loops: Record<string, Loop> = {};
    const samples: Sample[] = [];
    const reloads = { done: 0, failed: 0, unconfirmed: 0 };
    let stopReloads = () => {};
    let alive = true;
    try {
      const t0 = performance.now();
      const elapsed = () => (performance.now() - t0) / 1000;
      loops['request/response'] = loop(4, 10, async () => {
        const payload = crypto.randomBytes(1 + crypto.randomInt(16 * 1024));
        return { outcome: await requestResponse(ports['rr']!, payload), bytes: payload.length };
      });
      loops['shaped download'] = loop(8, 0, async () => ({ outcome: await download(ports['shaped']!, downloadBytes), bytes: downloadBytes }));
      loops['unshaped bulk'] = loop(1, 200, async () => ({ outcome: await download(ports['bulk']!, downloadBytes), bytes: downloadBytes }));
      loops['foo session'] = loop(2, 20, async () => ({ outcome: await fooSession(ports['foo']!, 20), bytes: 0 }));
      loops['reset'] = loop(1, 100, async () => ({ outcome: await reset(ports['rr']!), bytes: 0 }));

      // Reloads: write the other config, SIGHUP, then check the tier's rate through the admin API.
      let variant: 0 | 1 = 0;
      const reloading = (async () => {
        let stopped = false;
        stopReloads = () => (stopped = true);
        while (!stopped) {
          await sleep(reloadS * 1000);
          if (stopped) break;
          variant = variant === 0 ? 1 : 0;
          const want = variant === 0 ? rate : Math.round(rate * 1.5);
          await fs.promises.writeFile(proxy.file, JSON.stringify(proxyConfig(ports, backends, adminPort, variant, rate), null, 2));
          proxy.child.proc.kill('SIGHUP');
          reloads.done++;
          let confirmed = false;
          for (let i = 0; i < 20 && !confirmed; i++) {
            await sleep(100);
            try {
              const tier = (await (await fetch(`http://127.0.0.1:${adminPort}/tiers/capped`)).json()) as { connection: { down: number } };
              confirmed = tier.connection.down === want;
            } catch {
              // the admin API is busy or restarting; try again
            }
          }
          if (!confirmed) reloads.unconfirmed++;
        }
      })();

      const end = minutes * 60;
      while (elapsed() < end && proxy.child.alive()) {
        await sleep(Math.min(sampleS, Math.max(0, end - elapsed())) * 1000);
        const mem = await proxyMemory(adminPort).catch(() => undefined);
        const stats = (await fetch(`http://127.0.0.1:${adminPort}/status`)
          .then((r) => r.json())
          .catch(() => undefined)) as { connections?: number } | undefined;
        const s: Sample = {
          t: elapsed(),
          rssKB: (rssBytes(pid) ?? NaN) / 1024,
          heapUsedKB: (mem?.heapUsed ?? NaN) / 1024,
          externalKB: (mem?.external ?? NaN) / 1024,
          fds: openFds(pid) ?? NaN,
          handles: mem?.activeHandles ?? NaN,
          connections: stats?.connections ?? NaN,
        };
        samples.push(s);
        const ok = Object.values(loops).reduce((a, l) => a + l.counts.ok, 0);
        log(`${s.t.toFixed(0)} s: RSS ${(s.rssKB / 1024).toFixed(1)} MB, heap ${(s.heapUsedKB / 1024).toFixed(1)} MB, fds ${s.fds}, handles ${s.handles}, open ${s.connections}, exchanges ${ok}, reloads ${reloads.done}`);
      }
      stopReloads();
      log('stopping the traffic (waiting for the downloads under way)');
      await Promise.all(Object.values(loops).map((l) => l.stop()));
      await reloading;
      reloads.failed = (proxy.child.stdout.match(/reload failed/g) ?? []).length;
    } finally {
      stopReloads();
      for (const l of Object.values(loops)) void l.stop();
      alive = proxy.child.alive();
      await proxy.stop();
      await backend.kill();
    }

    const growth = growthAfterWarmup(samples);
    const totals = Object.entries(loops).map(([kind, l]) => [kind, l.counts] as [string, Counts]);
    const errors = totals.reduce((a, [kind, c]) => a + c.mismatches + c.connectErrors + (kind === 'reset' ? 0 : c.unexpectedCloses), 0);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    fs.mkdirSync(outDir, { recursive: true });
    const svgFile = path.join(outDir, `soak-${stamp}.svg`);
    const chart = (title: string, yLabel: string, series: [string, keyof Sample, number][]) =>
      lineChart(
        series.map(([name, key, div]) => ({ name, points: samples.map((s) => [s.t / 60, s[key] / div] as [number, number]) })),
        { title, xLabel: 'minutes', yLabel, width: 720, height: 280 },
      );
    const svgs = [
      chart('proxy memory (MB)', 'MB', [['RSS', 'rssKB', 1024], ['heap used', 'heapUsedKB', 1024], ['external', 'externalKB', 1024]]),
      chart('proxy descriptors, handles, open connections', 'count', [['fds', 'fds', 1], ['active handles', 'handles', 1], ['open connections', 'connections', 1]]),
    ];
    // Two charts stacked in one SVG file.
    const stacked = `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="560">${svgs.map((s, i) => `<g transform="translate(0 ${i * 280})">${s}</g>`).join('')}</svg>\n`;
    fs.writeFileSync(svgFile, stacked);

    const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '?');
    const every = Math.max(1, Math.ceil(samples.length / 24));
    return {
      params: { minutes, sample: sampleS, reload: reloadS, rate, downloadBytes },
      tables: [
        {
          title: `soak: samples of the proxy (every ${every > 1 ? `${every}th, ` : ''}${sampleS} s apart)`,
          columns: ['t (s)', 'RSS (MB)', 'heap (MB)', 'external (MB)', 'fds', 'handles', 'open conns'],
          rows: samples
            .filter((_, i) => i % every === 0 || i === samples.length - 1)
            .map((s) => [s.t.toFixed(0), f1(s.rssKB / 1024), f1(s.heapUsedKB / 1024), f1(s.externalKB / 1024), String(s.fds), String(s.handles), String(s.connections)]),
        },
        {
          title: 'soak: growth after warm-up (least-squares slope over the last 80 % of samples)',
          columns: ['RSS (KB/min)', 'heap (KB/min)', 'fds (/min)', 'handles (/min)'],
          rows: [[f1(growth.rssKBPerMin), f1(growth.heapKBPerMin), growth.fdsPerMin.toFixed(3), growth.handlesPerMin.toFixed(3)]],
        },
        {
          title: 'soak: traffic and errors',
          columns: ['kind', 'ok', 'MB checked', 'mismatches', 'unexpected closes', 'connect errors'],
          rows: totals.map(([kind, c]) => [kind, String(c.ok), f1(c.bytes / 1e6), String(c.mismatches), String(c.unexpectedCloses), String(c.connectErrors)]),
        },
      ],
      notes: [
        `${reloads.done} SIGHUP reloads, ${reloads.failed} failed, ${reloads.unconfirmed} not seen in GET /tiers/capped within 2 s; the proxy ${alive ? 'stayed up' : 'DIED'}.`,
        `${errors} errors (mismatches, connect errors, unexpected closes other than the resets' own).`,
        `chart: ${path.relative(process.cwd(), svgFile)}`,
        'On a shared 2-CPU machine a slope of a few hundred KB/min over minutes can be GC timing; compare the chart\'s shape, not one number.',
      ],
      data: { samples, growth, traffic: Object.fromEntries(totals), reloads, errors, alive, svg: svgFile },
    };
  },
};
