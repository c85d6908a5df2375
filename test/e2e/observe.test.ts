/**
 * Observability over real sockets and real child processes: latency histograms from a scripted
 * workload, /metrics parsed as Prometheus text, the shapes of /stats, /health and /status, the
 * SIGUSR1 / SIGUSR2 dumps, the Foo counters from the fixture exchange, counters that survive a
 * restart and a corrupt counters file.
 */
import type { Summary } from '../../src/observe/histogram.js';
import type { LatencyKind } from '../../src/observe/stats.js';
import { VERSION } from '../../src/version.js';
import { readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import {
  app,
  backendFor,
  captureLogger,
  cleanup,
  cliFor,
  collected,
  config,
  connect,
  freePort,
  pattern,
  proxyFor,
  rawServer,
  readAll,
  ROOT,
  roundTrip,
  tempDir,
  tier,
  waitFor,
  type Child,
  type TestProxy,
} from '../helpers.js';

// ---- parse-prometheus-text-format (CommonJS, no types) ---------------------------------------

interface PromSample {
  value?: string;
  labels?: Record<string, string>;
  quantiles?: Record<string, string>;
  count?: string;
  sum?: string;
}
interface PromFamily {
  name: string;
  help: string;
  type: string;
  metrics: PromSample[];
}
const parsePrometheusTextFormat = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => PromFamily[];

/**
 * Prometheus text read with the real parser. parse-prometheus-text-format 1.1.1 folds every series
 * of a summary that has labels besides `quantile` into one object (the quantiles of all label sets
 * merged, labels, count and sum dropped), so the text is parsed twice: as served, for each
 * family's type (and to show the whole text parses), and with the summaries' TYPE lines made
 * untyped, which keeps every sample with its labels.
 */
function promText(text: string) {
  const typed = parsePrometheusTextFormat(text);
  const types = new Map(typed.map((f) => [f.name, f.type]));
  assert.equal(types.size, typed.length, 'each family appears once');
  const samples = new Map<string, PromSample[]>();
  for (const f of parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) summary$/gm, '# TYPE $1 untyped'))) {
    samples.set(f.name, [...(samples.get(f.name) ?? []), ...f.metrics]);
  }
  const matching = (name: string, labels: Record<string, string>, extra: string[] = []) => {
    const want = Object.keys(labels).length + extra.length;
    return (samples.get(name) ?? []).filter(
      (s) => Object.keys(s.labels ?? {}).length === want && Object.entries(labels).every(([k, v]) => s.labels?.[k] === v),
    );
  };
  const single = (name: string, labels: Record<string, string>): number => {
    const found = matching(name, labels);
    assert.equal(found.length, 1, `one ${name} series with ${JSON.stringify(labels)}`);
    const v = Number(found[0]!.value);
    assert.ok(!Number.isNaN(v), `${name}: a number`);
    return v;
  };
  const typeOf = (name: string, type: string) => {
    assert.ok(types.has(name), `${name} is exported`);
    assert.equal(types.get(name), type, `${name} is a ${type}`);
  };
  return {
    /** The value of the one series of `name` with exactly these labels. */
    value(name: string, type: string, labels: Record<string, string>): number {
      typeOf(name, type);
      return single(name, labels);
    },
    /** The histogram series of `name` with these labels: its cumulative buckets (by upper bound), count and sum. */
    histogram(name: string, labels: Record<string, string>): { buckets: [number, number][]; count: number; sum: number } {
      typeOf(name, 'HISTOGRAM');
      // Read from the text: the parser drops the other labels when `le` comes first, as prom-client writes it.
      const want = (line: string) => Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
      const lines = text.split('\n').filter((l) => l.startsWith(name) && want(l));
      const value = (l: string) => Number(l.slice(l.lastIndexOf(' ') + 1));
      const buckets = lines
        .filter((l) => l.startsWith(`${name}_bucket{`))
        .map((l) => [Number(/le="([^"]+)"/.exec(l)![1]!.replace('+Inf', 'Infinity')), value(l)] as [number, number])
        .sort((a, b) => a[0] - b[0]);
      const one = (suffix: string) => {
        const found = lines.filter((l) => l.startsWith(`${name}${suffix}{`));
        assert.equal(found.length, 1, `one ${name}${suffix} series with ${JSON.stringify(labels)}`);
        return value(found[0]!);
      };
      return { buckets, count: one('_count'), sum: one('_sum') };
    },
    /** The summary series of `name` with these labels: its quantiles, count and sum. */
    summary(name: string, labels: Record<string, string>): { quantiles: Record<string, number>; count: number; sum: number } {
      typeOf(name, 'SUMMARY');
      assert.ok(typed.find((f) => f.name === name)!.metrics.some((s) => s.quantiles), `${name} parses with quantiles`);
      const quantiles: Record<string, number> = {};
      for (const s of matching(name, labels, ['quantile'])) quantiles[s.labels!['quantile']!] = Number(s.value);
      return { quantiles, count: single(`${name}_count`, labels), sum: single(`${name}_sum`, labels) };
    },
  };
}

