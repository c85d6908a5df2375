import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DIST_BENCH_LIB } from '../../bench/lib/children.js';
import { jain } from '../../bench/lib/downloaders.js';
import { load } from '../../bench/load.js';
import type { Measurement } from '../../bench/lib/load/engine.js';
import { runLoad } from '../../bench/lib/load/engine.js';
import { LOAD_OPTIONS, planOf } from '../../bench/lib/load/options.js';
import { Pacer } from '../../bench/lib/load/pacer.js';
import { renderHtml, reportPaths, writeReport } from '../../bench/lib/load/report.js';
import { connectionsAt, levelAt, parseShape, rateAt, type Shape } from '../../bench/lib/load/schedule.js';
import { LoadStats, errorKind } from '../../bench/lib/load/stats.js';
import type { Args } from '../../bench/lib/scenario.js';
import { rawServer, tempDir } from '../helpers.js';


/** The runner's parsed flags: every default, then `over`. */
function argsOf(over: Args): Args {
  const a: Args = {};
  for (const [k, o] of Object.entries(LOAD_OPTIONS)) if (o.default !== undefined) a[k] = o.default;
  return { ...a, ...over };
}

/** A loopback server for the load engine to dial (no half-open, no Nagle), closed after the test. */
const server = (t: TestContext, onSocket: (s: net.Socket) => void) => rawServer(t, onSocket, { noDelay: true, allowHalfOpen: false });

const echo = (s: net.Socket) => s.pipe(s);

test('percentiles from the histogram wrapper for 1..1000 ms', () => {
  const st = new LoadStats();
  for (let v = 1; v <= 1000; v++) st.latency.record(v);
  const l = st.summarize(1).latencyMs;
  st.destroy();
  assert.equal(l.count, 1000);
  // 2 significant digits: each within 1 %
  for (const [got, want] of [
    [l.p50, 500],
    [l.p90, 900],
    [l.p99, 990],
    [l.p999, 999],
    [l.max, 1000],
  ] as const) {
    assert.ok(Math.abs(got - want) <= want * 0.01, `${got} vs ${want}`);
  }
});

test('Jain index: equal shares 1, one taking all 1/n', () => {
  assert.equal(jain([5, 5, 5, 5]), 1);
  assert.equal(jain([8, 0, 0, 0]), 0.25);
  assert.ok(Math.abs(jain([1, 3]) - 0.8) < 1e-12);
});

const base: Omit<Shape, 'shape'> = { max: 100, min: 10, step: 20, stepEvery: 2, period: 10 };

test('schedule: constant, step, sine, saw at chosen t', () => {
  const at = (shape: Shape['shape'], t: number) => levelAt({ ...base, shape }, t);
  assert.deepEqual([0, 3, 100].map((t) => at('constant', t)), [100, 100, 100]);
  // step: 20 at start, +20 every 2 s, capped at 100
  assert.deepEqual([0, 1.9, 2, 4, 7.9, 8, 50].map((t) => at('step', t)), [20, 20, 40, 60, 80, 100, 100]);
  // sine: floor at 0, middle at a quarter, peak at half a period, floor again after a period
  assert.ok(Math.abs(at('sine', 0) - 10) < 1e-9);
  assert.ok(Math.abs(at('sine', 2.5) - 55) < 1e-9);
  assert.ok(Math.abs(at('sine', 5) - 100) < 1e-9);
  assert.ok(Math.abs(at('sine', 10) - 10) < 1e-9);
  // saw: linear from min to max over a period, then back to min
  assert.deepEqual([0, 5, 9, 10, 12.5].map((t) => at('saw', t)), [10, 55, 91, 10, 32.5]);
  // as connections: whole numbers, at least 1; as rate: never 0
  assert.equal(connectionsAt({ ...base, shape: 'saw', min: 0 }, 0), 1);
  assert.equal(connectionsAt({ ...base, shape: 'saw' }, 0.3), 13);
  assert.equal(rateAt({ ...base, shape: 'saw', min: 0 }, 0), 0.1);
  assert.equal(parseShape('saw-tooth'), 'saw');
  assert.throws(() => parseShape('square'), /--shape: "square"/);
});

