/**
 * Upgrade without dropping a connection: `shaper-proxy ctl upgrade` (POST /upgrade) and SIGWINCH
 * start the program on disk, hand it the listening sockets, and the old process drains and exits.
 * Real processes throughout: the CLI, the process it starts, ctl; clients on real sockets.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { backendFor, cleanup, CLI, cliFor, connect, ctl, freePort, pattern, readAll, sha256, tempDir, waitFor, which, type Child } from '../helpers.js';

/** Each download: 1 MiB through a 2 MiB/s connection cap. */
const DOWNLOAD = 1024 * 1024;
const RATE = '2MiB/s';

/** Whether `pid` runs (a zombie does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function setup(t: TestContext, session = false) {
  const dir = await tempDir(t, 'shaper-upgrade-');
  const source = await backendFor(t, 'source', { sourceBytes: DOWNLOAD });
  const echo = await backendFor(t, 'echo');
  const [download, echoPort, admin] = [await freePort(), await freePort(), await freePort()];
  const file = path.join(dir, 'proxy.json');
  const pidFile = path.join(dir, 'run', 'proxy.pid');
  const write = (tierDown = RATE) =>
    writeFile(
      file,
      JSON.stringify({
        bind: '127.0.0.1',
        admin: { listen: `127.0.0.1:${admin}` },
        drainTimeout: '30s',
        apps: [
          { name: 'download', ports: [download], targets: [source.address] },
          { name: 'echo', ports: [echoPort], targets: [echo.address] },
        ],
        tiers: { slow: { connection: { down: tierDown } } },
        defaultTier: 'slow',
      }),
    );
  await write();
  const proxy = cliFor(t, ['--config', file, '--pid-file', pidFile], {}, { session });
  await proxy.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'app:echo', 10_000, 'the echo port');
  await proxy.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'admin', 10_000, 'the admin API');
  const url = `http://127.0.0.1:${admin}`;
  // The processes the upgrades start are not the test's children: stop whichever still runs.
  const pids = new Set<number>();
  cleanup(t, async () => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor(() => [...pids].every((p) => !alive(p)), 5000, 'the upgraded processes gone');
  });
  const pidInFile = async () => Number((await readFile(pidFile, 'utf8')).trim());
  const servingPid = async () => ((await (await fetch(`${url}/status`)).json()) as { pid: number }).pid;
  return { file, write, proxy, url, download, echoPort, pids, pidInFile, servingPid };
}

/**
 * One download through the proxy, read once `go` resolves (until then it stays open, held back by
 * TCP flow control, in the process that accepted it, whatever the timing): whether it arrived whole,
 * byte for byte.
 */
async function download(port: number, go: Promise<unknown>): Promise<boolean> {
  const s = await connect(port);
  s.pause();
  await go;
  const all = readAll(s);
  s.resume();
  const got = await all;
  s.destroy();
  return got.length === DOWNLOAD && sha256(got) === sha256(pattern(DOWNLOAD));
}

/** A promise and the function that resolves it. */
function gate(): { go: Promise<void>; open: () => void } {
  let open = () => {};
  const go = new Promise<void>((r) => (open = r));
  return { go, open };
}

/** An echo round trip through the proxy, to be answered exactly. */
async function echoes(port: number, text = 'ping'): Promise<string> {
  const s = await connect(port);
  const got = readAll(s);
  s.end(text);
  return (await got).toString();
}

/**
 * A client opening a connection every `everyMs` until stopped: each sends a line, half-closes, and
 * must get the line back and the FIN. Refusals, resets and short answers are counted.
 */
function churn(port: number, everyMs = 10) {
  const counts = { ok: 0, refused: 0, reset: 0, other: [] as string[] };
  const open = new Set<Promise<void>>();
  let n = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const line = `ping ${++n}\n`;
      const chunks: Buffer[] = [];
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('connect', () => s.end(line));
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => {
        const got = Buffer.concat(chunks).toString();
        if (got === line) counts.ok++;
        else counts.other.push(`answered ${JSON.stringify(got)} to ${JSON.stringify(line)}`);
        s.destroy();
      });
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') counts.refused++;
        else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') counts.reset++;
        else counts.other.push(err.code ?? err.message);
      });
      s.on('close', () => resolve());
    });
  const timer = setInterval(() => {
    const p = one();
    open.add(p);
    void p.then(() => open.delete(p));
  }, everyMs);
  return {
    counts,
    async stop() {
      clearInterval(timer);
      await Promise.all(open);
    },
  };
}

