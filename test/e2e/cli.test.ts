/**
 * The CLI as a real child process: --check, --version/--help/flag errors, and a running
 * proxy with its reloads (SIGHUP and file change), drain on SIGTERM, the env log level
 * override and a port that is busy at start.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {
  backendFor,
  cliFor,
  collected,
  connect,
  freePort,
  pattern,
  rawServer,
  readAll,
  roundTrip,
  ROOT,
  runToEnd,
  sha256,
  tempDir,
  waitFor,
} from '../helpers.js';

type Log = Record<string, unknown>;

const FLY_FIXTURE = path.join(ROOT, 'test/fixtures/fly-challenge.json');
const FAST_HEALTH = { interval: '500ms', timeout: '250ms', unhealthyAfter: 2, healthyAfter: 1 };

interface AppSpec {
  name: string;
  ports: number[];
  targets: string[];
}

/** A loopback config with no admin server and fast health checks. */
function proxyConfig(apps: AppSpec[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { bind: '127.0.0.1', admin: false, health: FAST_HEALTH, drainTimeout: '10s', apps, ...extra };
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.writeFile(file, JSON.stringify(value, null, 2));
}

const isMsg = (msg: string) => (l: Log) => l['msg'] === msg;
const listeningOn = (port: number) => (l: Log) => l['msg'] === 'listening' && l['port'] === port;

/** Reads exactly `n` bytes from a socket that stays open. */
function readN(socket: net.Socket, n: number, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', done);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) done();
    };
    const onEnd = () => done(new Error(`socket ended after ${got} of ${n} bytes`));
    const timer = setTimeout(() => done(new Error(`timed out after ${got} of ${n} bytes`)), ms);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', done);
  });
}

/** Writes `data` on an open echo connection and checks the exact bytes come back. */
async function echoes(socket: net.Socket, data: Buffer): Promise<void> {
  const back = readN(socket, data.length);
  socket.write(data);
  const got = await back;
  assert.equal(got.length, data.length);
  assert.equal(sha256(got), sha256(data));
}

/** Resolves with the connect error code once nothing accepts on `port` any more. */
async function refused(port: number, ms = 5000): Promise<string> {
  const code = await waitFor(
    async () => {
      try {
        const s = await connect(port);
        s.destroy();
        return undefined;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? 'error';
      }
    },
    ms,
    `port ${port} to refuse connections`,
  );
  return code!;
}

// ---- --check -------------------------------------------------------------------------------------

test('--check on the fly challenge fixture exits 0 and prints OK', async () => {
  const r = await runToEnd(['--config', FLY_FIXTURE, '--check']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /fly-challenge\.json: OK \(3 apps, 8 ports, 7 targets\)/);
  assert.equal(r.stderr, '');
});

