/**
 * shaper-bench caps: the pure parts (PASS/FAIL and tolerance, first-second overshoot, series
 * arithmetic, tier -> source address planning, config rewrite, rates in the config's units, the
 * verdict line) and one short end-to-end run of the bin.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config/load.js';
import { connectionsFor, decide, due, loopbackIn, overshoot, planCaps, type AppPort } from '../../bench/lib/caps/plan.js';
import { appPorts, rewriteConfig } from '../../bench/lib/caps/proxy.js';
import { firstSecondBytes, rateSeries, stepAt, valueAt, windowRates, type History } from '../../bench/lib/caps/series.js';
import { tableRows, verdictLine, type Row } from '../../bench/lib/caps/report.js';
import { configUnits, fmtIn, unitOf } from '../../bench/lib/caps/units.js';
import type { Verdict } from '../../bench/lib/caps/plan.js';
import { ROOT } from '../helpers.js';

const ok = { expected: 1e6, measured: 1e6, jain: null, firstSecond: 1e6, firstSecondBound: 1.05e6 };

test('decide: rate within ±tol of the cap passes, outside fails, both signs', () => {
  assert.equal(decide({ ...ok, measured: 0.975e6 }, 0.03, 0.95).pass, true);
  assert.equal(decide({ ...ok, measured: 1.029e6 }, 0.03, 0.95).pass, true);
  const low = decide({ ...ok, measured: 0.96e6 }, 0.03, 0.95);
  assert.equal(low.pass, false);
  assert.match(low.reasons.join(), /-4\.00% off the cap/);
  assert.equal(decide({ ...ok, measured: 1.04e6, firstSecond: 0 }, 0.03, 0.95).pass, false);
  assert.equal(decide({ ...ok, measured: 0 }, 0.03, 0.95).pass, false);
  assert.equal(low.tolerance, '±3.00%');
});

test('decide: above 200 MB/s only a rate above cap × (1 + tol) fails (loopback may not carry the cap)', () => {
  const big = { expected: 625e6, jain: null, firstSecond: 0, firstSecondBound: 700e6 };
  const slow = decide({ ...big, measured: 300e6 }, 0.03, 0.95);
  assert.equal(slow.pass, true);
  assert.match(slow.tolerance, /cap > 200 MB\/s/);
  assert.equal(decide({ ...big, measured: 650e6 }, 0.03, 0.95).pass, false);
});

test('decide: Jain below the minimum fails; one connection has no Jain', () => {
  assert.equal(decide({ ...ok, jain: 0.99 }, 0.03, 0.95).pass, true);
  const unfair = decide({ ...ok, jain: 0.9 }, 0.03, 0.95);
  assert.equal(unfair.pass, false);
  assert.match(unfair.reasons.join(), /Jain 0\.900 < 0\.95/);
});

test('overshoot: first-second bytes over cap × 1 s + burst, with tol × rate of slack', () => {
  assert.equal(overshoot(1_032_768, 1_032_768, 1e6, 0), 0);
  assert.equal(overshoot(1_100_000, 1_032_768, 1e6, 0.03), 1_100_000 - 1_062_768);
  const over = decide({ ...ok, firstSecond: 1.2e6, firstSecondBound: 1.05e6 }, 0.03, 0.95);
  assert.equal(over.pass, false);
  assert.match(over.reasons.join(), /first second \d+ B over cap × 1 s \+ burst/);
});

test('series: interpolation for window rates, samples at or before for the first second', () => {
  const h: History = [
    [1000, 0],
    [1010, 100],
    [2000, 1000],
    [2010, 2000],
  ];
  assert.equal(valueAt(h, 500), 0);
  assert.equal(valueAt(h, 1005), 50);
  assert.equal(valueAt(h, 5000), 2000);
  assert.equal(stepAt(h, 2005), 1000);
  assert.equal(firstSecondBytes([h, h], 1005), 2000); // 1 s after 1005: the 2000 ms samples
  assert.deepEqual(windowRates([h], 1010, 2010), [1900]);
  const s = rateSeries([h], 1000, 2010, 500, 500);
  assert.deepEqual(s.map(([x]) => x), [0.5, 1]);
});

test('due: the lowest level binds; the first-second bound is rate × 1 s + burst (burstFor)', () => {
  const cfg = parseConfig({
    apps: [{ name: 'a', ports: [7000], targets: ['127.0.0.1:1'] }],
    tiers: { t: { rtt: '50ms', connection: { down: 1_000_000 }, customer: { down: 2_500_000 } } },
    defaultTier: 't',
  });
  const tier = cfg.tiers['t']!;
  const one = [{ customer: 'c', address: '127.0.1.1', port: 7000 }];
  // connection burst = max(1 MB/s × 50 ms, 32 KiB, 10 ms) = 50 kB
  assert.deepEqual(due(tier, cfg.global, 50, one, 'down'), { expected: 1_000_000, boundBy: 'connection', firstSecondBound: 1_050_000 });
  const four = Array.from({ length: 4 }, () => one[0]!);
  const d = due(tier, cfg.global, 50, four, 'down');
  assert.equal(d.expected, 2_500_000);
  assert.equal(d.boundBy, 'customer');
  assert.equal(d.firstSecondBound, 2_500_000 + 125_000);
  assert.equal(connectionsFor(1_000_000, 2_500_000, undefined), 5);
  assert.equal(connectionsFor(1_000_000, 2_500_000, 3), 3);
  assert.equal(connectionsFor(Infinity, 2_500_000, undefined), 4);
});

test('loopbackIn: 127.x addresses of an IPv4 CIDR, none elsewhere or for IPv6', () => {
  assert.deepEqual(loopbackIn('127.0.0.2/32'), ['127.0.0.2']);
  assert.deepEqual(loopbackIn('127.0.0.7'), ['127.0.0.7']);
  assert.deepEqual(loopbackIn('127.0.0.0/24', 3), ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  assert.deepEqual(loopbackIn('0.0.0.0/0', 1), ['127.0.0.1']);
  assert.deepEqual(loopbackIn('10.0.0.0/8'), []);
  assert.deepEqual(loopbackIn('::1/128'), []);
});

test('planCaps on config/tiers.json: gold via acme 127.0.0.2, free via unmatched 127.0.1.x, admission respected', async () => {
  const raw = JSON.parse(await fs.readFile(path.join(ROOT, 'config/tiers.json'), 'utf8')) as Record<string, unknown>;
  const cfg = parseConfig(raw);
  const ports: AppPort[] = cfg.apps.flatMap((a) => a.ports.map((port) => ({ app: a.name, port })));
  const [free, gold] = planCaps(cfg, ports);
  assert.equal(free!.tier, 'free');
  assert.equal(gold!.tier, 'gold');

  const freeConn = free!.measurements.find((m) => m.level === 'connection' && m.dir === 'down')!;
  assert.equal(freeConn.cap, 125_000);
  assert.equal(freeConn.clients.length, 1);
  assert.match(freeConn.clients[0]!.address, /^127\.0\.1\.\d+$/);
  const freeCust = free!.measurements.find((m) => m.level === 'customer' && m.dir === 'up')!;
  assert.equal(freeCust.expected, 125_000);
  assert.equal(freeCust.clients.length, 4); // 2 × 1mbit / 512kbit, ≤ maxConnections 20
  assert.equal(new Set(freeCust.clients.map((c) => c.address)).size, 1);
  assert.ok(freeCust.paceMs >= 100, 'connectionRate 10/s paces connects'); // 100 ms × 1.2
  // every defaultTier measurement gets fresh addresses (fresh buckets, fresh admission)
  const used = free!.measurements.map((m) => m.clients[0]!.address);
  assert.equal(new Set(used).size, used.length);
  assert.deepEqual(free!.skips.map((s) => `${s.level} ${s.dir}`), ['total down', 'total up']);

  const goldCust = gold!.measurements.find((m) => m.level === 'customer' && m.dir === 'down')!;
  assert.equal(goldCust.clients.length, 20);
  assert.ok(goldCust.clients.every((c) => c.address === '127.0.0.2' && c.customer === 'acme'));
  assert.equal(goldCust.expected, 125_000_000);
  const total = gold!.skips.find((s) => s.level === 'total' && s.dir === 'down')!;
  assert.match(total.reason, /total == customer measurement/);
  assert.match(gold!.skips.find((s) => s.level === 'total' && s.dir === 'up')!.reason, /unlimited/);
});

test('planCaps: a customer without a loopback source is noted; a tier nobody reaches is noted', () => {
  const cfg = parseConfig({
    apps: [{ name: 'a', ports: [7000], targets: ['127.0.0.1:1'] }],
    tiers: { lan: { connection: { down: 1_000_000 } }, two: { customer: { down: 1_000_000 }, total: { down: 1_500_000 } } },
    customers: [
      { id: 'office', tier: 'lan', match: { sources: ['10.0.0.0/8'] } },
      { id: 'x', tier: 'two', match: { sources: ['127.0.0.3/32'] } },
      { id: 'y', tier: 'two', match: { sources: ['127.0.0.4/32'] } },
    ],
  });
  const [lan, two] = planCaps(cfg, [{ app: 'a', port: 7000 }]);
  assert.equal(lan!.measurements.length, 0);
  assert.match(lan!.notes.join('\n'), /office: no loopback address/);
  assert.match(lan!.notes.join('\n'), /nothing measured/);
  const total = two!.measurements.find((m) => m.level === 'total')!;
  assert.deepEqual([...new Set(total.clients.map((c) => c.customer))], ['x', 'y']);
  assert.equal(total.expected, 1_500_000);
  assert.equal(total.boundBy, 'total');
});

test('rewriteConfig: apps to the backend on free ports, customers\' match.ports mapped, admin moved', () => {
  const raw = {
    apps: [{ name: 'a', ports: [5001, 5002], targets: ['10.0.0.1:80'], bind: '0.0.0.0' }],
    customers: [{ id: 'c', tier: 't', match: { ports: [5002] } }],
    admin: { listen: '127.0.0.1:9900' },
    stateFile: 'state.json',
  };
  assert.deepEqual(appPorts(raw), [5001, 5002]);
  const out = rewriteConfig(raw, '127.0.0.1:4000', new Map([[5001, 41001], [5002, 41002]]), 42000);
  assert.deepEqual(out['apps'], [{ name: 'a', ports: [41001, 41002], targets: ['127.0.0.1:4000'] }]);
  assert.deepEqual(out['customers'], [{ id: 'c', tier: 't', match: { ports: [41002] } }]);
  assert.deepEqual(out['admin'], { listen: '127.0.0.1:42000' });
  assert.equal(out['stateFile'], undefined);
  assert.equal(out['bind'], '127.0.0.1');
});

test('end to end, as the bin runs it: a one-tier .jsonc config (16 Mbit/s down, 1 MB/s up per connection) is measured in its own units, its caps hold, unlimited levels are skipped, the verdict is the last line', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'caps-test-'));
  try {
    const file = path.join(dir, 'tiny.jsonc');
    await fs.writeFile(
      file,
      `// the bench reads a config as the proxy does\n${JSON.stringify({
        apps: [{ name: 'dl', ports: [5002], targets: ['127.0.0.1:9'] }],
        tiers: { small: { rtt: '20ms', connection: { down: '16mbit', up: '1MB/s' } } },
        customers: [{ id: 'tiny', tier: 'small', match: { sources: ['127.0.0.5/32'] } }],
      })}\n`,
    );
    const report = path.join(dir, 'caps.html');
    // Tolerances wide enough for a loaded CI machine: the bench reports accuracy, this test that caps hold at all.
    const args = ['caps', '--config', file, '--seconds', '1', '--warmup', '0.3', '--tolerance', '0.5', '--jain', '0.5', '--report', report];
    const run = await promisify(execFile)(process.execPath, [path.join(ROOT, 'dist/bench/run.js'), ...args], { cwd: dir });
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines.at(-1), 'caps: 2 PASS, 0 FAIL, 4 SKIP', run.stdout);
    // the runner's result file: bench/results in a checkout (removed below), ./shaper-bench-results installed
    const results = path.resolve(dir, /; wrote (\S+\.json)$/m.exec(run.stdout)?.[1] ?? 'no results file named');
    const out = JSON.parse(await fs.readFile(results, 'utf8')) as {
      tables: { rows: string[][] }[];
      notes: string[];
      verdict: string;
      data: { failed: number; measurements: { clients: { address: string }[] }[] };
    };
    const rows = out.tables[0]!.rows;
    assert.deepEqual(rows.map((r) => `${r[1]} ${r[2]} ${r.at(-1)}`), [
      'connection down PASS',
      'connection up PASS',
      'customer down SKIP',
      'customer up SKIP',
      'total down SKIP',
      'total up SKIP',
    ], rows.map((r) => r.join(' | ')).join('\n') + '\n' + out.notes.join('\n'));
    // cap, expected and measured as the config writes each cap
    const [down, up] = rows;
    assert.deepEqual([down![4], down![5]], ['16 Mbit/s', '16 Mbit/s']);
    assert.match(down![6]!, /^\d+(\.\d+)? Mbit\/s$/);
    assert.deepEqual([up![4], up![5]], ['1 MB/s', '1 MB/s']);
    assert.match(up![6]!, /^\d+(\.\d+)? MB\/s$/);
    assert.equal(out.verdict, 'caps: 2 PASS, 0 FAIL, 4 SKIP');
    assert.equal(out.data.failed, 0);
    assert.ok(out.data.measurements.every((m) => m.clients.every((c) => c.address === '127.0.0.5')));
    const html = await fs.readFile(report, 'utf8');
    assert.match(html, /<svg/);
    assert.match(html, /caps: 2 PASS, 0 FAIL, 4 SKIP/);
    assert.match(html, /Mbit\/s/);
    assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org)/); // no CDN
    const json = JSON.parse(await fs.readFile(path.join(dir, 'caps.json'), 'utf8')) as { data: { failed: number } };
    assert.equal(json.data.failed, 0);
    await fs.rm(results);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('rates in the config\'s units: each spelling\'s unit, read by the config\'s own parser', () => {
  assert.deepEqual(unitOf('1mbit'), { name: 'Mbit/s', bytes: 125_000 });
  assert.deepEqual(unitOf('512kbit'), { name: 'kbit/s', bytes: 125 });
  assert.deepEqual(unitOf('1Gbit/s'), { name: 'Gbit/s', bytes: 125_000_000 });
  assert.deepEqual(unitOf('100 Mbps'), { name: 'Mbps', bytes: 125_000 });
  assert.deepEqual(unitOf('10MiB/s'), { name: 'MiB/s', bytes: 1024 * 1024 });
  assert.deepEqual(unitOf('64KB/s'), { name: 'KB/s', bytes: 1000 });
  for (const bytes of [1000, '1000', 'unlimited', '64kb/s', undefined]) assert.equal(unitOf(bytes), undefined, String(bytes));
  assert.equal(fmtIn(125_000, unitOf('1mbit')), '1 Mbit/s');
  assert.equal(fmtIn(123_412, unitOf('1mbit')), '0.9873 Mbit/s');
  assert.equal(fmtIn(62_900, unitOf('512kbit')), '503.2 kbit/s');
  assert.equal(fmtIn(125_000, undefined), '125.0 kB/s');
  assert.equal(fmtIn(Infinity, unitOf('1mbit')), 'unlimited');
});

test('the table and the plan\'s notes of config/tiers.json in its own units (mbit, kbit); the verdict counts PASS, FAIL and SKIP', async () => {
  const raw = JSON.parse(await fs.readFile(path.join(ROOT, 'config/tiers.json'), 'utf8')) as Record<string, unknown>;
  const cfg = parseConfig(raw);
  const units = configUnits(raw);
  const ports: AppPort[] = cfg.apps.flatMap((a) => a.ports.map((port) => ({ app: a.name, port })));
  const plans = planCaps(cfg, ports, undefined, units);
  const verdict = (pass: boolean): Verdict => ({ pass, error: 0, tolerance: '±3.00%', reasons: pass ? [] : ['off'] });
  const row = (tier: string, level: string, dir: string, measured: number, pass = true): Row => {
    const m = plans.flatMap((p) => p.measurements).find((x) => x.tier === tier && x.level === level && x.dir === dir)!;
    return { m, measured, jain: null, firstSecond: 0, verdict: verdict(pass), series: [], window: [0, 1] };
  };
  const rows = [row('free', 'connection', 'down', 124_000), row('free', 'connection', 'up', 63_500), row('gold', 'connection', 'down', 12_400_000, false)];
  const skips = plans.flatMap((p) => p.skips);
  const cells = tableRows(rows, skips, units).map((r) => `${r[0]} ${r[1]} ${r[2]}: ${r[4]} ${r[5]} ${r[6]} ${r.at(-1)}`);
  assert.deepEqual(cells.slice(0, 2), ['free connection down: 1 Mbit/s 1 Mbit/s 0.992 Mbit/s PASS', 'free connection up: 512 kbit/s 512 kbit/s 508 kbit/s PASS']);
  assert.ok(cells.includes('gold connection down: 100 Mbit/s 100 Mbit/s 99.2 Mbit/s FAIL'), cells.join('\n'));
  assert.ok(cells.includes('gold total up: unlimited - - SKIP'), cells.join('\n'));
  assert.match(plans[1]!.skips.find((s) => s.level === 'total' && s.dir === 'down')!.reason, /carry at most 1 Gbit\/s/);
  assert.equal(verdictLine(rows, skips), `caps: 2 PASS, 1 FAIL, ${skips.length} SKIP`);
  // without the config as written: bytes/s, as before
  assert.equal(tableRows(rows.slice(0, 1), [])[0]![4], '125.0 kB/s');
});
