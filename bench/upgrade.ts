/**
 * Upgrade under load (issue 16): a client opening --rate connections a second through the proxy
 * (each an echo round trip: a line out, the same line and the FIN back) and --downloads long
 * downloads (--bytes each of bytes that differ by position, capped at --download-rate per connection
 * so they run across the upgrade); after --before seconds `shaper-proxy ctl upgrade`; the opener
 * keeps going --after seconds more. It counts refused and reset connections, checks every download
 * byte for byte, that the old process exits (0) once drained and that the new one serves.
 *
 * The proxy (the CLI, with --pid-file) and the backends are children; the clients share the
 * runner's loop, so connect times include its turns.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI, freePort, PROXY_NODE_FLAGS, ready, spawnChild, spawnNodeScript, waitForPort } from './lib/children.js';
import { percentile } from './lib/conns-client.js';
import { tcpExtCounters } from './lib/procstat.js';
import { lcgBytes } from './lib/pattern.js';
import { numberArg, sleep, type Args, type Result, type Scenario } from './lib/scenario.js';

type Outcome = 'ok' | 'refused' | 'reset' | 'other';

interface Attempt {
  /** ms since the start when it was opened */
  at: number;
  outcome: Outcome;
  /** ms from connect() to the connection (NaN: none) */
  connectMs: number;
  detail?: string;
}

/** Opens `rate` connections a second until stop(): each an echo round trip of one line. */
function opener(port: number, rate: number, t0: number) {
  const attempts: Attempt[] = [];
  const open = new Set<Promise<void>>();
  let opened = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const line = `upgrade bench ${++opened}\n`;
      const a: Attempt = { at: performance.now() - t0, outcome: 'other', connectMs: NaN };
      attempts.push(a);
      const begun = performance.now();
      const chunks: Buffer[] = [];
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('connect', () => {
        a.connectMs = performance.now() - begun;
        s.end(line);
      });
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => {
        const got = Buffer.concat(chunks).toString();
        if (got === line) a.outcome = 'ok';
        else a.detail = `answered ${got.length} bytes`;
        s.destroy();
      });
      s.on('error', (err: NodeJS.ErrnoException) => {
        a.outcome = err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'other';
        a.detail = err.code ?? err.message;
      });
      s.on('close', () => resolve());
    });
  // A 10 ms tick opens what the rate owes since the start (timers are not exact at 5 ms).
  const started = performance.now();
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (opened < due) {
      const p = one();
      open.add(p);
      void p.then(() => open.delete(p));
    }
  }, 10);
  return {
    attempts,
    async stop() {
      clearInterval(timer);
      await Promise.all(open);
    },
  };
}

interface Download {
  bytes: number;
  exact: boolean;
  error?: string;
  /** ms since the start */
  endedAt: number;
}

function download(port: number, expected: string, t0: number): Promise<Download> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let error: string | undefined;
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    s.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    s.on('close', () => resolve({ bytes, exact: !error && hash.digest('hex') === expected, ...(error ? { error } : {}), endedAt: performance.now() - t0 }));
  });
}

function ctlUpgrade(admin: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'ctl', 'upgrade', '--json', '--admin', `http://127.0.0.1:${admin}`], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The proxy's "connection closed" lines (both processes write to the same stdout) by pid and reason. */
function closeReasons(stdout: string): Map<number, Record<string, number>> {
  const out = new Map<number, Record<string, number>>();
  for (const line of stdout.split('\n')) {
    if (!line.includes('"connection closed"')) continue;
    try {
      const l = JSON.parse(line) as { pid: number; reason: string; error?: string };
      const r = out.get(l.pid) ?? {};
      const key = l.error ? `${l.reason} (${l.error})` : l.reason;
      r[key] = (r[key] ?? 0) + 1;
      out.set(l.pid, r);
    } catch {
      // not a log line
    }
  }
  return out;
}

/** The kernel's counters of accept queue overflows and SYN cookies, the source of resets under overload. */
const KERNEL_COUNTERS = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesFailed'] as const;

const fmt = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(1) : '-');