test('--check exits 2 on a bad config and names the key path', { concurrency: 4 }, async (t) => {
  const dir = await tempDir(t, 'shaper-cli-');
  const base = { bind: '127.0.0.1', admin: false };
  const web = { name: 'web', ports: [5001], targets: ['127.0.0.1:9001'] };
  const withWeb = (extra: Record<string, unknown>) => ({ ...base, apps: [{ ...web, ...extra }] });
  const BAD_BALANCE_YAML = [
    'bind: 127.0.0.1',
    'admin: false',
    'apps:',
    '  - name: web',
    '    ports: [5001]',
    '    targets: ["127.0.0.1:9001"]',
    '    balance: random',
    '',
  ].join('\n');
  const BAD_BALANCE_TOML = [
    'bind = "127.0.0.1"',
    'admin = false',
    '[[apps]]',
    'name = "web"',
    'ports = [5001]',
    'targets = ["127.0.0.1:9001"]',
    'balance = "random"',
    '',
  ].join('\n');
  const cases: { name: string; file: string; text: string; code?: string; expect: RegExp[] }[] = [
    {
      name: 'bad target',
      file: 'target.json',
      text: JSON.stringify(withWeb({ targets: ['no-port-here'] })),
      expect: [/^apps\[0\]\.targets\[0\]: "no-port-here"/m],
    },
    {
      name: 'bad tracing',
      file: 'tracing.json',
      text: JSON.stringify({ ...withWeb({}), tracing: { otlp: 'ftp://collector', sample: 1.5 } }),
      expect: [/^tracing\.otlp: "ftp:\/\/collector" is not an http\(s\) URL/m, /^tracing\.sample: must be a number from 0 to 1/m],
    },
    {
      name: 'bad port',
      file: 'port.json',
      text: JSON.stringify(withWeb({ ports: [70000] })),
      expect: [/^apps\[0\]\.ports\[0\]: 70000 is not a port/m],
    },
    {
      name: 'a port used by two apps',
      file: 'dup-port.json',
      text: JSON.stringify({ ...base, apps: [web, { name: 'api', ports: [5001], targets: ['127.0.0.1:9002'] }] }),
      // The second app by its key path, the first by name (and path).
      expect: [/^apps\[1\]\.ports\[0\]: port 5001 is already used by app "web" \(apps\[0\]\.ports\[0\]\)/m],
    },
    {
      name: 'unknown balance',
      file: 'balance.json',
      text: JSON.stringify(withWeb({ balance: 'random' })),
      expect: [/^apps\[0\]\.balance: "random" is not one of .*round-robin/m],
    },
    {
      name: 'bad duration',
      file: 'duration.json',
      text: JSON.stringify(withWeb({ connectTimeout: '3 parsecs' })),
      expect: [/^apps\[0\]\.connectTimeout: "3 parsecs" is not a duration/m],
    },
    {
      name: 'bad top-level duration',
      file: 'health.json',
      text: JSON.stringify({ ...withWeb({}), health: { interval: 'fast' } }),
      expect: [/^health\.interval: "fast" is not a duration/m],
    },
    {
      name: 'unknown key in an app',
      file: 'unknown-app-key.json',
      text: JSON.stringify(withWeb({ tagrets: ['127.0.0.1:9001'] })),
      expect: [/^apps\[0\]\.tagrets: unknown key \(did you mean "targets"\?\)/m],
    },
    {
      name: 'unknown top-level key',
      file: 'unknown-key.json',
      text: JSON.stringify({ ...withWeb({}), bogus: 1 }),
      expect: [/^bogus: unknown key/m],
    },
    {
      name: 'missing apps',
      file: 'no-apps.json',
      text: JSON.stringify(base),
      expect: [/^apps: required/m],
    },
    {
      name: 'several problems at once, one line each',
      file: 'several.json',
      text: JSON.stringify(withWeb({ ports: [-1], balance: 'random' })),
      expect: [/^apps\[0\]\.ports\[0\]: /m, /^apps\[0\]\.balance: /m],
    },
    {
      name: 'malformed JSON',
      file: 'broken.json',
      text: '{"apps": [,]}',
      code: 'SHAPER_ERR_CONFIG_READ',
      expect: [/broken\.json:1:11: not valid JSON/],
    },
    {
      name: 'YAML variant',
      file: 'balance.yaml',
      text: BAD_BALANCE_YAML,
      expect: [/^apps\[0\]\.balance: "random" is not one of/m],
    },
    {
      name: 'TOML variant',
      file: 'balance.toml',
      text: BAD_BALANCE_TOML,
      expect: [/^apps\[0\]\.balance: "random" is not one of/m],
    },
    {
      name: 'malformed YAML',
      file: 'broken.yaml',
      text: 'apps: [\n',
      code: 'SHAPER_ERR_CONFIG_READ',
      expect: [/broken\.yaml:\d+:\d+: not valid YAML/],
    },
    {
      name: 'malformed TOML',
      file: 'broken.toml',
      text: 'apps = [\n',
      code: 'SHAPER_ERR_CONFIG_READ',
      expect: [/broken\.toml:\d+:\d+: not valid TOML/],
    },
  ];
  await Promise.all(
    cases.map((c) =>
      t.test(c.name, async () => {
        const file = path.join(dir, c.file);
        await fs.writeFile(file, c.text);
        const r = await runToEnd(['--config', file, '--check']);
        assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
        assert.equal(r.stdout, '');
        const code = c.code ?? 'SHAPER_ERR_CONFIG';
        assert.ok(r.stderr.startsWith(`shaper-proxy: ${code}: `), r.stderr);
        // The problem lines, without the "shaper-proxy: CODE: " prefix of the first.
        const problems = r.stderr.slice(`shaper-proxy: ${code}: `.length);
        for (const re of c.expect) assert.match(problems, re);
        if (!c.code) {
          // Every line starts with a key path.
          for (const line of problems.trimEnd().split('\n')) assert.match(line, /^[A-Za-z_][\w.[\]]*: /, line);
        }
      }),
    ),
  );
});