test('pacer: takes credit, waits without it, refills, releases all on close', async () => {
  const p = new Pacer(true);
  const w = p.take();
  assert.ok(w instanceof Promise, 'no credit at the start');
  let released = false;
  void w.then(() => (released = true));
  p.refill(20, 0.1); // 2 credits: one to the waiter, one kept
  await Promise.resolve();
  assert.equal(released, true);
  assert.equal(p.take(), undefined);
  const w2 = p.take();
  assert.ok(w2 instanceof Promise);
  p.close();
  await w2;
  assert.equal(new Pacer(false).take(), undefined, 'unlimited never waits');
});

function fakeMeasurement(connections: number): Measurement {
  const st = new LoadStats();
  st.sent = 110 * connections;
  st.answered = 100 * connections;
  st.dropped = 10 * connections;
  st.bytesSent = st.sent * 64;
  st.bytesReceived = st.answered * 64;
  st.error('ECONNRESET');
  for (let i = 1; i <= 100; i++) st.latency.record(i / 10);
  const total = st.summarize(2);
  st.destroy();
  return {
    seconds: 2,
    drainSeconds: 0,
    connections,
    total,
    ports: [{ app: 'echo', port: 5001, ...total }],
    samples: [
      { t: 0.5, targetConnections: connections, connections, requestsPerSecond: 40 * connections, bytesPerSecond: 5000 },
      { t: 1, targetConnections: connections, connections, requestsPerSecond: 60 * connections, bytesPerSecond: 7000 },
    ],
    cpu: { userMs: 10, systemMs: 5, percentOfCore: 0.8 },
  };
}