// ---- the documents ---------------------------------------------------------------------------

type Latency = Partial<Record<LatencyKind, Summary>>;
interface StatsDoc {
  version: string;
  uptimeSeconds: number;
  config: unknown;
  fleet: unknown;
  connections: { active: number; total: number; rejected: number; byReason: Record<string, number> };
  bytes: { up: number; down: number };
  tiers: ({ name: string; latency: Latency } & Record<string, unknown>)[];
  apps: ({ name: string; latency: Latency; targets: Record<string, unknown>[] } & Record<string, unknown>)[];
  customers: Record<string, unknown>[];
  foo: Record<string, number>;
  plans: { period: unknown; top: unknown[]; windows: unknown[] };
  history?: { t: number[]; tiers: Record<string, { down: number[]; up: number[] }> };
}

const FOO_COUNTERS = ['msg_total', 'msg_req', 'msg_ack', 'msg_nak', 'msg_invalid'] as const;
const FOO_FIELDS = [...FOO_COUNTERS, 'request_rate_1s', 'request_rate_10s', 'response_rate_1s', 'response_rate_10s'];
const FOO_EXPECTED = { msg_total: 12, msg_req: 6, msg_ack: 4, msg_nak: 2, msg_invalid: 0 };

// ---- fixtures and helpers --------------------------------------------------------------------

const ADMIN = { host: '127.0.0.1', port: 0 };

