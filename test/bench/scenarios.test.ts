/**
 * The conns and soak scenarios end to end with tiny parameters (a proxy child, a backend child,
 * a few seconds; no raised descriptor limit needed), and soak's growth arithmetic. (Not named
 * conns-*: `node --test` runs files two at a time in name order, and this one's traffic beside
 * caps.test's rate measurements made those fail on a busy machine.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { conns, connectionsThatFit } from '../../bench/conns.js';
import { growthAfterWarmup, slope, soak, type Sample } from '../../bench/soak.js';
import { timeouts } from '../../bench/timeouts.js';
import { preconnect } from '../../bench/preconnect.js';
import { wake } from '../../bench/wake.js';
import { tracing } from '../../bench/tracing.js';
import type { Args, Scenario } from '../../bench/lib/scenario.js';

function argsOf(s: Scenario, over: Args): Args {
  const a: Args = {};
  for (const [k, o] of Object.entries(s.options)) if (o.default !== undefined) a[k] = o.default;
  return { ...a, ...over };
}

test('slope and growth after warm-up: least squares per minute over the last 80 % of samples', () => {
  assert.equal(slope([[0, 1], [1, 3], [2, 5]]), 2);
  assert.ok(Number.isNaN(slope([[0, 1]])));
  // A warm-up jump in the first 20 % does not count; then 100 KB and 0.5 fds per minute.
  const samples: Sample[] = Array.from({ length: 20 }, (_, i) => ({
    t: i * 30,
    rssKB: (i < 4 ? 1000 * i : 50_000) + 50 * i,
    heapUsedKB: 10_000,
    externalKB: 0,
    fds: 40 + i * 0.25,
    handles: 20,
    connections: 5,
  }));
  const g = growthAfterWarmup(samples);
  assert.ok(Math.abs(g.rssKBPerMin - 100) < 1e-6, String(g.rssKBPerMin));
  assert.ok(Math.abs(g.fdsPerMin - 0.5) < 1e-9, String(g.fdsPerMin));
  assert.equal(g.heapKBPerMin, 0);
  assert.equal(g.handlesPerMin, 0);
});

test('conns: the count is capped by what the descriptor limits hold', () => {
  assert.equal(connectionsThatFit(10_000, 20_000, 20_000), 9868);
  assert.equal(connectionsThatFit(10_000, 65_536, 65_536), 10_000);
  assert.equal(connectionsThatFit(10_000, 65_536, 1024), 768);
});

test('conns end to end: 30 connections, 3 downloading, shaped, unshaped and all shaped', async () => {
  const r = await conns.run(argsOf(conns, { connections: '30', active: '3', probes: '5', settle: '0', rate: '65536' }));
  const data = r.data as { kind: string; connections: number; lost: number; rssOpen: number; latencyOpen: { p50: number }; activeRate: number }[];
  assert.deepEqual(data.map((d) => d.kind), ['shaped', 'unshaped', 'all-shaped']);
  for (const d of data) {
    assert.equal(d.connections, 30);
    assert.equal(d.lost, 0);
    assert.ok(d.rssOpen > 0 && d.latencyOpen.p50 > 0);
    assert.ok(d.activeRate > 0, `${d.kind}: the active ones downloaded`);
  }
  assert.match(r.tables[0]!.title, /30 connections/);
});

test('soak end to end: a few seconds of mixed traffic with reloads, no errors, samples and a chart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-test-'));
  try {
    const r = await soak.run(argsOf(soak, { minutes: '0.05', sample: '0.5', reload: '1', 'download-bytes': '65536', 'out-dir': dir }));
    const data = r.data as { samples: Sample[]; errors: number; alive: boolean; reloads: { done: number; failed: number; unconfirmed: number }; traffic: Record<string, { ok: number }>; svg: string };
    assert.equal(data.alive, true);
    assert.equal(data.errors, 0, JSON.stringify(data.traffic));
    assert.ok(data.samples.length >= 3 && data.samples.every((s) => s.rssKB > 0 && s.fds > 0));
    assert.ok(data.reloads.done >= 2);
    assert.equal(data.reloads.failed, 0);
    assert.equal(data.reloads.unconfirmed, 0);
    for (const kind of ['request/response', 'shaped download', 'unshaped bulk', 'foo session', 'reset']) assert.ok(data.traffic[kind]!.ok > 0, kind);
    assert.match(fs.readFileSync(data.svg, 'utf8'), /^<svg[^>]*>.*proxy memory/s);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('timeouts end to end: idle, steady and reset clients through a proxy child, a verdict per row (timings are not asserted)', async () => {
  const exitCode = process.exitCode;
  try {
    const r = await timeouts.run(argsOf(timeouts, { 'idle-timeout': '100', connections: '3', trials: '2' }));
    const data = r.data as { idle: number[]; steadyClosed: number; resets: { kind: string }[] };
    assert.equal(data.idle.length, 3);
    assert.deepEqual(data.resets.map((x) => x.kind), ['unshaped', 'shaped 1 MB/s']);
    assert.deepEqual(r.tables.map((t) => t.rows.length), [1, 2]);
    for (const row of r.tables.flatMap((t) => t.rows)) assert.match(row.at(-1)!, /^(PASS|FAIL)$/);
    assert.match(r.tables[0]!.title, /idleTimeout 100 ms \(sweep every 25 ms\); target: closed after 100-200 ms/);
  } finally {
    process.exitCode = exitCode; // a FAIL on a busy machine is the bench's verdict, not the suite's
  }
});

test('preconnect end to end: both apps through a proxy child and a delayed TLS target, every client served (timings are not asserted)', async () => {
  const r = await preconnect.run(argsOf(preconnect, { delay: '5', clients: '4', gap: '10' }));
  const data = r.data as Record<string, number[]>;
  assert.deepEqual(Object.keys(data), ['per-client', 'pre-dialed']);
  for (const ms of Object.values(data)) assert.ok(ms.length === 4 && ms.every((x) => x > 0), String(ms));
  assert.deepEqual(r.tables[0]!.rows.map((row) => row.at(-1)), ['0', '0']);
});

test('wake end to end: a round of held clients through a proxy child, all served, the hook once (timings are not asserted)', async () => {
  // The target boots half a second after the hook: on a loaded machine five connects at once can
  // spread over more than 20 ms, and a client that comes after the boot is served, not held.
  const r = await wake.run(argsOf(wake, { clients: '5', boot: '500', rounds: '1', bytes: '1000' }));
  const [row] = r.tables[0]!.rows;
  assert.deepEqual(row!.slice(3), ['5', '1', '0']);
});

test('tracing end to end: short connections through proxies with tracing off, sampled and on, none failed, spans received (timings are not asserted)', async () => {
  const r = await tracing.run(argsOf(tracing, { duration: '0.3', rounds: '1', parallel: '2' }));
  const data = r.data as { runs: { variant: string; perSecond: number; failed: number }[]; connectionSpans: number };
  assert.deepEqual(data.runs.map((x) => x.variant).sort(), ['off', 'on, sample 0.1', 'on, sample 1']);
  for (const run of data.runs) assert.ok(run.perSecond > 0 && run.failed === 0, JSON.stringify(run));
  assert.ok(data.connectionSpans > 0, 'the traced proxies exported connection spans');
});