// ---- flags ---------------------------------------------------------------------------------------

test('--version prints the package.json version', async () => {
  const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-v']) {
    const r = await runToEnd([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${pkg.version}\n`);
  }
});

test('--help exits 0 with the usage', async () => {
  const r = await runToEnd(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: shaper-proxy --config FILE/);
  for (const flag of ['--config', '--log-level', '--check', '--demo', '--version', '--help']) assert.ok(r.stdout.includes(flag), flag);
  assert.equal(r.stderr, '');
});

test('flag errors exit 2 with a message', { concurrency: 4 }, async (t) => {
  const cases: { name: string; args: string[]; stderr: RegExp }[] = [
    { name: 'unknown flag', args: ['--config', FLY_FIXTURE, '--bogus'], stderr: /^shaper-proxy: Unknown option '--bogus'[\s\S]*Usage:/ },
    { name: 'missing --config', args: [], stderr: /^shaper-proxy: --config FILE is required[\s\S]*Usage:/ },
    { name: '--check without --config', args: ['--check'], stderr: /--config FILE is required/ },
    { name: 'bad --log-level', args: ['--config', FLY_FIXTURE, '--log-level', 'loud'], stderr: /--log-level: "loud" is not a log level \(use one of fatal, .*, or 0-7/ },
    { name: 'numeric --log-level out of range', args: ['--config', FLY_FIXTURE, '--log-level', '8'], stderr: /--log-level: "8" is not a log level/ },
    { name: 'missing config file', args: ['--config', '/nonexistent/shaper.json'], stderr: /SHAPER_ERR_CONFIG_READ: .*shaper\.json: cannot read/ },
  ];
  await Promise.all(
    cases.map((c) =>
      t.test(c.name, async () => {
        const r = await runToEnd(c.args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, c.stderr);
        assert.equal(r.stdout, '');
      }),
    ),
  );
});

// ---- a running proxy -----------------------------------------------------------------------------

test('serves an app and logs each closed connection', async (t) => {
  const dir = await tempDir(t, 'shaper-cli-');
  const b = await backendFor(t, 'collect');
  const port = await freePort();
  const file = path.join(dir, 'proxy.json');
  await writeJson(file, proxyConfig([{ name: 'web', ports: [port], targets: [b.address] }]));
  const c = cliFor(t, ['--config', file]);
  const listening = await c.waitLog(listeningOn(port), 10_000, "'listening'");
  assert.equal(listening['what'], 'app:web');

  const data = pattern(100_000, 3);
  const s = await connect(port);
  const clientPort = s.localPort;
  const answer = readAll(s);
  s.end(data);
  assert.equal((await answer).toString(), collected(data));
  s.destroy();

  const closed = await c.waitLog((l) => l['msg'] === 'connection closed' && l['client'] === `127.0.0.1:${clientPort}`);
  assert.equal(closed['app'], 'web');
  assert.equal(closed['target'], b.address);
  assert.equal(closed['bytesUp'], data.length);
  assert.equal(closed['bytesDown'], collected(data).length);
  assert.equal(closed['reason'], 'done');
  assert.equal(typeof closed['durationMs'], 'number');
});

test('SIGHUP reload adds a port and keeps open connections', async (t) => {
  const dir = await tempDir(t, 'shaper-cli-');
  const b = await backendFor(t, 'echo');
  const [port1, port2] = [await freePort(), await freePort()];
  const file = path.join(dir, 'proxy.json');
  await writeJson(file, proxyConfig([{ name: 'web', ports: [port1], targets: [b.address] }]));
  const c = cliFor(t, ['--config', file]);
  await c.waitLog(listeningOn(port1), 10_000);

  const open = await connect(port1);
  t.after(() => open.destroy());
  await echoes(open, pattern(10_000, 5));

  await writeJson(file, proxyConfig([{ name: 'web', ports: [port1, port2], targets: [b.address] }]));
  c.proc.kill('SIGHUP');
  await c.waitLog(isMsg('config reloaded'));
  await c.waitLog(listeningOn(port2));
  const data = pattern(20_000, 6);
  assert.equal(sha256(await roundTrip(port2, data)), sha256(data));
  assert.equal(sha256(await roundTrip(port1, data)), sha256(data));

  // The connection from before the reload still works, both ways.
  await echoes(open, pattern(50_000, 7));
  assert.equal(c.proc.exitCode, null, 'the proxy is still running');
  assert.ok(!c.logs.some(isMsg('reload failed; the old config stays in force')));
});

/**
 * A CLI proxy on a one-app config file (collect backend), proven to serve: so its signal
 * handlers and file watcher (installed just after the listeners bind) are in place.
 */
async function servingCli(t: TestContext, seed: number) {
  const dir = await tempDir(t, 'shaper-cli-');
  const b = await backendFor(t, 'collect');
  const [port1, port2] = [await freePort(), await freePort()];
  const file = path.join(dir, 'proxy.json');
  await writeJson(file, proxyConfig([{ name: 'web', ports: [port1], targets: [b.address] }]));
  const c = cliFor(t, ['--config', file]);
  await c.waitLog(listeningOn(port1), 10_000);
  const data = pattern(1000, seed);
  assert.equal((await roundTrip(port1, data)).toString(), collected(data));
  return { b, port1, port2, file, c, data };
}

test('a bad reload (SIGHUP) is reported with its key path and the old config stays', async (t) => {
  const { port1, port2, file, c, data } = await servingCli(t, 9);

  // Invalid (a target without a port), and it would add a port: nothing of it may apply.
  await writeJson(file, proxyConfig([{ name: 'web', ports: [port1, port2], targets: ['127.0.0.1'] }]));
  c.proc.kill('SIGHUP');
  // The file watcher may see the write too: the SIGHUP's reload can share a log line with it.
  const failed = await c.waitLog((l) => l['msg'] === 'reload failed; the old config stays in force' && String(l['why']).split(' + ').includes('SIGHUP'));
  assert.equal(failed['level'], 50);
  assert.match(String(failed['error']), /^apps\[0\]\.targets\[0\]: "127\.0\.0\.1"/m);
  assert.equal((await roundTrip(port1, data)).toString(), collected(data));
  assert.equal(c.proc.exitCode, null, 'the proxy is still running');
  assert.ok(!c.logs.some(listeningOn(port2)), 'no listener from the bad config');
  assert.ok(!c.logs.some(isMsg('config reloaded')));
});

test('saving a valid config reloads it without a signal', async (t) => {
  const { b, port1, port2, file, c, data } = await servingCli(t, 10);

  await writeJson(file, proxyConfig([{ name: 'web', ports: [port1, port2], targets: [b.address] }]));
  await c.waitLog(isMsg('config reloaded'), 5000, "'config reloaded' after the file changed");
  await c.waitLog(listeningOn(port2));
  assert.equal((await roundTrip(port2, data)).toString(), collected(data));
  assert.equal((await roundTrip(port1, data)).toString(), collected(data));
  assert.ok(!c.logs.some(isMsg('reload failed; the old config stays in force')));
});

test('SIGTERM stops accepting, drains the open connection and exits 0', async (t) => {
  const dir = await tempDir(t, 'shaper-cli-');
  const b = await backendFor(t, 'echo');
  const port = await freePort();
  const file = path.join(dir, 'proxy.json');
  await writeJson(file, proxyConfig([{ name: 'web', ports: [port], targets: [b.address] }]));
  const c = cliFor(t, ['--config', file]);
  await c.waitLog(listeningOn(port), 10_000);

  const open = await connect(port);
  t.after(() => open.destroy());
  await echoes(open, pattern(10_000, 11));

  c.proc.kill('SIGTERM');
  await c.waitLog(isMsg('shutting down'));
  const draining = await c.waitLog(isMsg('shutting down: draining connections'));
  assert.equal(draining['connections'], 1);
  assert.equal(await refused(port), 'ECONNREFUSED');

  // The open connection still works while the proxy drains.
  await echoes(open, pattern(30_000, 12));
  assert.equal(c.proc.exitCode, null, 'still draining');
  const rest = readAll(open);
  open.end();
  assert.equal((await rest).length, 0);

  assert.equal(await c.exited, 0);
  const done = await c.waitLog(isMsg('shutdown complete'));
  assert.equal(done['drained'], 1);
  assert.equal(done['closed'], 0);
  const closed = c.logs.find(isMsg('connection closed'));
  assert.equal(closed?.['reason'], 'done');
});

for (const [how, env, args] of [
  ['SHAPER_LOG_LEVEL=warn', { SHAPER_LOG_LEVEL: 'warn' }, []],
  // seed 000's numeric levels: 2 is warn
  ['--log-level 2', {}, ['--log-level', '2']],
] as const)
test(`${how} silences the info lines but the proxy serves`, async (t) => {
  const dir = await tempDir(t, 'shaper-cli-');
  const b = await backendFor(t, 'collect');
  const port = await freePort();
  const file = path.join(dir, 'proxy.json');
  await writeJson(file, proxyConfig([{ name: 'web', ports: [port], targets: [b.address] }]));
  const c = cliFor(t, ['--config', file, ...args], env);

  const data = pattern(5000, 13);
  const answer = await waitFor(
    async () => {
      try {
        return (await roundTrip(port, data)).toString();
      } catch {
        return undefined; // not listening yet
      }
    },
    10_000,
    'the proxy to serve',
  );
  assert.equal(answer, collected(data));
  // Stop it and read all it wrote: not one info line (listening, connection closed, shutdown).
  const outputDone = new Promise((r) => c.proc.once('close', r));
  c.proc.kill('SIGTERM');
  assert.equal(await c.exited, 0);
  await outputDone;
  assert.ok(!c.logs.some(isMsg('listening')), 'no listening lines');
  assert.deepEqual(
    c.logs.filter((l) => (l['level'] as number) < 40).map((l) => l['msg']),
    [],
  );
});

test('a port busy at start is retried while the other app serves', async (t) => {
  const dir = await tempDir(t, 'shaper-cli-');
  const b = await backendFor(t, 'collect');
  const blocker = await rawServer(t, (s) => s.destroy());
  const busy = blocker.port;
  const free = await freePort();
  const file = path.join(dir, 'proxy.json');
  await writeJson(
    file,
    proxyConfig([
      { name: 'blocked', ports: [busy], targets: [b.address] },
      { name: 'web', ports: [free], targets: [b.address] },
    ]),
  );
  const c = cliFor(t, ['--config', file]);
  const retry = await c.waitLog((l) => l['msg'] === 'cannot listen yet, retrying' && l['port'] === busy, 10_000);
  assert.equal(retry['code'], 'EADDRINUSE');
  assert.equal(retry['what'], 'app:blocked');
  await c.waitLog(listeningOn(free));
  const data = pattern(2000, 17);
  assert.equal((await roundTrip(free, data)).toString(), collected(data));
  assert.ok(!c.logs.some(listeningOn(busy)));

  await blocker.close();
  // The retry backoff doubles from 100 ms: a few hundred ms here, more on a loaded machine.
  const listening = await c.waitLog(listeningOn(busy), 8000, 'the busy port to be bound');
  assert.equal(listening['what'], 'app:blocked');
  assert.equal((await roundTrip(busy, data)).toString(), collected(data));
  assert.equal((await roundTrip(free, data)).toString(), collected(data));
});