/** The connections a process closed, by reason. */
function closeReasons(proxy: Child, pid: number): Record<string, number> {
  const reasons: Record<string, number> = {};
  for (const l of proxy.logs) if (l['msg'] === 'connection closed' && l['pid'] === pid) reasons[String(l['reason'])] = (reasons[String(l['reason'])] ?? 0) + 1;
  return reasons;
}

test('ctl upgrade under load: no connection refused or reset, downloads byte-exact, the new process serves, the old one drains and exits', async (t) => {
  const { proxy, url, download: dlPort, echoPort, pids, pidInFile, servingPid } = await setup(t);
  const oldPid = proxy.proc.pid!;
  assert.equal(await pidInFile(), oldPid);
  const load = churn(echoPort);
  const upgraded = gate();
  const downloads = Array.from({ length: 4 }, () => download(dlPort, upgraded.go));
  await waitFor(() => load.counts.ok >= 20, 10_000, 'connections served before the upgrade');

  const r = await ctl(['upgrade', '--admin', url, '--json']);
  upgraded.open();
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  const result = JSON.parse(r.stdout) as { ok: boolean; oldPid: number; newPid: number; listeners: number; draining: number };
  pids.add(result.newPid);
  assert.equal(result.ok, true);
  assert.equal(result.oldPid, oldPid);
  assert.notEqual(result.newPid, oldPid);
  assert.equal(result.listeners, 3, 'two app ports and the admin API handed over');
  assert.ok(result.draining >= 4, `the downloads drain in the old process (${result.draining} connections)`);
  // The new process serves from here on: new connections and the admin API.
  assert.equal(await servingPid(), result.newPid);
  assert.equal(await pidInFile(), result.newPid);
  const servedBefore = load.counts.ok;
  await waitFor(() => load.counts.ok >= servedBefore + 20, 10_000, 'connections served after the upgrade');

  assert.deepEqual(await Promise.all(downloads), [true, true, true, true], 'every download complete and byte-exact');
  assert.equal(await proxy.exited, 0, 'the old process exits once drained');
  await load.stop();
  assert.deepEqual({ refused: load.counts.refused, reset: load.counts.reset, other: load.counts.other }, { refused: 0, reset: 0, other: [] });
  assert.ok(alive(result.newPid), 'the new process runs on');
  assert.equal(await servingPid(), result.newPid);
  // Both processes closed every connection cleanly, the old one after draining the downloads.
  const old = closeReasons(proxy, oldPid);
  const fresh = closeReasons(proxy, result.newPid);
  assert.deepEqual(Object.keys(old), ['done'], JSON.stringify(old));
  assert.deepEqual(Object.keys(fresh), ['done'], JSON.stringify(fresh));
  assert.ok(fresh['done']! >= 20, `the new process served connections (${fresh['done']})`);
  const shutdown = proxy.logs.find((l) => l['pid'] === oldPid && l['msg'] === 'shutdown complete');
  assert.equal(shutdown?.['closed'], 0, 'nothing was cut at the end of the drain');
});

test('an upgrade whose new program cannot start (the config made invalid): ctl exits 2 with why, the old process keeps serving', async (t) => {
  const { write, proxy, url, echoPort, pids, pidInFile, servingPid } = await setup(t);
  const oldPid = proxy.proc.pid!;
  await write('1 megabit');
  const r = await ctl(['upgrade', '--admin', url]);
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /upgrade failed; the old process keeps serving/);
  assert.match(r.stderr, /exited with status 2/);
  assert.match(r.stderr, /tiers\.slow\.connection\.down: "1 megabit" is not a rate/);
  await proxy.waitLog((l) => l['msg'] === 'upgrade failed; this process keeps serving', 3000, 'the failure logged');
  assert.equal(await echoes(echoPort), 'ping');
  assert.equal(await servingPid(), oldPid);
  assert.equal(await pidInFile(), oldPid, 'the pid file still names the old process');
  assert.ok(alive(oldPid));

  // Drained (POST /drain), it refuses: the new process would accept on the ports the drain closed.
  await write();
  assert.equal((await ctl(['drain', '--admin', url])).code, 0);
  const drained = await ctl(['upgrade', '--admin', url]);
  assert.equal(drained.code, 2, `${drained.stdout}${drained.stderr}`);
  assert.match(drained.stderr, /this process is drained \(POST \/drain\).*undrain it first/);
  assert.equal(await servingPid(), oldPid);
  assert.equal((await ctl(['undrain', '--admin', url])).code, 0);

  // Fixed and undrained, the next upgrade goes through.
  const again = await ctl(['upgrade', '--admin', url, '--json']);
  assert.equal(again.code, 0, `${again.stdout}${again.stderr}`);
  const { newPid } = JSON.parse(again.stdout) as { newPid: number };
  pids.add(newPid);
  assert.equal(await proxy.exited, 0);
  assert.equal(await servingPid(), newPid);
  assert.equal(await echoes(echoPort), 'ping');
});