test('report writer: JSON + HTML with an <svg> per chart and the summary numbers', () => {
  assert.deepEqual(reportPaths('/x/r.html'), { json: '/x/r.json', html: '/x/r.html' });
  assert.deepEqual(reportPaths('/x/r.json'), { json: '/x/r.json', html: '/x/r.html' });
  assert.deepEqual(reportPaths('/x/r'), { json: '/x/r.json', html: '/x/r.html' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-report-'));
  try {
    const ms = [fakeMeasurement(1), fakeMeasurement(10)];
    const files = writeReport(path.join(dir, 'sub', 'run.html'), { scenario: 'load', startedAt: 'now', params: { mode: 'ping-pong', sweep: [1, 10] }, measurements: ms, notes: ['a <note>'] });
    const json = JSON.parse(fs.readFileSync(files.json, 'utf8'));
    assert.equal(json.measurements.length, 2);
    assert.equal(json.measurements[1].total.answered, 1000);
    const html = fs.readFileSync(files.html, 'utf8');
    // throughput, bytes/s, latency vs connections + one rate-over-time per measurement
    assert.equal(html.match(/<svg/g)?.length, 3 + ms.length);
    assert.match(html, /Latency vs connections/);
    assert.match(html, /<td>1000<\/td>/, 'answered at 10 connections');
    assert.match(html, /<td>500\.0<\/td>/, 'req/s at 10 connections (1000 in 2 s)');
    assert.match(html, /ECONNRESET 1/);
    assert.match(html, /a &lt;note&gt;/);
    assert.doesNotMatch(renderHtml({ scenario: 'load', startedAt: '', params: {}, measurements: ms, notes: [] }), /https?:\/\/(?!www\.w3\.org)/, 'no CDN');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('error kinds and totals over ports', () => {
  assert.equal(errorKind(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED');
  assert.equal(errorKind(new TypeError('x')), 'TypeError');
  assert.equal(errorKind(undefined), 'other');
  const a = new LoadStats();
  const b = new LoadStats();
  a.sent = 3;
  a.dropped = 1;
  a.error('timeout');
  b.sent = 2;
  b.error('timeout');
  b.error('ECONNRESET');
  b.latency.record(2);
  a.add(b);
  const s = a.summarize(1);
  assert.deepEqual([s.sent, s.dropped, s.errorCount, s.latencyMs.count], [5, 1, 3, 1]);
  assert.deepEqual(s.errors, { timeout: 2, ECONNRESET: 1 });
  a.destroy();
  b.destroy();
});

test('dropped and errors on real sockets: silent server, refused port, timeouts', async (ctx) => {
  const silent = await server(ctx, (s) => s.resume());
  const refused = await server(ctx, () => {});
  const refusedPort = refused.port;
  await refused.close();
  const plan = await planOf(argsOf({ ports: `${silent.port},${refusedPort}`, connections: '3', duration: '0.3' }));
  const m = await runLoad(plan);
  const [quiet, closed] = m.ports;
  assert.equal(quiet!.sent, 3, 'one message per connection, never answered');
  assert.equal(quiet!.dropped, 3);
  assert.equal(quiet!.answered, 0);
  assert.ok((closed!.errors['ECONNREFUSED'] ?? 0) >= 3, JSON.stringify(closed!.errors));
  assert.equal(closed!.sent, 0);

  // a reply that takes longer than --timeout is a timeout error, its message dropped
  const t = await runLoad({ ...(await planOf(argsOf({ ports: String(silent.port), connections: '2', duration: '0.5', timeout: '0.1' }))) });
  assert.ok((t.total.errors['timeout'] ?? 0) >= 2, JSON.stringify(t.total.errors));
  assert.equal(t.total.dropped, t.total.sent);
});

test('drain waits for in-flight replies; a server that hangs up counts EOF', async (t) => {
  const slow = await server(t, (s) => s.on('data', (d) => setTimeout(() => s.write(d), 150)));
  const rude = await server(t, (s) => s.once('data', () => s.end()));
  const drained = await runLoad(await planOf(argsOf({ ports: String(slow.port), connections: '2', duration: '0.1', drain: true })));
  assert.equal(drained.total.dropped, 0);
  assert.equal(drained.total.answered, drained.total.sent);
  const m = await runLoad(await planOf(argsOf({ ports: String(rude.port), connections: '1', duration: '0.2' })));
  assert.ok((m.total.errors['EOF'] ?? 0) >= 1, JSON.stringify(m.total.errors));
  assert.equal(m.total.dropped, m.total.sent);
});

test('end to end: ping-pong, 4 connections x 50 messages through an echo server', async (t) => {
  const srv = await server(t, echo);
  const r = await load.run(argsOf({ ports: String(srv.port), connections: '4', messages: '50', duration: '2' }));
  const [m] = (r.data as { measurements: Measurement[] }).measurements;
  assert.equal(m!.total.sent, 200);
  assert.equal(m!.total.answered, 200);
  assert.equal(m!.total.dropped, 0);
  assert.equal(m!.total.latencyMs.count, 200);
  assert.equal(m!.total.errorCount, 0);
  assert.equal(m!.total.bytesReceived, 200 * 64);
  assert.ok(m!.total.latencyMs.p50 > 0 && m!.total.latencyMs.p50 <= m!.total.latencyMs.p99);
  assert.equal(r.tables[0]!.rows[0]![3], '200');
});

test('burst and upload modes, and targets from a config file', async (t) => {
  const srv = await server(t, echo);
  const dir = await tempDir(t, 'load-cfg-');
  const burst = await runLoad(await planOf(argsOf({ ports: String(srv.port), mode: 'burst', burst: '5', messages: '20', connections: '2', duration: '2' })));
  assert.deepEqual([burst.total.answered, burst.total.dropped, burst.total.latencyMs.count], [40, 0, 40]);
  const up = await runLoad(await planOf(argsOf({ ports: String(srv.port), mode: 'upload', size: '16384', duration: '0.2' })));
  assert.ok(up.total.bytesSent > 0 && up.total.sent === 0);

  const file = path.join(dir, 'proxy.json');
  fs.writeFileSync(file, JSON.stringify({ apps: [{ name: 'echo', ports: [srv.port], targets: ['127.0.0.1:1'] }, { name: 'other', ports: [1], targets: ['127.0.0.1:1'] }], admin: 'off' }));
  const plan = await planOf(argsOf({ config: file, apps: 'echo', message: 'hello world' }));
  assert.deepEqual(plan.targets, [{ app: 'echo', host: '127.0.0.1', port: srv.port }]);
  assert.deepEqual(plan.payloads.map(String), ['hello world']);
  await assert.rejects(planOf(argsOf({ config: file, apps: 'nope' })), /--apps: no app "nope"/);
  await assert.rejects(planOf(argsOf({ ports: '5001', host: '10.0.0.1' })), /not a loopback address/);
  await assert.rejects(planOf(argsOf({})), /--config FILE/);
});

test('delay mode waits --delay between sends: a reply does not cut the pause short', async (t) => {
  const srv = await server(t, echo);
  // a pause longer than the run: exactly one message per connection, each answered (count only)
  const long = await runLoad(await planOf(argsOf({ ports: String(srv.port), mode: 'delay', delay: '60000', connections: '3', duration: '0.4' })));
  assert.deepEqual([long.total.sent, long.total.answered, long.total.dropped, long.total.errorCount], [3, 3, 0, 0]);

  // a short pause: more than one message, never more than the pauses that fit in the run.
  // A timer never fires before its time (1 ms of slack for libuv's rounding), so the bound cannot flake.
  const delay = 50;
  const m = await runLoad(await planOf(argsOf({ ports: String(srv.port), mode: 'delay', delay: String(delay), connections: '2', duration: '0.6' })));
  const perConnection = m.total.sent / 2;
  assert.ok(perConnection >= 2, `sent ${m.total.sent}`);
  assert.ok(perConnection <= Math.floor((m.seconds * 1000) / (delay - 1)) + 1, `sent ${m.total.sent} in ${m.seconds} s`);
  assert.equal(m.total.errorCount, 0);

  // with a quota the connection finishes on its last reply, without a pause after it
  const q = await runLoad(await planOf(argsOf({ ports: String(srv.port), mode: 'delay', delay: '20', messages: '3', connections: '2', duration: '30' })));
  assert.deepEqual([q.total.sent, q.total.answered, q.total.dropped], [6, 6, 0]);
});

test('--message-file: one message a line, sent in turn; --help says how the file is read', async (t) => {
  const got: Buffer[] = [];
  const srv = await server(t, (s) => s.on('data', (d: Buffer) => (got.push(d), s.write(d))));
  const dir = await tempDir(t, 'load-messages-');
  const file = path.join(dir, 'messages.txt');
  // CRLF and LF endings, a blank line, a last line without an ending
  fs.writeFileSync(file, 'hello world\r\nsecond\n\nthe third line');
  const plan = await planOf(argsOf({ ports: String(srv.port), 'message-file': file, messages: '7', duration: '10' }));
  assert.deepEqual(plan.payloads.map(String), ['hello world', 'second', 'the third line']);
  const m = await runLoad(plan);
  assert.deepEqual([m.total.sent, m.total.answered, m.total.dropped, m.total.latencyMs.count], [7, 7, 0, 7]);
  // ping-pong: each message answered before the next, so the server saw them in order, whole
  const seq = ['hello world', 'second', 'the third line', 'hello world', 'second', 'the third line', 'hello world'];
  assert.equal(Buffer.concat(got).toString(), seq.join(''));
  assert.equal(m.total.bytesReceived, seq.join('').length);

  const blank = path.join(dir, 'blank.txt');
  fs.writeFileSync(blank, '\n\r\n\n');
  await assert.rejects(planOf(argsOf({ ports: '5001', 'message-file': blank })), /--message-file: .*blank\.txt has no message/);
  await assert.rejects(planOf(argsOf({ ports: '5001', 'message-file': path.join(dir, 'none.txt') })), /--message-file: cannot read .*none\.txt \(ENOENT\)/);
  await assert.rejects(planOf(argsOf({ ports: '5001', 'message-file': file, message: 'x' })), /--message or --message-file, not both/);

  const help = execFileSync(process.execPath, [path.join(DIST_BENCH_LIB, '..', 'run.js'), 'load', '--help'], { encoding: 'utf8' });
  assert.match(help, /--message-file +messages from a file, one a line \(its line ending not sent, blank lines skipped\)/);
});