async function run(args: Args): Promise<Result> {
  const rate = numberArg(args, 'rate');
  const downloads = numberArg(args, 'downloads');
  const bytes = numberArg(args, 'bytes');
  const downloadRate = String(args['download-rate']);
  const before = numberArg(args, 'before') * 1000;
  const after = numberArg(args, 'after') * 1000;
  const expected = createHash('sha256').update(lcgBytes(bytes)).digest('hex');

  const backend = spawnNodeScript('backends', 'backend', ['echo', 'pattern', '--bytes', String(bytes)]);
  const ports = await ready<{ echo: number; pattern: number }>(backend);
  const [echoPort, downloadPort, admin] = [await freePort(), await freePort(), await freePort()];
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'shaper-bench-upgrade-'));
  const file = path.join(dir, 'proxy.json');
  const pidFile = path.join(dir, 'proxy.pid');
  await fs.promises.writeFile(
    file,
    JSON.stringify({
      bind: '127.0.0.1',
      admin: { listen: `127.0.0.1:${admin}` },
      drainTimeout: '120s',
      apps: [
        { name: 'echo', ports: [echoPort], targets: [`127.0.0.1:${ports.echo}`] },
        { name: 'download', ports: [downloadPort], targets: [`127.0.0.1:${ports.pattern}`] },
      ],
      tiers: { long: { connection: { down: downloadRate } } },
      customers: [{ id: 'downloads', tier: 'long', match: { apps: ['download'] } }],
    }),
  );
  const proxy = spawnChild('shaper-proxy', process.execPath, [...PROXY_NODE_FLAGS, CLI, '--config', file, '--pid-file', pidFile, '--log-level', 'info']);
  // The upgraded process is the proxy's child, not ours: stop it however the runner ends.
  let newPid: number | null = null;
  const killNew = () => {
    if (newPid !== null && alive(newPid)) process.kill(newPid, 'SIGKILL');
  };
  process.on('exit', killNew);
  try {
    for (const port of [echoPort, downloadPort, admin]) await waitForPort(port, proxy);
    const oldPid = proxy.pid;
    const kernelBefore = tcpExtCounters(KERNEL_COUNTERS);
    const t0 = performance.now();
    const load = opener(echoPort, rate, t0);
    const dls = Array.from({ length: downloads }, () => download(downloadPort, expected, t0));
    await sleep(before);
    const upgradeAt = performance.now() - t0;
    const answer = await ctlUpgrade(admin);
    const upgradedAt = performance.now() - t0;
    const result = (() => {
      try {
        return JSON.parse(answer.stdout) as { ok: boolean; newPid: number; draining: number; ms: number };
      } catch {
        return null;
      }
    })();
    if (answer.code !== 0 || !result?.ok) throw new Error(`ctl upgrade failed (${answer.code}): ${answer.stderr.trim() || answer.stdout.trim()}`);
    newPid = result.newPid;
    const oldExit = proxy.exited.then((code) => ({ code, at: performance.now() - t0 }));
    await sleep(after);
    const loadSeconds = (performance.now() - t0) / 1000;
    await load.stop();
    const done = await Promise.all(dls);
    const kernelAfter = tcpExtCounters(KERNEL_COUNTERS);
    const kernel = kernelBefore && kernelAfter ? Object.fromEntries(KERNEL_COUNTERS.map((k) => [k, kernelAfter[k]! - kernelBefore[k]!])) : undefined;
    const exit = await Promise.race([oldExit, sleep(30_000).then(() => null)]);
    const status = (await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as { pid: number };
    const pidInFile = Number(fs.readFileSync(pidFile, 'utf8').trim());

    const count = (o: Outcome) => load.attempts.filter((a) => a.outcome === o).length;
    const inWindow = (from: number, to: number) => load.attempts.filter((a) => a.at >= from && a.at < to);
    const oldExitAt = exit?.at ?? Infinity;
    const phases = [
      ['before the upgrade', inWindow(0, upgradeAt)],
      ['during (ctl upgrade answering)', inWindow(upgradeAt, upgradedAt)],
      ['after, old draining', inWindow(upgradedAt, oldExitAt)],
      ['after, old gone', inWindow(oldExitAt, Infinity)],
    ] as const;
    const exact = done.filter((d) => d.exact).length;
    const openAtHandover = done.filter((d) => d.endedAt > upgradedAt).length;
    const newServes = status.pid === newPid && pidInFile === newPid && alive(newPid);
    // Downloads that ended before the handover prove nothing about it: then raise --bytes.
    const verdict = count('refused') === 0 && count('reset') === 0 && count('other') === 0 && exact === downloads && openAtHandover === downloads && exit?.code === 0 && newServes;
    if (!verdict) process.exitCode = 1;
    const reasons = closeReasons(proxy.stdout);
    const reasonRows = [oldPid, newPid].map((pid) => [pid === oldPid ? `old (${pid})` : `new (${pid})`, Object.entries(reasons.get(pid) ?? {}).map(([k, n]) => `${k} ${n}`).join(', ') || '-']);
    return {
      params: { rate, downloads, bytes, downloadRate, before: before / 1000, after: after / 1000 },
      tables: [
        {
          title: `Upgrade under load: ${load.attempts.length} connections opened (${(load.attempts.length / loadSeconds).toFixed(0)}/s over ${loadSeconds.toFixed(1)} s), ${downloads} downloads of ${bytes} bytes at ${downloadRate}`,
          columns: ['measure', 'value'],
          rows: [
            ['connections ok', String(count('ok'))],
            ['connections refused', String(count('refused'))],
            ['connections reset', String(count('reset'))],
            ['connections failed otherwise', String(count('other'))],
            ['downloads byte-exact', `${exact} / ${downloads}`],
            ['downloads still open at the handover', `${openAtHandover} / ${downloads}`],
            ['ctl upgrade answered in (ms)', fmt(upgradedAt - upgradeAt)],
            ['old process drained and exited (s after the handover)', exit ? `${((exit.at - upgradedAt) / 1000).toFixed(1)} (status ${exit.code})` : 'still running after 30 s'],
            ['new process serves (/status pid, pid file)', newServes ? `yes (pid ${newPid}, was ${oldPid})` : `NO (status ${status.pid}, file ${pidInFile}, new ${newPid})`],
            ['verdict', verdict ? 'PASS' : 'FAIL'],
          ],
        },
        {
          title: 'Connections the proxy closed, by process and close reason (its log lines)',
          columns: ['process', 'reasons'],
          rows: reasonRows,
        },
        ...(kernel
          ? [
              {
                title: 'Kernel TCP counters during the load (machine-wide: other processes count too)',
                columns: ['counter', 'delta'],
                rows: KERNEL_COUNTERS.map((k) => [k, String(kernel[k])]),
              },
            ]
          : []),
        {
          title: 'Connect time (ms from connect() to connected) by phase',
          columns: ['phase', 'connections', 'not ok', 'p50', 'p99', 'max'],
          rows: phases.map(([name, list]) => {
            const ms = list.map((a) => a.connectMs).filter(Number.isFinite);
            return [name, String(list.length), String(list.filter((a) => a.outcome !== 'ok').length), fmt(percentile(ms, 50)), fmt(percentile(ms, 99)), fmt(percentile(ms, 100))];
          }),
        },
      ],
      notes: [
        'Verdict PASS: no connection refused, reset or otherwise failed, every download byte-exact and still open when ctl upgrade answered, the old process exited 0, and /status and the pid file name the new process.',
        '"during" covers the new process starting (node, the config, the listeners) until ctl upgrade answered; the old one accepts meanwhile, the new one from its readiness on.',
        'A reset with no close line from the proxy never reached it: the kernel reset it. An accept queue that overflows (ListenOverflows) makes the kernel answer SYNs with cookies, and a cookie connection whose client sent before it was accepted is reset (SyncookiesFailed); the proxy listens with a 4096 backlog (LISTEN_BACKLOG) against that.',
        'The clients run on the runner\'s event loop: connect times include its turns; on a shared 2-core machine they are noisy.',
      ],
      data: { upgradeAt, upgradedAt, result, exit, closeReasons: Object.fromEntries(reasons), kernel, attempts: load.attempts.filter((a) => a.outcome !== 'ok'), downloads: done },
    };
  } finally {
    killNew();
    process.off('exit', killNew);
    await proxy.kill();
    await backend.kill();
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

export const upgrade: Scenario = {
  name: 'upgrade',
  describe: 'ctl upgrade under load: connections refused/reset, downloads byte-exact, the old process drains and exits',
  options: {
    rate: { type: 'string', default: '200', description: 'new connections a second (echo round trips)' },
    downloads: { type: 'string', default: '20', description: 'long downloads running across the upgrade' },
    bytes: { type: 'string', default: '25165824', description: 'bytes per download (24 MiB: 24 s at the default cap, across an upgrade that takes 10-15 s on a loaded machine)' },
    'download-rate': { type: 'string', default: '1MiB/s', description: 'per-connection cap of the downloads (so they outlast the upgrade)' },
    before: { type: 'string', default: '1', description: 'seconds of load before ctl upgrade' },
    after: { type: 'string', default: '3', description: 'seconds of load after ctl upgrade answered' },
  },
  run,
};