test('SIGWINCH upgrades a process without a controlling terminal; the new one upgrades in turn; a stop signal while draining lets the drain finish', async (t) => {
  const { proxy, url, download: dlPort, echoPort, pids, pidInFile } = await setup(t, true);
  const oldPid = proxy.proc.pid!;
  const stopped = gate();
  const inFlight = download(dlPort, stopped.go);
  await waitFor(async () => ((await (await fetch(`${url}/status`)).json()) as { connections: number }).connections === 1, 5000, 'the download open in the old process');
  proxy.proc.kill('SIGWINCH');
  const first = await waitFor(async () => {
    const pid = await pidInFile().catch(() => oldPid);
    return pid !== oldPid ? pid : 0;
  }, 15_000, 'the pid file naming the new process');
  pids.add(first);
  await proxy.waitLog((l) => l['pid'] === oldPid && l['msg'] === 'shutting down: draining connections', 5000, 'the old process draining');
  // systemd's stop signals every process of the unit: the draining one goes on draining.
  proxy.proc.kill('SIGTERM');
  await proxy.waitLog((l) => l['pid'] === oldPid && l['msg'] === 'draining after an upgrade already; another signal exits at once', 5000, 'the signal taken');
  stopped.open();
  assert.equal(await inFlight, true, 'the download drained byte-exact');
  assert.equal(await proxy.exited, 0);

  // The new process hands over the sockets it was handed.
  const r = await ctl(['upgrade', '--admin', url, '--json']);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  const second = (JSON.parse(r.stdout) as { newPid: number }).newPid;
  pids.add(second);
  assert.notEqual(second, first);
  await waitFor(() => !alive(first), 10_000, 'the first upgraded process gone');
  assert.equal(await pidInFile(), second);
  assert.equal(await echoes(echoPort), 'ping');
});

test('under systemd without --pid-file the upgrade is refused: systemd would stop the service when the old process exits', async (t) => {
  const dir = await tempDir(t, 'shaper-upgrade-systemd-');
  const echo = await backendFor(t, 'echo');
  const [port, admin] = [await freePort(), await freePort()];
  const file = path.join(dir, 'proxy.json');
  await writeFile(file, JSON.stringify({ bind: '127.0.0.1', admin: { listen: `127.0.0.1:${admin}` }, apps: [{ name: 'echo', ports: [port], targets: [echo.address] }] }));
  // A parent process named "systemd" starts the CLI with $INVOCATION_ID, as systemd starts a service:
  // sh run under that name (/proc/PID/comm is the name it was run as; not node, which names its main
  // thread "MainThread" from Node 24 on), staying the parent (no exec) and SIGKILLing it on SIGTERM.
  const systemd = path.join(dir, 'systemd');
  fs.symlinkSync(which('sh')!, systemd);
  const script = `trap 'kill -KILL $child; exit 0' TERM; INVOCATION_ID=0123456789abcdef "$@" & child=$!; wait $child`;
  const parent = spawn(systemd, ['-c', script, 'systemd', process.execPath, CLI, '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  cleanup(t, () => new Promise((r) => (parent.exitCode === null ? (parent.once('exit', r), parent.kill('SIGTERM')) : r(undefined))));
  await waitFor(async () => (await fetch(`http://127.0.0.1:${admin}/health`).catch(() => null))?.ok, 10_000, 'the proxy under "systemd"');
  const r = await ctl(['upgrade', '--admin', `http://127.0.0.1:${admin}`]);
  // Should it upgrade after all, the new process is nobody's child here: stop it.
  const upgraded = /pid (\d+) serves/.exec(r.stdout)?.[1];
  if (upgraded) process.kill(Number(upgraded), 'SIGKILL');
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /systemd service runs without --pid-file/);
  assert.match(r.stderr, /PIDFile=/);
  assert.equal(await echoes(port), 'ping', 'the proxy serves on');
});