async function getJson<T>(proxy: TestProxy, urlPath: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}${urlPath}`);
  assert.equal(res.status, 200, `${urlPath}: ${res.status}`);
  return (await res.json()) as T;
}

const stats = (proxy: TestProxy, query = '') => getJson<StatsDoc>(proxy, `/stats${query}`);

/** Every connection the proxy had is closed (so its duration and bytes are counted). */
const settled = (proxy: TestProxy) => waitFor(() => proxy.connections.size === 0, 5000, 'the proxy to close its connections');

/** A backend that answers "late\n" and ends `delayMs` after it accepts (its first byte is late). */
async function slowBackend(t: TestContext, delayMs: number): Promise<string> {
  const { address } = await rawServer(t, (s) => {
    s.resume();
    const timer = setTimeout(() => s.end('late\n'), delayMs);
    s.on('close', () => clearTimeout(timer));
  });
  return address;
}

/** The fixture's two sides: what the client sends ("C>") and what the server sends ("S>"). */
async function fooFixture(): Promise<{ client: Buffer; server: Buffer }> {
  const text = await readFile(path.join(ROOT, 'test/fixtures/foo-session.txt'), 'utf8');
  const side = (prefix: string) =>
    Buffer.from(
      text
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .map((l) => `${l.slice(prefix.length)}\n`)
        .join(''),
    );
  return { client: side('C> '), server: side('S> ') };
}

/** Write `data` in one chunk, or one byte at a time with a pause between (each its own read). */
async function send(socket: net.Socket, data: Buffer, oneByte: boolean): Promise<void> {
  if (!oneByte) {
    socket.write(data);
    return;
  }
  for (let i = 0; i < data.length; i++) {
    if (socket.destroyed) return;
    socket.write(data.subarray(i, i + 1));
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A Foo server: reads the client's messages up to its FIN, then answers with the fixture's S> lines. */
async function fooBackend(t: TestContext, answer: Buffer, oneByte: boolean): Promise<string> {
  const { address } = await rawServer(t, (s) => {
    s.setNoDelay(true);
    s.resume();
    s.once('end', () => void send(s, answer, oneByte).then(() => s.end()));
  });
  return address;
}

/** One Foo exchange through the proxy, the client's side sent as `oneByte` says; checks the answer arrived whole. */
async function fooExchange(port: number, fixture: { client: Buffer; server: Buffer }, oneByte: boolean): Promise<void> {
  const s = await connect(port);
  s.setNoDelay(true);
  const answer = readAll(s);
  await send(s, fixture.client, oneByte);
  s.end();
  assert.equal((await answer).toString(), fixture.server.toString());
  s.destroy();
}

function assertSaneSummary(s: Summary | undefined, what: string): asserts s is Summary {
  assert.ok(s, `${what}: no summary`);
  for (const k of ['count', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'] as const) assert.equal(typeof s[k], 'number', `${what}.${k}`);
  assert.ok(s.mean > 0 && s.mean <= s.max, `${what}: 0 < mean ${s.mean} <= max ${s.max}`);
  assert.ok(s.p50 > 0, `${what}: p50 ${s.p50} > 0`);
  assert.ok(s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max, `${what}: p50 <= p90 <= p99 <= p999 <= max in ${JSON.stringify(s)}`);
}

// ---- 1. histograms -------------------------------------------------------------------------------

test('a scripted workload: histogram counts per app and tier, ordered percentiles, a late first byte', async (t) => {
  const web = await backendFor(t, 'collect');
  const slow = await slowBackend(t, 50);
  const proxy = await proxyFor(
    t,
    config([app('web', [web.address]), app('slow', [slow])], { admin: ADMIN, tiers: { free: tier('free') }, defaultTier: 'free' }),
    { backends: [web] },
  );

  for (let i = 0; i < 20; i++) {
    const data = pattern(1000 + i * 100, i + 1);
    assert.equal((await roundTrip(proxy.portOf('web'), data)).toString(), collected(data));
  }
  for (let i = 0; i < 5; i++) assert.equal((await roundTrip(proxy.portOf('slow'), Buffer.from('hi'))).toString(), 'late\n');
  await settled(proxy);

  const doc = await stats(proxy);
  const webApp = doc.apps.find((a) => a.name === 'web')!;
  const slowApp = doc.apps.find((a) => a.name === 'slow')!;
  const free = doc.tiers.find((x) => x.name === 'free')!;
  for (const kind of ['connect', 'ttfb', 'duration'] as const) {
    assertSaneSummary(webApp.latency[kind], `apps[web].latency.${kind}`);
    assert.equal(webApp.latency[kind].count, 20, `apps[web].latency.${kind}.count`);
    assertSaneSummary(slowApp.latency[kind], `apps[slow].latency.${kind}`);
    assert.equal(slowApp.latency[kind].count, 5, `apps[slow].latency.${kind}.count`);
    assertSaneSummary(free.latency[kind], `tiers[free].latency.${kind}`);
    assert.equal(free.latency[kind].count, 25, `tiers[free].latency.${kind}.count`);
  }
  // Every shaped connection reports how long its bytes waited in the shaper (maybe ~0 when unlimited).
  assert.equal(free.latency.shaperWait?.count, 25);
  assert.equal(webApp.latency.foo, undefined, 'no Foo latency for a tcp app');

  // The slow backend's first byte comes 50 ms after it accepts: a lower bound only.
  assert.ok(slowApp.latency.ttfb!.p50 >= 45, `slow ttfb p50 ${slowApp.latency.ttfb!.p50} >= 45 ms`);
  assert.ok(slowApp.latency.duration!.p50 >= 45, `slow duration p50 ${slowApp.latency.duration!.p50} >= 45 ms`);
  assert.ok(free.latency.ttfb!.max >= 45, 'the tier saw the slow first bytes too');
  assert.equal(doc.connections.total, 25);
  assert.equal(doc.connections.byReason['done'], 25);
});

// ---- 2. /metrics -----------------------------------------------------------------------------

test('/metrics parses as Prometheus text: latency histograms in seconds, caps, counters with the right values, standard process metrics', async (t) => {
  const web = await backendFor(t, 'collect');
  const free = tier('free', { total: { down: 100_000_000, up: 80_000_000 } });
  const proxy = await proxyFor(t, config([app('web', [web.address])], { admin: ADMIN, tiers: { free }, defaultTier: 'free' }), { backends: [web] });

  let up = 0;
  let down = 0;
  for (let i = 0; i < 3; i++) {
    const data = pattern(10_000 + i, i + 7);
    const answer = await roundTrip(proxy.portOf('web'), data);
    assert.equal(answer.toString(), collected(data));
    up += data.length;
    down += answer.length;
  }
  await settled(proxy);
  // Tier rates are sampled once a second: wait for the first sample.
  await waitFor(() => proxy.stats.tierRates.has('free'), 3000, 'the first tier rate sample');

  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    return promText(await res.text());
  };
  const m = await scrape();

  for (const [name, labels] of [
    ['shaper_connect_duration_seconds', { app: 'web' }],
    ['shaper_first_byte_duration_seconds', { app: 'web' }],
    ['shaper_connection_duration_seconds', { app: 'web' }],
    ['shaper_shaping_delay_seconds', { tier: 'free' }],
  ] as const) {
    const h = m.histogram(name, labels);
    assert.equal(h.count, 3, `${name} count`);
    assert.ok(h.buckets.every(([, n], i) => i === 0 || n >= h.buckets[i - 1]![1]), `${name}: cumulative buckets`);
    assert.deepEqual(h.buckets.at(-1), [Infinity, 3], `${name}: +Inf holds every value`);
    assert.ok(h.sum >= 0 && h.sum < 60, `${name}: sum ${h.sum} in seconds`);
  }
  assert.ok(m.histogram('shaper_connection_duration_seconds', { app: 'web' }).sum > 0);

  assert.equal(m.value('shaper_cap_bytes_per_second', 'GAUGE', { level: 'tier', tier: 'free', direction: 'down' }), 100_000_000);
  assert.equal(m.value('shaper_cap_bytes_per_second', 'GAUGE', { level: 'tier', tier: 'free', direction: 'up' }), 80_000_000);
  for (const direction of ['down', 'up']) assert.ok(m.value('shaper_tier_bytes_total', 'COUNTER', { tier: 'free', direction }) > 0);
  assert.equal(m.value('shaper_connections_accepted_total', 'COUNTER', {}), 3);
  assert.equal(m.value('shaper_build_info', 'GAUGE', { version: JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version, node_version: process.version }), 1);
  // The standard names, counted from the start (stock dashboards and alerts work).
  assert.ok(m.value('process_cpu_seconds_total', 'COUNTER', {}) > 0);
  assert.ok(m.value('nodejs_eventloop_lag_seconds', 'GAUGE', {}) >= 0);
  assert.equal(m.value('shaper_connections_closed_total', 'COUNTER', { reason: 'done' }), 3);
  assert.equal(m.value('shaper_target_up', 'GAUGE', { app: 'web', target: web.address }), 1);
  const bytesUp = m.value('shaper_bytes_total', 'COUNTER', { direction: 'up' });
  assert.ok(bytesUp >= up, `bytes up ${bytesUp} >= ${up} sent`);
  assert.equal(bytesUp, up, 'every byte sent, counted once');
  assert.equal(m.value('shaper_bytes_total', 'COUNTER', { direction: 'down' }), down);
  assert.equal(m.value('shaper_connections_active', 'GAUGE', { app: 'web' }), 0);

  // A second scrape with no traffic in between reads the same counters (deltas are not added twice).
  const again = await scrape();
  assert.equal(again.value('shaper_connections_accepted_total', 'COUNTER', {}), 3);
  assert.equal(again.value('shaper_bytes_total', 'COUNTER', { direction: 'up' }), up);
  assert.equal(again.histogram('shaper_connect_duration_seconds', { app: 'web' }).count, 3);
});

// ---- 3. shapes -------------------------------------------------------------------------------

test('shapes of /stats (and ?history=1), /health and /status', async (t) => {
  const web = await backendFor(t, 'collect');
  const proxy = await proxyFor(t, config([app('web', [web.address])], { admin: ADMIN, tiers: { free: tier('free') }, defaultTier: 'free' }), { backends: [web] });

  await roundTrip(proxy.portOf('web'), pattern(500));
  // One connection stays open while the documents are read.
  const open = await connect(proxy.portOf('web'));
  cleanup(t, () => open.destroy());
  open.write('partial');
  await waitFor(() => proxy.connections.size === 1 && [...proxy.connections][0]!.bytesUp === 7, 3000, 'the open connection');
  await waitFor(() => proxy.stats.historyTimes.length > 0, 3000, 'the first history sample');

  assert.deepEqual(await getJson(proxy, '/health'), { status: 'ok' });

  const status = await getJson<{ uptimeSeconds: number; connections: number; apps: Record<string, any>[] }>(proxy, '/status');
  assert.equal(typeof status.uptimeSeconds, 'number');
  assert.equal(status.connections, 1);
  assert.equal(status.apps.length, 1);
  const st = status.apps[0]!;
  assert.equal(st['name'], 'web');
  assert.equal(st['protocol'], 'tcp');
  assert.equal(st['listeners'].length, 1);
  assert.equal(st['listeners'][0].boundPort, proxy.portOf('web'));
  assert.equal(st['listeners'][0].state, 'listening');
  assert.equal(st['targets'].length, 1);
  const target = st['targets'][0];
  assert.equal(target.address, web.address);
  assert.equal(typeof target.health, 'string');
  assert.equal(target.active, 1);
  assert.equal(target.total, 2);

  const doc = await stats(proxy);
  assert.deepEqual(Object.keys(doc).sort(), ['apps', 'bytes', 'config', 'connections', 'customers', 'fleet', 'foo', 'latency', 'plans', 'tiers', 'uptimeSeconds', 'version']);
  assert.equal(doc.version, VERSION);
  assert.equal(doc.config, null, 'an in-process config: no file');
  assert.equal(doc.fleet, null, 'running alone');
  assert.deepEqual(doc.plans, { period: null, top: [], windows: [] }, 'no accounting, no schedules');
  assert.ok(Number.isInteger(doc.uptimeSeconds) && doc.uptimeSeconds >= 0);
  assert.deepEqual(Object.keys(doc.connections).sort(), ['active', 'byReason', 'refused', 'rejected', 'tlsHandshakeFailures', 'total']);
  assert.deepEqual(doc.connections, { active: 1, total: 2, rejected: 0, byReason: { done: 1 }, refused: {}, tlsHandshakeFailures: { client: 0, target: 0 } });
  assert.deepEqual(Object.keys(doc.bytes).sort(), ['down', 'up']);
  assert.equal(doc.bytes.up, 507, 'closed and open connections');
  assert.ok(doc.bytes.down > 0);

  assert.equal(doc.tiers.length, 1);
  const tr = doc.tiers[0]!;
  assert.deepEqual(Object.keys(tr).sort(), [
    'activeCustomers', 'bindingDown', 'bindingUp', 'capDown', 'capUp', 'connectionCapDown', 'connectionCapUp', 'connections', 'customerCapDown', 'customerCapUp', 'customers', 'latency', 'name', 'rateDown', 'rateUp',
  ]);
  assert.equal(tr['activeCustomers'], 1);
  assert.deepEqual(tr['bindingDown'], { cap: null, by: 'none' }, 'nothing caps an unlimited tier');
  assert.equal(tr.name, 'free');
  assert.equal(tr['connections'], 1);
  assert.equal(tr['customers'], 1);
  assert.equal(typeof tr['rateDown'], 'number');
  assert.equal(typeof tr['rateUp'], 'number');
  assert.equal(tr['capDown'], null, 'unlimited is null');
  assert.equal(typeof tr.latency, 'object');

  assert.equal(doc.apps.length, 1);
  const ap = doc.apps[0]!;
  assert.deepEqual(Object.keys(ap).sort(), ['connections', 'latency', 'name', 'protocol', 'targets']);
  assert.equal(ap['connections'], 1);
  assert.deepEqual(ap.targets, [{ address: web.address, health: target.health, active: 1 }]);
  assert.equal(ap.latency.connect?.count, 2);

  assert.equal(doc.customers.length, 1);
  const cu = doc.customers[0]!;
  assert.deepEqual(Object.keys(cu).sort(), ['bytesDown', 'bytesUp', 'connections', 'dynamic', 'id', 'rateDown', 'rateUp', 'tier']);
  assert.equal(cu['tier'], 'free');
  assert.equal(cu['dynamic'], true);
  assert.equal(cu['connections'], 1);
  assert.equal(cu['bytesUp'], 7);

  assert.deepEqual(Object.keys(doc.foo).sort(), [...FOO_FIELDS].sort());
  for (const k of FOO_FIELDS) assert.equal(doc.foo[k], 0, `foo.${k}`);
  assert.equal(doc.history, undefined, 'no history unless asked');

  const withHistory = await stats(proxy, '?history=1');
  assert.ok(withHistory.history);
  assert.deepEqual(Object.keys(withHistory.history).sort(), ['t', 'tiers']);
  const { t: times, tiers } = withHistory.history;
  assert.ok(times.length >= 1 && times.every((x) => Number.isInteger(x)));
  assert.deepEqual(Object.keys(tiers), ['free']);
  assert.equal(tiers['free']!.down.length, times.length);
  assert.equal(tiers['free']!.up.length, times.length);
  assert.ok([...tiers['free']!.down, ...tiers['free']!.up].every((x) => typeof x === 'number' && x >= 0));
});

// ---- 4. and 6. signals and a CLI restart ----------------------------------------------------------

test('SIGUSR1 and SIGUSR2 log the stats document; a SIGTERM restart keeps the counts (CLI)', async (t) => {
  const dir = await tempDir(t, 'shaper-observe-');
  const web = await backendFor(t, 'collect');
  const port = await freePort();
  const file = path.join(dir, 'proxy.json');
  await writeFile(
    file,
    JSON.stringify({
      bind: '127.0.0.1',
      admin: false,
      drainTimeout: '1s',
      apps: [{ name: 'web', ports: [port], targets: [web.address] }],
      tiers: { free: { connection: { down: '1gbit', up: '1gbit' } } },
      defaultTier: 'free',
    }),
  );
  const run = async (): Promise<Child> => {
    const c = cliFor(t, ['--config', file]);
    await c.waitLog((l) => l['msg'] === 'listening' && l['port'] === port, 5000, `listening on ${port}`);
    return c;
  };
  const dumps = (c: Child) => c.logs.filter((l) => l['msg'] === 'stats').map((l) => l['stats']) as StatsDoc[];
  const dump = async (c: Child, signal: NodeJS.Signals): Promise<StatsDoc> => {
    const before = dumps(c).length;
    c.proc.kill(signal);
    await waitFor(() => dumps(c).length > before, 5000, `the ${signal} dump`);
    const doc = dumps(c)[before]!;
    assert.deepEqual(Object.keys(doc).sort(), ['apps', 'bytes', 'config', 'connections', 'customers', 'fleet', 'foo', 'latency', 'plans', 'tiers', 'uptimeSeconds', 'version']);
    return doc;
  };
  const serve = async () => {
    const data = pattern(1000);
    assert.equal((await roundTrip(port, data)).toString(), collected(data));
  };

  const first = await run();
  await serve();
  const d1 = await dump(first, 'SIGUSR1');
  assert.equal(d1.connections.total, 1);
  assert.deepEqual(d1.tiers.map((x) => x.name), ['free']);
  assert.deepEqual(d1.apps.map((x) => x.name), ['web']);
  await serve(); // still serving after the signal
  const d2 = await dump(first, 'SIGUSR2');
  assert.equal(d2.connections.total, 2);
  await serve();
  assert.equal(first.proc.exitCode, null, 'the signals did not stop it');
  assert.doesNotMatch(first.stderr, /Debugger listening/, 'SIGUSR1 did not start the inspector');

  // The counters file beside the config's state file (in the state directory: cliFor makes it the config's folder), saved about every second.
  const statsFile = path.join(dir, 'proxy.stats.json');
  await waitFor(
    async () => ((JSON.parse(await readFile(statsFile, 'utf8').catch(() => '{}')) as { connectionsTotal?: number }).connectionsTotal ?? 0) >= 3,
    5000,
    'the counters file',
  );
  first.proc.kill('SIGTERM');
  assert.equal(await first.exited, 0);

  const second = await run();
  const d3 = await dump(second, 'SIGUSR1');
  assert.equal(d3.connections.total, 3, 'restored');
  assert.ok((d3.connections.byReason['done'] ?? 0) >= 3);
  assert.ok(d3.bytes.up >= 3000);
  await serve();
  assert.equal((await dump(second, 'SIGUSR2')).connections.total, 4);
});

// ---- 5. Foo ------------------------------------------------------------------------------------

test('the Foo fixture exchange gives exactly its counters, in 1-byte chunks or whole, shaped or not', async (t) => {
  const fixture = await fooFixture();
  assert.equal(fixture.client.toString().split('\n').length - 1, 6);
  assert.equal(fixture.server.toString().split('\n').length - 1, 6);
  for (const oneByte of [true, false]) {
    for (const shaped of [false, true]) {
      await t.test(`${oneByte ? '1-byte chunks' : 'one chunk'} each way, ${shaped ? 'shaped' : 'unshaped'}`, async (t) => {
        const foo = await fooBackend(t, fixture.server, oneByte);
        const shaping = shaped ? { tiers: { free: tier('free', { connection: { down: 10_000_000, up: 10_000_000 } }) }, defaultTier: 'free' } : {};
        const proxy = await proxyFor(t, config([app('foo', [foo], { protocol: 'foo' })], { admin: ADMIN, ...shaping }));
        // The chunks the analysers were fed, each way.
        const chunks = { client: [] as number[], server: [] as number[] };
        const analyzer = proxy.observer.analyzer.bind(proxy.observer);
        proxy.observer.analyzer = (conn) => {
          const a = analyzer(conn);
          if (!a) return a;
          return {
            client: (c: Buffer) => (chunks.client.push(c.length), a.client(c)),
            server: (c: Buffer) => (chunks.server.push(c.length), a.server(c)),
          } as typeof a;
        };
        await fooExchange(proxy.portOf('foo'), fixture, oneByte);
        const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
        assert.equal(sum(chunks.client), fixture.client.length);
        assert.equal(sum(chunks.server), fixture.server.length);
        if (oneByte) assert.ok(chunks.client.length >= 10 && chunks.server.length >= 10, `split chunks: ${JSON.stringify(chunks)}`);
        else assert.deepEqual([chunks.client.length, chunks.server.length], [1, 1], 'one chunk each way');
        await settled(proxy);
        const doc = await stats(proxy);
        assert.deepEqual(Object.fromEntries(FOO_COUNTERS.map((k) => [k, doc.foo[k]])), FOO_EXPECTED);
        assert.ok(doc.foo['request_rate_10s']! > 0 && doc.foo['response_rate_10s']! > 0);
        const fooApp = doc.apps.find((a) => a.name === 'foo')!;
        assert.equal(fooApp['protocol'], 'foo');
        assertSaneSummary(fooApp.latency.foo, 'apps[foo].latency.foo');
        assert.equal(fooApp.latency.foo.count, 6, 'every REQ answered');
        if (shaped) assert.equal(doc.tiers[0]!.latency.foo?.count, 6);
      });
    }
  }
});

// ---- 6. restart ----------------------------------------------------------------------------------

test('a restart on the same stateFile continues the counters, Foo ones included', async (t) => {
  const dir = await tempDir(t, 'shaper-observe-');
  const fixture = await fooFixture();
  const web = await backendFor(t, 'collect');
  const foo = await fooBackend(t, fixture.server, false);
  const cfg = () =>
    config([app('web', [web.address]), app('foo', [foo], { protocol: 'foo' })], { admin: ADMIN, stateFile: path.join(dir, 'x.state.json') });

  const a = await proxyFor(t, cfg(), { backends: [web] });
  const N = 4;
  let sent = 0;
  for (let i = 0; i < N; i++) {
    const data = pattern(2000, i + 3);
    await roundTrip(a.portOf('web'), data);
    sent += data.length;
  }
  await fooExchange(a.portOf('foo'), fixture, false);
  sent += fixture.client.length;
  await settled(a);
  const before = await stats(a);
  assert.equal(before.connections.total, N + 1);
  await a.stop(); // saves the counters

  const saved = JSON.parse(await readFile(path.join(dir, 'x.stats.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(saved['version'], 1);
  assert.equal(saved['connectionsTotal'], N + 1);

  const b = await proxyFor(t, cfg(), { backends: [web] });
  const after = await stats(b);
  assert.ok(after.connections.total >= N + 1, `total ${after.connections.total} >= ${N + 1}`);
  assert.ok((after.connections.byReason['done'] ?? 0) >= N + 1);
  assert.ok(after.bytes.up >= sent, `bytes.up ${after.bytes.up} >= ${sent}`);
  assert.deepEqual(after.bytes, before.bytes);
  assert.deepEqual(Object.fromEntries(FOO_COUNTERS.map((k) => [k, after.foo[k]])), FOO_EXPECTED);

  // And it counts on from there.
  await roundTrip(b.portOf('web'), pattern(10));
  await settled(b);
  assert.equal((await stats(b)).connections.total, after.connections.total + 1);
});

// ---- 7. a corrupt counters file ------------------------------------------------------------------

test('a corrupt counters file: a warning, kept as .corrupt, counting from zero, still serving', async (t) => {
  const dir = await tempDir(t, 'shaper-observe-');
  const web = await backendFor(t, 'collect');
  const statsFile = path.join(dir, 'x.stats.json');
  const garbage = '{"version":1,"connectionsTotal":99\u0000\u00ff garbage';
  await writeFile(statsFile, garbage);

  // In process, with a logger that keeps its lines, to see the warning.
  const { log, lines } = captureLogger('warn');
  const proxy = await proxyFor(t, config([app('web', [web.address])], { admin: ADMIN, stateFile: path.join(dir, 'x.state.json') }), { log });
  const port = proxy.portOf('web');

  const warning = lines.find((l) => l['level'] === 40 && /corrupt/.test(String(l['msg'])));
  assert.ok(warning, `a warning about the corrupt file in ${JSON.stringify(lines)}`);
  assert.equal(warning['file'], statsFile);
  assert.equal(await readFile(`${statsFile}.corrupt`, 'utf8'), garbage);

  const data = pattern(3000);
  assert.equal((await roundTrip(port, data)).toString(), collected(data));
  await waitFor(() => proxy.connections.size === 0, 5000, 'the connection to close');
  const doc = (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/stats`)).json()) as StatsDoc;
  assert.equal(doc.connections.total, 1, 'from zero');
  assert.deepEqual(doc.connections.byReason, { done: 1 });
  assert.equal(doc.bytes.up, 3000);
  for (const k of FOO_COUNTERS) assert.equal(doc.foo[k], 0);

  // The next save writes a good file again.
  await proxy.stop();
  const saved = JSON.parse(await readFile(statsFile, 'utf8')) as Record<string, unknown>;
  assert.equal(saved['connectionsTotal'], 1);
  await stat(`${statsFile}.corrupt`);
});
